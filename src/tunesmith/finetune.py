"""The one fine-tuning entry point: `finetune(cfg)` runs the pipeline of cfg.model.task.

The CLI (`tunesmith finetune`), `compare`, the augmentation study and the benchmarks all call
this; it lives in the core so that nothing outside commands/ imports a command module.
"""
from __future__ import annotations

from pathlib import Path

from .config import FinetuneConfig
from .errors import TunesmithError


def pipelines() -> dict:
    """task name -> function(cfg, run) -> report."""
    from .tasks.registry import finetunable

    return {name: t.finetune_fn() for name, t in finetunable().items()}


def check_before_loading(cfg: FinetuneConfig) -> None:
    """What needs no data and no weights, before anything is loaded or a run directory is made:
    the task, the method's name and whether it supports the task, its target modules (from the
    model's config, built on the meta device: module names only)."""
    from .adapt.methods import check_method_targets
    from .adapt.registry import get
    from .models import resolve

    tasks = pipelines()
    if cfg.model.task not in tasks:
        raise TunesmithError(f"unknown task '{cfg.model.task}'; tasks: {', '.join(tasks)}")
    method = get(cfg.method.name)
    if cfg.model.task not in method.tasks:
        raise TunesmithError(f"method '{method.name}' does not support {cfg.model.task}; it supports "
                             f"{', '.join(method.tasks)}")
    check_method_targets(resolve(cfg.model.name).path, cfg.method, cfg.model.task)


def run_dir(cfg: FinetuneConfig) -> Path:
    from . import runs

    return Path(cfg.output.dir) if cfg.output.dir else runs.default_run_dir(
        cfg.model.name, cfg.data.train or cfg.data.dataset, cfg.method.name)


def prepare_run(cfg: FinetuneConfig) -> Path:
    """Create (or, resuming, check) the run directory and write the resolved config into it."""
    from . import runs
    from .config import dump_yaml

    run = run_dir(cfg)
    cfg.output.dir = str(run)
    runs.prepare(run, cfg.output.resume, cfg.output.overwrite)
    if runs.is_main_process():
        dump_yaml(cfg, run / "config.yaml")
    return run


def trained_nothing(run: Path) -> bool:
    """No training step logged and no checkpoint: the run failed before training."""
    ckpts = run / "checkpoints"
    return not (run / "metrics.jsonl").exists() and not (ckpts.is_dir() and any(ckpts.iterdir()))


def finetune(cfg: FinetuneConfig):
    """Run the pipeline for cfg.model.task; returns (run_dir, report).

    A run that fails before training (bad data, a model that cannot load) removes the directory
    it created, so the corrected command runs as it is rather than stopping at "directory exists"."""
    import shutil

    from . import runs
    from .adapt.registry import get, prepare_config
    from .budget import start_clock

    start_clock()  # --time-budget counts from here
    check_before_loading(cfg)
    if get(cfg.method.name).prepare is not None:  # e.g. prefix tuning caps max_length
        from .models import load_config, resolve

        prepare_config(cfg, load_config(resolve(cfg.model.name)))
    planned = run_dir(cfg)
    fresh = not cfg.output.resume and not (planned.exists() and any(planned.iterdir()))
    run = prepare_run(cfg)
    main = runs.is_main_process()  # under accelerate launch / torchrun only the main process talks
    if main:
        print(f"run directory: {run}", flush=True)
    try:
        report = pipelines()[cfg.model.task](cfg, run)
    except Exception:
        if fresh and main and trained_nothing(run):
            shutil.rmtree(run, ignore_errors=True)
        raise
    if main:
        print(f"report: {run / 'report.md'}", flush=True)
    return run, report
