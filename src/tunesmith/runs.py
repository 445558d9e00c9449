"""Run directories: everything a user touches after training lives in one folder.

    run/
      run.json            status (running | complete), task, method, base model, labels
      config.yaml         the resolved config
      metrics.jsonl       one line per log / evaluation event
      progress.json       phase, step / max_steps and pid while training (trainer.write_progress)
      labels.json         id -> label name
      token_stats.json    token-length statistics per split
      params.json         trainable vs total parameters
      model/              the artifact: whole model (full, head), peft adapter + head (lora, prefix...)
                          or adapter layers + head (adapter), tokenizer
      merged/             LoRA merged into a plain model (with --output.merge)
      checkpoints/        Trainer checkpoints for --output.resume
      report.{json,md}, confusion_matrix.png, learning_curve.png, README.md (model card)

A run only says "complete" after every file is written, so an interrupted run never looks finished.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from . import __version__
from .errors import TunesmithError


# Environment variables that carry the global process rank under torchrun / accelerate launch
# (RANK), DeepSpeed and MPI launchers; read before torch.distributed is initialised.
_RANK_VARS = ("RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMI_RANK")
_WORLD_VARS = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMI_SIZE")


def _env_int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        if os.environ.get(name, "").strip().isdigit():
            return int(os.environ[name])
    return default


def process_rank() -> int:
    """Global rank of this process under `accelerate launch` / `torchrun` (0 when run plainly)."""
    return _env_int(_RANK_VARS, 0)


def world_size() -> int:
    """Number of processes in a distributed launch (1 when run plainly)."""
    return max(1, _env_int(_WORLD_VARS, 1))


def is_main_process() -> bool:
    """Only the main process writes run files (run.json, config, metrics, reports, the model).

    Example:
        >>> is_main_process()   # plain `tunesmith finetune`
        True
    """
    return process_rank() == 0


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename); a no-op on non-main processes."""
    if not is_main_process():
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def default_run_dir(model: str, data: str, method: str) -> Path:
    if world_size() > 1:  # each process would stamp its own time and pick a different folder
        raise TunesmithError("under accelerate launch / torchrun, give the run directory with --output.dir "
                             "(every process must use the same one)")
    clean = lambda s: Path(str(s)).name.replace(".", "-")[:30] or "x"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{clean(model)}-{clean(data)}-{method}-{stamp}"


def prepare(run: Path, resume: bool, overwrite: bool) -> None:
    """Create (or check, when resuming) a run directory before any training starts.

    Under a distributed launch only the main process creates and checks it; the others would
    otherwise race it and find the directory "not empty"."""
    if not is_main_process():
        return
    if resume:
        # config.yaml is written first: a run killed before run.json existed starts over cleanly
        if not (run / "run.json").is_file() and not (run / "config.yaml").is_file():
            raise TunesmithError(f"{run}: nothing to resume (no run.json); start a new run without --output.resume")
        return
    if run.exists() and any(run.iterdir()) and not overwrite:
        status = read_json(run / "run.json").get("status") if (run / "run.json").is_file() else "unknown"
        raise TunesmithError(f"{run}: directory exists and is not empty (run status: {status}); "
                             "choose another --output.dir, add --output.resume=true to continue it, "
                             "or --output.overwrite=true to replace it")
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = run / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise TunesmithError(f"{run}: cannot write the run directory ({e.strerror})") from None


def start(run: Path, info: dict) -> dict:
    """Write run.json (status running); returns what it holds, for finish() to complete."""
    info = {**info, "status": "running", "tunesmith_version": __version__,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_json(run / "run.json", info)  # a no-op on non-main processes
    return info


def finish(run: Path, extra: dict | None = None, info: dict | None = None) -> dict:
    """Mark the run complete; `info` is run.json as start() returned it (read from disk without)."""
    if not is_main_process():
        return info or {}
    info = dict(info) if info is not None else read_json(run / "run.json")
    info.update(extra or {}, status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json(run / "run.json", info)
    return info


def load_run(run: str | Path, task: str | None = None) -> dict:
    """Read and check a finished run directory; errors say what is wrong and what to do."""
    run = Path(run)
    if not run.is_dir():
        raise TunesmithError(f"{run}: run directory not found")
    if not (run / "run.json").is_file():
        raise TunesmithError(f"{run}: not a tunesmith run (no run.json)")
    info = read_json(run / "run.json")
    if info.get("status") != "complete":
        raise TunesmithError(f"{run}: run is incomplete (status '{info.get('status')}'); resume it with "
                             f"`tunesmith finetune --output.dir {run} --output.resume=true`")
    if task and info.get("task") != task:
        raise TunesmithError(f"{run}: is a '{info.get('task')}' run, but this command needs a '{task}' run")
    if not (run / "model").is_dir():
        raise TunesmithError(f"{run}: incomplete: the model/ folder is missing")
    return info


def append_metrics(run: Path, record: dict) -> None:
    if not is_main_process():
        return
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trim_metrics(run: Path, step: int) -> None:
    """On resume, drop log lines past the checkpoint's step: the resumed run logs them again."""
    if not is_main_process() or not (run / "metrics.jsonl").exists():
        return
    keep = []
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
        try:  # a kill -9 can leave the last line half-written
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("step", 0) <= step and rec.get("kind") != "summary":
            keep.append(rec)
    tmp = run / "metrics.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")
    os.replace(tmp, run / "metrics.jsonl")


def check_free_space(run: Path, need_bytes: int) -> None:
    """Stop before training when the disk holding the run cannot take its checkpoints and model."""
    import shutil

    if not is_main_process():  # only the main process writes (and created) the run directory:
        return                 # another rank can get here before it exists
    free = shutil.disk_usage(run).free
    if free < need_bytes:
        raise TunesmithError(f"{run}: only {free / 1e6:,.0f} MB free on this disk, but the checkpoints and "
                             f"model need about {need_bytes / 1e6:,.0f} MB; free some space, lower "
                             "--train.save_total_limit, or choose another --output.dir")


def save_artifacts(run: Path, model, tokenizer, method: str, merge: bool):
    """Write run/model (whole model, or adapter + head for peft) and, with `merge`, run/merged;
    return the model to evaluate with (adapters folded in where peft can: LoRA, DoRA, IA3).
    How the model is written (save_pretrained, or adapter layers + config) is the method's record."""
    from .adapt.registry import get, merge_peft, save_model

    (run / "model").mkdir(exist_ok=True)
    save_model(run / "model", model, method)
    tokenizer.save_pretrained(run / "model")
    if not get(method).mergeable:  # full/head: plain models; prompt, prefix, adapter layers cannot fold in
        return model
    merged = merge_peft(model)
    if merge:
        merged.save_pretrained(run / "merged")
        tokenizer.save_pretrained(run / "merged")
    return merged
