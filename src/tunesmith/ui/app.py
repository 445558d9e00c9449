"""The UI's FastAPI app: six pages (server-rendered, Jinja2) and the JSON API their scripts call.

Endpoints that compute (reading data, advise, loading a Predictor) are plain `def`s, which FastAPI
runs in its thread pool: the event loop keeps answering the other pages meanwhile; training,
compare and serve are separate processes (jobs.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ..errors import TunesmithError
from . import choose, data_view, predict_view, report_view, security
from .jobs import JobStore
from .runs_index import list_runs, run_path
from .serve_view import ServeManager

HERE = Path(__file__).parent
PAGES = {"data": "Data", "choose": "Choose", "train": "Train", "report": "Report", "try": "Try", "serve": "Serve"}


@dataclass
class UIConfig:
    """Where the UI works and how it is reached."""

    workspace: Path = Path(".")  # jobs run here (relative paths in configs are relative to it)
    runs: Path = Path("runs")  # run directories (relative to the workspace)
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None

    @property
    def runs_dir(self) -> Path:
        return (Path(self.workspace) / self.runs).resolve()


class State:
    def __init__(self, cfg: UIConfig):
        self.cfg = cfg
        cfg.runs_dir.mkdir(parents=True, exist_ok=True)
        self.jobs = JobStore(Path(cfg.workspace).resolve(), cfg.runs_dir)
        self.server = ServeManager(self.jobs, cfg.runs_dir)
        self.predictors = predict_view.Predictors()
        self.uploads = cfg.runs_dir / "_uploads"


def create_app(cfg: UIConfig | None = None) -> FastAPI:
    cfg = cfg or UIConfig()
    security.check_bind(cfg.host, cfg.token)
    st = State(cfg)
    app = FastAPI(title="tunesmith ui", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ui = st
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    add_guard(app, cfg)
    add_pages(app, st)
    add_data_routes(app, st)
    add_job_routes(app, st)
    add_run_routes(app, st)
    add_try_serve_routes(app, st)

    @app.exception_handler(TunesmithError)
    async def tunesmith_error(request: Request, exc: TunesmithError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    return app


def add_guard(app: FastAPI, cfg: UIConfig) -> None:
    hosts = security.allowed_hosts(cfg.host, cfg.port)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = request.headers.get("host", "")
        if not cfg.token and host not in hosts and host != "testserver":  # with a token, the token guards
            return JSONResponse({"error": f"host '{host}' is not this UI's address"}, status_code=421)
        if not security.request_ok(request.headers, request.cookies, request.query_params, cfg.token):
            return JSONResponse({"error": "token required: open the UI as /?token=..."}, status_code=401)
        if request.method not in ("GET", "HEAD") and request.headers.get(security.HEADER) != "1":
            return JSONResponse({"error": f"missing header {security.HEADER}: 1"}, status_code=403)
        response = await call_next(request)
        if cfg.token and request.query_params.get("token") == cfg.token:
            response.set_cookie(security.COOKIE, cfg.token, httponly=True, samesite="strict")
        return response


def add_pages(app: FastAPI, st: State) -> None:
    templates = Jinja2Templates(directory=HERE / "templates")

    @app.get("/", include_in_schema=False)
    def index():
        return RedirectResponse("/data")

    def page(name: str):
        def render(request: Request) -> HTMLResponse:
            return templates.TemplateResponse(request, f"{name}.html", {"page": name, "pages": PAGES,
                                                                         "runs_dir": str(st.cfg.runs_dir)})
        return render

    for name in PAGES:
        app.add_api_route(f"/{name}", page(name), methods=["GET"], response_class=HTMLResponse)


def add_data_routes(app: FastAPI, st: State) -> None:
    @app.get("/api/builtins")
    def builtins():
        return data_view.builtins()

    @app.post("/api/upload")
    async def upload(request: Request, filename: str = Query(...)):
        body = await request.body()  # the raw file: no multipart parser needed
        return {"path": str(data_view.save_upload(st.uploads, filename, body))}

    @app.post("/api/data/inspect")
    def inspect(body: dict[str, Any] = Body(...)):
        return data_view.inspect(str(body.get("source") or ""), body.get("text_column"), body.get("label_column"),
                                 str(body.get("model") or "minilm"), int(body.get("max_length") or 128))

    @app.get("/api/form")
    def form():
        return {"fields": choose.form_schema()}

    @app.post("/api/config")
    def config(body: dict[str, Any] = Body(...)):
        return choose.describe(body.get("config") or {})

    @app.post("/api/advise")
    def advise(body: dict[str, Any] = Body(...)):
        return choose.advise(body.get("config") or {})


def job_view(st: State, job) -> dict:
    from .runs_index import job_status, read_json

    info = read_json(st.cfg.runs_dir / job.run / "run.json") if job.run and job.kind == "finetune" else None
    return {**asdict(job), "status": job_status(st.jobs, job, info), "command": choose.command_text(job.argv)}


def add_job_routes(app: FastAPI, st: State) -> None:
    @app.post("/api/jobs")
    def start(body: dict[str, Any] = Body(...)):
        kind, flat = body.get("kind", "finetune"), dict(body.get("config") or {})
        if kind == "finetune":
            from ..runs import default_run_dir

            cfg = choose.build_config(flat)
            rid = unique(st.cfg.runs_dir, default_run_dir(cfg.model.name, cfg.data.dataset, cfg.method.name).name)
            flat["output.dir"] = str(st.cfg.runs_dir / rid)
            job = st.jobs.start("finetune", choose.cli_args(choose.build_config(flat)), rid)
        elif kind == "compare":
            import time

            rid = unique(st.cfg.runs_dir, "compare-" + time.strftime("%Y%m%d-%H%M%S"))
            job = st.jobs.start("compare", choose.compare_args(flat, list(body.get("methods") or []),
                                                               str(st.cfg.runs_dir / rid)), rid)
        elif kind == "advise":
            job = st.jobs.start("advise", choose.advise_probe_args(flat))
        else:
            raise TunesmithError(f"unknown job kind '{kind}'; kinds: finetune, compare, advise")
        return job_view(st, job)

    @app.get("/api/jobs")
    def jobs():
        return [job_view(st, j) for j in st.jobs.all()]

    @app.get("/api/job")
    def job(id: str):
        j = st.jobs.get(id)
        return {**job_view(st, j), "log": st.jobs.log_tail(j)}

    @app.post("/api/job/cancel")
    def cancel(id: str):
        return job_view(st, st.jobs.cancel(id))

    @app.post("/api/job/resume")
    def resume(id: str):
        return job_view(st, st.jobs.resume(id))


def unique(runs_dir: Path, name: str) -> str:
    """A folder name under runs_dir that does not exist yet (two runs started in one second)."""
    out, n = name, 2
    while (runs_dir / out).exists():
        out, n = f"{name}-{n}", n + 1
    return out


def add_run_routes(app: FastAPI, st: State) -> None:
    @app.get("/api/runs")
    def runs():
        return list_runs(st.cfg.runs_dir, st.jobs)

    @app.get("/api/run")
    def run(id: str):
        """Status, progress and the metrics log so far: what the Train page polls."""
        path = run_path(st.cfg.runs_dir, id, must_exist=False)
        row = next((r for r in list_runs(st.cfg.runs_dir, st.jobs) if r["id"] == id), None)
        if row is None:
            raise TunesmithError(f"run '{id}' not found under {st.cfg.runs_dir}")
        return {**row, "metrics": report_view.read_metrics(path)}

    @app.get("/api/run/report")
    def report(id: str):
        return report_view.run_report(run_path(st.cfg.runs_dir, id))

    @app.get("/api/run/errors")
    def errors(id: str):
        return report_view.misclassified(run_path(st.cfg.runs_dir, id), st.predictors.get)

    @app.get("/api/run/file")
    def file(id: str, name: str):
        path, media = report_view.run_file(run_path(st.cfg.runs_dir, id), name)
        return FileResponse(path, media_type=media)


def add_try_serve_routes(app: FastAPI, st: State) -> None:
    @app.post("/api/try")
    def try_(body: dict[str, Any] = Body(...)):
        spec = body.get("run") and str(run_path(st.cfg.runs_dir, str(body["run"])))
        spec = spec or str(body.get("model") or "").strip()
        if not spec:
            raise TunesmithError("choose a run (or give a model) to try")
        texts = body.get("texts")
        if isinstance(texts, str):
            texts = texts.splitlines()
        return predict_view.predict(st.predictors, spec, texts or [], body.get("task") or None,
                                    int(body.get("max_new_tokens") or 30), int(body.get("top_k") or 5))

    @app.get("/api/serve")
    def serve_status():
        return st.server.status()

    @app.post("/api/serve")
    def serve_start(body: dict[str, Any] = Body(...)):
        job = st.server.start(list(body.get("runs") or []), int(body.get("port") or 8000), body.get("base") or None)
        return job_view(st, job)

    @app.post("/api/serve/stop")
    def serve_stop():
        return job_view(st, st.server.stop())

    @app.get("/api/serve/metrics")
    def serve_metrics():
        return Response(st.server.metrics(), media_type="text/plain")

    @app.get("/api/serve/adapters")
    def serve_adapters():
        return st.server.adapters()

    @app.post("/api/serve/predict")
    def serve_predict(body: dict[str, Any] = Body(...)):
        texts = body.get("texts") or []
        if isinstance(texts, str):
            texts = [t for t in texts.splitlines() if t.strip()]
        return st.server.predict(str(body.get("adapter") or ""), texts)
