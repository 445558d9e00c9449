"""The Serve page: start `tunesmith serve` (the multi-adapter server) for chosen runs as a job,
and read its /metrics, /v1/adapters and /v1/predict through the UI (same origin for the page)."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import TunesmithError
from .jobs import Job, JobStore
from .runs_index import read_json, run_path

DEFAULT_PORT = 8000


def adapter_name(run_id: str, taken: set[str]) -> str:
    """A plain adapter name from the run's folder name (serve's rule: letters, digits, _ and -)."""
    base = re.sub(r"[^A-Za-z0-9_\-]", "-", Path(run_id).name).strip("-_")[:56] or "run"
    if not base[0].isalnum():
        base = "r" + base
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def serve_args(runs_dir: Path, run_ids: list[str], port: int, base: str | None = None) -> tuple[list[str], dict]:
    """argv of `tunesmith serve` for the runs (checked complete) and {adapter name: run id}."""
    if not run_ids:
        raise TunesmithError("choose at least one finished run to serve")
    names: dict[str, str] = {}
    for rid in run_ids:
        info = read_json(run_path(runs_dir, rid) / "run.json") or {}
        if info.get("status") != "complete":
            raise TunesmithError(f"run '{rid}' is not complete; only finished runs can be served")
        names[adapter_name(rid, set(names))] = rid
    argv = ["serve", "--host", "127.0.0.1", "--port", str(int(port)), "--adapter-root", str(Path(runs_dir).resolve())]
    if base:
        argv += ["--base", base]
    for name, rid in names.items():
        argv += ["--adapter", f"{name}={rid}"]
    return argv, names


class ServeManager:
    """At most one server at a time, a job like the others (its log, cancel = stop)."""

    def __init__(self, store: JobStore, runs_dir: Path):
        self.store, self.runs_dir = store, Path(runs_dir)

    def current(self) -> Job | None:
        jobs = [j for j in self.store.all() if j.kind == "serve"]
        return jobs[0] if jobs else None

    def start(self, run_ids: list[str], port: int = DEFAULT_PORT, base: str | None = None) -> Job:
        job = self.current()
        if job and self.store.alive(job):
            raise TunesmithError(f"a server is already running (job {job.id}); stop it first")
        argv, _ = serve_args(self.runs_dir, run_ids, port, base)
        return self.store.start("serve", argv)

    def port(self, job: Job) -> int:
        return int(job.argv[job.argv.index("--port") + 1])

    def url(self) -> str:
        job = self.current()
        if job is None or not self.store.alive(job):
            raise TunesmithError("no server is running; start one first")
        return f"http://127.0.0.1:{self.port(job)}"

    def status(self) -> dict:
        job = self.current()
        if job is None:
            return {"running": False}
        out = {"running": self.store.alive(job), "job": job.id, "port": self.port(job), "argv": job.argv,
               "adapters": [a.split("=", 1)[0] for a in job.argv[1:] if "=" in a and not a.startswith("-")],
               "log": self.store.log_tail(job, 3000), "ready": False}
        if out["running"]:
            out["ready"] = self._get("/readyz", quiet=True) is not None
        return out

    def _get(self, path: str, quiet: bool = False):
        import httpx

        try:
            r = httpx.get(self.url() + path, timeout=5)
        except (httpx.HTTPError, TunesmithError):
            if quiet:
                return None
            raise TunesmithError("the server does not answer yet (still loading its models?); try again") from None
        if r.status_code != 200:
            if quiet:
                return None
            raise TunesmithError(f"server answered {r.status_code} on {path}: {r.text[:300]}")
        return r

    def metrics(self) -> str:
        return self._get("/metrics").text

    def adapters(self) -> dict:
        return self._get("/v1/adapters").json()

    def predict(self, adapter: str, texts: list[str]) -> dict:
        import httpx

        try:
            r = httpx.post(self.url() + "/v1/predict", json={"adapter": adapter, "inputs": texts}, timeout=30)
        except httpx.HTTPError as e:
            raise TunesmithError(f"the server did not answer: {e}") from None
        if r.status_code != 200:
            raise TunesmithError(f"server answered {r.status_code}: {r.text[:300]}")
        return r.json()

    def stop(self) -> Job:
        job = self.current()
        if job is None or not self.store.alive(job):
            raise TunesmithError("no server is running")
        return self.store.cancel(job.id, grace_s=15)
