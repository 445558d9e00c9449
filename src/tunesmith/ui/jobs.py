"""Background jobs: the real CLI (`python -m tunesmith.cli ...`) in a child process.

A job record (<runs>/.ui/jobs/<id>.json) keeps the argv, pid, log file and, once seen, the exit
code; the run directory keeps everything else. A UI restarted while a job runs finds the record,
sees the process alive through /proc, and can still cancel it; when the process is gone and no exit
code was recorded, the run's own run.json says how it ended.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tunesmith

from ..errors import TunesmithError

KINDS = ("finetune", "compare", "advise", "serve")


@dataclass
class Job:
    """One child process the UI started."""

    id: str
    kind: str
    argv: list[str]  # after `python -m tunesmith.cli`
    log: str  # log file (stdout + stderr)
    run: str | None = None  # the run directory it writes (finetune), the folder (compare)
    pid: int | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    returncode: int | None = None
    cancelled: bool = False
    resumed_from: str | None = None  # the job this one resumes


def child_env() -> dict[str, str]:
    """The environment of a job: this process's, with *this* tunesmith first on the path (a
    worktree or an editable install both run the code the UI itself runs)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    src = str(Path(tunesmith.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def cli_alive(pid: int | None) -> bool:
    """True when `pid` is a live (not zombie) tunesmith process: checked through /proc so that a
    recycled pid of some other program never counts."""
    if not pid:
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return b"tunesmith" in cmd and stat.rsplit(")", 1)[-1].split()[0] != "Z"


class JobStore:
    """Start, list, cancel and resume jobs; records live in `<runs>/.ui/jobs`."""

    def __init__(self, workspace: Path, runs_dir: Path):
        self.workspace, self.runs_dir = Path(workspace), Path(runs_dir)
        self.dir = self.runs_dir / ".ui" / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()

    # ---- records ------------------------------------------------------------------------------
    def save(self, job: Job) -> None:
        tmp = self.dir / f"{job.id}.json.tmp"
        tmp.write_text(json.dumps(asdict(job), indent=1), encoding="utf-8")
        os.replace(tmp, self.dir / f"{job.id}.json")

    def get(self, job_id: str) -> Job:
        path = self.dir / f"{job_id}.json"
        if not job_id.replace("-", "").isalnum() or not path.is_file():
            raise TunesmithError(f"no job '{job_id}'")
        return self.refresh(Job(**json.loads(path.read_text(encoding="utf-8"))))

    def all(self) -> list[Job]:
        jobs = []
        for path in self.dir.glob("*.json"):
            try:
                jobs.append(self.refresh(Job(**json.loads(path.read_text(encoding="utf-8")))))
            except (OSError, ValueError, TypeError):
                continue  # a record being replaced, or not ours
        return sorted(jobs, key=lambda j: j.started, reverse=True)

    def refresh(self, job: Job) -> Job:
        """Record the exit code of a child of this process once it has ended."""
        proc = self.procs.get(job.id)
        if job.returncode is None and proc is not None and proc.poll() is not None:
            job.returncode, job.finished = proc.returncode, time.time()
            self.save(job)
        return job

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self, kind: str, argv: list[str], run: str | None = None, resumed_from: str | None = None) -> Job:
        if kind not in KINDS:
            raise TunesmithError(f"unknown job kind '{kind}'; kinds: {', '.join(KINDS)}")
        job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        job = Job(job_id, kind, list(argv), str(self.dir / f"{job_id}.log"), run, resumed_from=resumed_from)
        with open(job.log, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", *argv], cwd=self.workspace,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=child_env(), start_new_session=True)  # own group: cancel kills all
        job.pid = proc.pid
        with self.lock:
            self.procs[job.id] = proc
        self.save(job)
        return job

    def alive(self, job: Job) -> bool:
        proc = self.procs.get(job.id)
        if proc is not None:
            return proc.poll() is None
        return job.returncode is None and cli_alive(job.pid)

    def cancel(self, job_id: str, grace_s: float = 10.0) -> Job:
        """SIGTERM to the job's process group, SIGKILL after `grace_s`; the run keeps its checkpoints."""
        job = self.get(job_id)
        if not self.alive(job):
            raise TunesmithError(f"job {job_id} is not running")
        job.cancelled = True
        self.save(job)
        _signal_group(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self.alive(job) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive(job):
            _signal_group(job.pid, signal.SIGKILL)
        return self.refresh(job)

    def resume(self, job_id: str) -> Job:
        """A new finetune job on the same run directory with --output.resume=true."""
        job = self.get(job_id)
        if job.kind != "finetune":
            raise TunesmithError(f"job {job_id} is a {job.kind} job; only fine-tuning runs resume")
        if self.alive(job):
            raise TunesmithError(f"job {job_id} is still running")
        argv = [a for a in job.argv if not a.startswith("--output.resume")] + ["--output.resume=true"]
        return self.start("finetune", argv, job.run, resumed_from=job.id)

    def log_tail(self, job: Job, chars: int = 4000) -> str:
        """The end of the job's log, tqdm's carriage-return redraws reduced to their last state."""
        try:
            with open(job.log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4 * chars))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        lines = [line.rsplit("\r", 1)[-1] for line in text.replace("\r\n", "\n").split("\n")]
        return "\n".join(lines)[-chars:]


def _signal_group(pid: int | None, sig: int) -> None:
    if not pid:
        return
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
