"""Run directories: everything a user touches after training lives in one folder.

    run/
      run.json            status (running | complete), task, method, base model, labels
      config.yaml         the resolved config
      metrics.jsonl       one line per log / evaluation event
      labels.json         id -> label name
      token_stats.json    token-length statistics per split
      params.json         trainable vs total parameters
      model/              the artifact: whole model (full, head) or adapter + head (lora), tokenizer
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


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def default_run_dir(model: str, data: str, method: str) -> Path:
    clean = lambda s: Path(str(s)).name.replace(".", "-")[:30] or "x"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{clean(model)}-{clean(data)}-{method}-{stamp}"


def prepare(run: Path, resume: bool, overwrite: bool) -> None:
    """Create (or check, when resuming) a run directory before any training starts."""
    if resume:
        if not (run / "run.json").is_file():
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


def start(run: Path, info: dict) -> None:
    write_json(run / "run.json", {**info, "status": "running", "tunesmith_version": __version__,
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S")})


def finish(run: Path, extra: dict | None = None) -> None:
    info = read_json(run / "run.json")
    info.update(extra or {}, status="complete", finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    write_json(run / "run.json", info)


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
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
