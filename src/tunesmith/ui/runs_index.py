"""Find every run under the runs folder by its run.json, and say where each one stands.

Status comes from what the run wrote (run.json, progress.json) and, for runs the UI started, from
the job's process: running, complete, failed, cancelled or stopped (interrupted outside the UI).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import TunesmithError
from ..serve.security import PathRejected, confine
from .jobs import Job, JobStore

SKIP = {"model", "merged", "checkpoints", ".ui", "_uploads"}  # folders that never hold a run
MAX_DEPTH = 4  # runs/<run>, runs/<compare>/<method>[-lr]/...


def read_json(path: Path) -> dict | None:
    """A JSON file written atomically by the run; None while it does not exist (or is unreadable)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def find_run_dirs(root: Path) -> list[Path]:
    """Every folder under `root` with a run.json or a config.yaml written by finetune."""
    out: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        try:
            children = sorted(p for p in d.iterdir() if p.is_dir() and p.name not in SKIP)
        except OSError:
            return
        for c in children:
            if (c / "run.json").is_file():
                out.append(c)
            elif depth < MAX_DEPTH:
                walk(c, depth + 1)

    walk(Path(root), 1)
    return out


def run_path(runs_dir: Path, run_id: str, must_exist: bool = True) -> Path:
    """The run directory for an id (its path relative to the runs folder), confined to that folder;
    `must_exist=False` for a run a job is still preparing."""
    try:
        path = confine(runs_dir, run_id)
    except PathRejected:
        raise TunesmithError(f"run '{run_id}': a run id is a folder inside {runs_dir} (no '..', no outside path)") from None
    if must_exist and not path.is_dir():
        raise TunesmithError(f"run '{run_id}' not found under {runs_dir}")
    return path


def run_id(runs_dir: Path, path: Path) -> str:
    return Path(path).resolve().relative_to(Path(runs_dir).resolve()).as_posix()


def job_status(store: JobStore, job: Job, info: dict | None) -> str:
    """One word for a job: running | complete | failed | cancelled | stopped."""
    if store.alive(job):
        return "running"
    if job.cancelled:
        return "cancelled"
    if job.returncode is not None:
        if job.returncode != 0:
            return "failed"
        return "complete" if info is None or info.get("status") == "complete" else "failed"
    return "complete" if info and info.get("status") == "complete" else "stopped"


def summary(runs_dir: Path, path: Path, job: Job | None, store: JobStore) -> dict:
    """What the runs list shows for one run directory."""
    info = read_json(path / "run.json")
    progress = read_json(path / "progress.json")
    if job is not None:
        status = job_status(store, job, info)
    elif info and info.get("status") == "complete":
        status = "complete"
    else:  # started outside this UI (or its job record is gone): the pid in progress.json tells
        from .jobs import cli_alive

        status = "running" if progress and cli_alive(progress.get("pid")) else "stopped"
    info = info or {}
    return {"id": run_id(runs_dir, path), "status": status, "task": info.get("task"),
            "method": info.get("method"), "base_model": info.get("base_model"), "data": info.get("data"),
            "started": info.get("started"), "finished": info.get("finished"), "test_accuracy": info.get("test"),
            "progress": progress, "job": job.id if job else None,
            "resumable": job is not None and job.kind == "finetune" and status in ("cancelled", "failed", "stopped")
            and (path / "config.yaml").is_file()}


def list_runs(runs_dir: Path, store: JobStore) -> list[dict]:
    """Every run, newest first; a run a job is still preparing (no run.json yet) is listed too."""
    latest: dict[str, Job] = {}
    for job in sorted(store.all(), key=lambda j: j.started):
        if job.kind == "finetune" and job.run:
            latest[job.run] = job  # the newest job of a run (a resume replaces the cancelled one)
    dirs = {run_id(runs_dir, p): p for p in find_run_dirs(runs_dir)}
    for rid in latest:
        dirs.setdefault(rid, Path(runs_dir) / rid)
    rows = [summary(runs_dir, p, latest.get(rid), store) for rid, p in dirs.items()]
    return sorted(rows, key=lambda r: r["started"] or "9999", reverse=True)
