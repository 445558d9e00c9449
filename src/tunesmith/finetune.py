"""The one fine-tuning entry point: `finetune(cfg)` runs the pipeline of cfg.model.task.

The CLI (`tunesmith finetune`), `compare`, the augmentation study and the benchmarks all call
this; it lives in the core so that nothing outside commands/ imports a command module.
"""
from __future__ import annotations

from .config import FinetuneConfig
from .errors import TunesmithError


def pipelines() -> dict:
    """task name -> function(cfg, run) -> report."""
    from .tasks.classification import finetune_classification
    from .tasks.generation import finetune_generation
    from .tasks.ner import finetune_ner

    return {"classification": finetune_classification, "token-classification": finetune_ner,
            "generation": finetune_generation}


def finetune(cfg: FinetuneConfig):
    """Run the pipeline for cfg.model.task; returns (run_dir, report)."""
    from .budget import start_clock

    start_clock()  # --time-budget counts from here
    tasks = pipelines()
    if cfg.model.task not in tasks:
        raise TunesmithError(f"unknown task '{cfg.model.task}'; tasks: {', '.join(tasks)}")
    from . import runs
    from .adapt.registry import get, prepare_config
    from .tasks.classification import prepare_run

    if get(cfg.method.name).prepare is not None:  # e.g. prefix tuning caps max_length
        from .models import load_config, resolve

        prepare_config(cfg, load_config(resolve(cfg.model.name)))
    run = prepare_run(cfg)
    main = runs.is_main_process()  # under accelerate launch / torchrun only the main process talks
    if main:
        print(f"run directory: {run}", flush=True)
    report = tasks[cfg.model.task](cfg, run)
    if main:
        print(f"report: {run / 'report.md'}", flush=True)
    return run, report
