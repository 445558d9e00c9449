"""The HTTP layer: decode -> registry/batcher -> encode. `create_app(config)` builds it.

Status codes: 400 wrong task or bad adapter path, 401 admin token, 404 unknown adapter,
408 body too slow, 409 name taken, 413 over a limit (body size, inputs, characters), 422
malformed JSON or types, 429 expected wait too long or queue full (Retry-After), 503 draining
or not ready, 504 request timeout. Bodies are JSON whatever their Content-Type (see guard.py).
"""
from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from ..errors import TunesmithError
from ..tasks.registry import REGISTRY as TASKS
from .batcher import MicroBatcher, QueueFull
from .config import ServeConfig, check_name, parse_adapters
from .docs import add_docs_routes
from .guard import SENT_TYPE, Guard
from .memory import Trimmer
from .metrics import Metrics
from .registry import NotFound, Registry, WrongTask
from .security import PathRejected, admin_token, check_bind, token_ok


# ---- request and response bodies (these are the OpenAPI schema) -----------------------------
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(Strict):
    adapter: StrictStr = Field(description="adapter or model name (GET /v1/adapters)", examples=["sentiment"])
    inputs: list[StrictStr] = Field(description="texts to classify", examples=[["a gorgeous, witty film"]])
    all_scores: StrictBool = Field(False, description="also return every label's probability")


class Prediction(BaseModel):
    label: str
    score: float
    scores: dict[str, float] | None = None


class PredictResponse(BaseModel):
    adapter: str
    predictions: list[Prediction]


class TaskRequest(Strict):
    model: StrictStr = Field(description="name of a loaded model that has this task's head")
    inputs: list[StrictStr]
    top_k: StrictInt | None = Field(None, ge=1, le=50, description="fill-mask: candidates per mask")
    max_new_tokens: StrictInt | None = Field(None, ge=1, le=512, description="generation: tokens to add")


class LoadRequest(Strict):
    name: StrictStr = Field(description="name to serve it under", examples=["spam"])
    path: StrictStr = Field(description="run directory, relative to the adapter root", examples=["spam-run"])


class Error(BaseModel):
    error: str


ERRORS = {400: {"model": Error, "description": "wrong task for this adapter / bad path"},
          404: {"model": Error, "description": "unknown adapter"},
          408: {"model": Error, "description": "request body not received in time"},
          413: {"model": Error, "description": "body too large, too many inputs or an input too long"},
          422: {"description": "malformed JSON or wrong types"},
          429: {"model": Error, "description": "expected wait too long (or queue full); see Retry-After"},
          503: {"model": Error, "description": "shutting down or not ready"},
          504: {"model": Error, "description": "request timed out"}}
ADMIN_ERRORS = {400: ERRORS[400], 401: {"model": Error, "description": "missing or wrong bearer token"},
                403: {"model": Error, "description": "admin endpoints are turned off"},
                404: ERRORS[404], 409: {"model": Error, "description": "name already loaded"}}

# Task endpoint -> the Predictor method that answers it (the task records; /classify has its own route).
TASK_METHODS = {t.endpoint: (t.predict,) for t in TASKS.values() if t.endpoint and not t.batched_endpoint}


def printable(text: str) -> str:
    """Client text echoed in a reply: lone surrogates (valid JSON escapes, not encodable as UTF-8)
    become backslash escapes, so echoing them cannot fail the response."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": printable(message)}, status_code=status, headers=headers)


class State:
    """Everything one app instance holds."""

    def __init__(self, cfg: ServeConfig, registry: Registry | None):
        self.cfg = cfg
        self.registry = registry
        self.metrics = Metrics()
        self.batcher: MicroBatcher | None = None
        self.token = admin_token(cfg.server.admin_token)
        self.ready = False
        self.draining = False  # new /v1/ requests get 503 (set on SIGTERM/SIGINT)
        self.stopping = asyncio.Event()  # shutdown has begun: cut bodies still arriving
        self.inflight = 0
        self.admin_lock = asyncio.Lock()


def describe_metrics(m: Metrics) -> None:
    m.describe("tunesmith_requests_total", "HTTP requests by endpoint, adapter and status code")
    m.describe("tunesmith_request_seconds", "request latency in seconds")
    m.describe("tunesmith_inputs_total", "texts served, by adapter")
    m.describe("tunesmith_batch_inputs", "inputs per forward micro-batch")
    m.describe("tunesmith_batch_requests", "requests per forward micro-batch")
    m.describe("tunesmith_batches_total", "micro-batches run")
    m.describe("tunesmith_queue_depth", "inputs waiting for the model")
    m.describe("tunesmith_throughput_inputs_per_second", "measured inputs/s (EWMA), the admission estimate")
    m.describe("tunesmith_inflight_requests", "requests being served now")
    m.describe("tunesmith_adapters_loaded", "adapters and models loaded")
    m.describe("tunesmith_resident_memory_bytes", "resident memory of the server process")
    m.describe("tunesmith_weights_bytes", "weights held: base, adapters, whole models")


# ---- startup and shutdown ------------------------------------------------------------------
async def load_named(st: State, name: str, path: str):
    check_name(name)
    reg = st.registry
    if name in reg.entries:
        raise HTTPException(409, f"'{name}' is already loaded; DELETE /v1/adapters/{name} first")
    kind = await asyncio.to_thread(reg.kind_of, path)
    if kind == "lora":
        files = await asyncio.to_thread(reg.read_adapter, name, path)
        return await st.batcher.on_model_thread(reg.attach, files)
    return await asyncio.to_thread(reg.load_model, name, path)  # a separate model: no shared state


async def unload_named(st: State, name: str) -> None:
    entry = st.registry.get(name)
    entry.removing = True  # new requests for it get 404 from here on
    deadline = time.monotonic() + st.cfg.server.shutdown_grace_s
    while entry.pending > 0 and time.monotonic() < deadline:  # let queued requests finish
        await asyncio.sleep(0.005)
    await st.batcher.on_model_thread(st.registry.detach, name)


async def warm_up(st: State) -> None:
    """One batch of 8 short texts through the normal path for a LoRA adapter: a cold first batch
    of a few hundred inputs took over 30 s on the loaded machine (504s in the first soak), and the
    throughput estimate admission relies on starts from this measurement instead of from nothing."""
    lora = [e.name for e in st.registry.entries.values() if e.kind == "lora"]
    if lora:
        n = min(8, st.cfg.batching.max_queue, st.cfg.limits.max_inputs)
        await st.batcher.submit(st.registry.encode(lora[0], ["warm-up"] * n))


@asynccontextmanager
async def lifespan(app: FastAPI):
    st: State = app.state.tunesmith
    cfg = st.cfg
    if st.registry is None:
        st.registry = await asyncio.to_thread(
            Registry, cfg.model.base, cfg.model.adapter_root, cfg.model.device, cfg.model.max_length,
            cfg.batching.max_forward_tokens, cfg.model.dtype)
    st.batcher = MicroBatcher(st.registry, cfg.batching, st.metrics, cfg.admission_wait(), Trimmer(),
                              cfg.limits.timeout_s)
    await st.batcher.start()
    for name, path in parse_adapters(cfg.model.adapters).items():
        await load_named(st, name, path)
    if cfg.batching.warm_up:
        await warm_up(st)
    st.ready = True
    try:
        yield
    finally:
        st.draining, st.ready = True, False
        deadline = time.monotonic() + cfg.server.shutdown_grace_s
        while st.inflight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await st.batcher.stop()


# ---- the app -------------------------------------------------------------------------------
def create_app(cfg: ServeConfig | None = None, registry: Registry | None = None) -> FastAPI:
    """The FastAPI app; models load at startup (use TestClient as a context manager).

    Example:
        >>> cfg = ServeConfig()
        >>> cfg.model.base, cfg.model.adapters = "minilm", ["sentiment=runs/a"]
        >>> app = create_app(cfg)   # uvicorn.run(app) or fastapi.testclient.TestClient(app)
    """
    cfg = cfg or ServeConfig()
    st = State(cfg, registry)
    check_bind(cfg.server.host, cfg.server.admin_enabled, st.token, cfg.server.allow_open_admin)
    describe_metrics(st.metrics)
    app = FastAPI(title="tunesmith serve", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="One base model, many adapters: per-request adapter routing with "
                              "micro-batching across adapters, bounded queue, admin endpoints to "
                              "load and unload adapters at run time, Prometheus metrics.")
    app.state.tunesmith = st
    app.add_middleware(Guard, state=st)  # inside `account`, so its answers are counted too
    add_middleware(app, st)
    add_error_handlers(app, st)
    add_predict_routes(app, st)
    add_admin_routes(app, st)
    add_ops_routes(app, st)
    add_docs_routes(app)
    return app


def add_middleware(app: FastAPI, st: State) -> None:
    @app.middleware("http")
    async def account(request: Request, call_next):
        path = request.url.path
        start = time.monotonic()
        st.inflight += 1
        st.metrics.set("tunesmith_inflight_requests", st.inflight)
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            st.inflight -= 1
            st.metrics.set("tunesmith_inflight_requests", st.inflight)
            if path.startswith("/v1/"):
                route = request.scope.get("route")
                endpoint = getattr(route, "path", "other")
                adapter = getattr(request.state, "adapter", "")
                # label only loaded names: client-chosen names would grow the metrics without bound
                if adapter and (st.registry is None or adapter not in st.registry.entries):
                    adapter = "(unknown)"
                st.metrics.inc("tunesmith_requests_total", endpoint=endpoint, adapter=adapter,
                               status=str(status))
                st.metrics.observe("tunesmith_request_seconds", time.monotonic() - start, endpoint=endpoint)


def add_error_handlers(app: FastAPI, st: State) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else first.get("msg", "invalid request")
        sent = request.scope.get(SENT_TYPE)
        if sent and first.get("type") == "json_invalid":
            message = (f"the body is not valid JSON (sent with Content-Type {sent}; the body is read as "
                       f"JSON whatever the type): {message}")
        detail = [{k: e.get(k) for k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"error": message, "detail": detail}, status_code=422)

    # Starlette's class (FastAPI's subclasses it) so routing 404/405s get the same {"error": ...} body.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return error(404, str(exc))

    @app.exception_handler(QueueFull)
    async def busy(request: Request, exc: QueueFull):
        return error(429, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(TunesmithError)
    async def bad(request: Request, exc: TunesmithError):  # WrongTask, PathRejected, bad run dirs
        return error(400, str(exc))


def check_limits(st: State, inputs: list[str]) -> None:
    lim = st.cfg.limits
    if len(inputs) > lim.max_inputs:
        raise HTTPException(413, f"{len(inputs)} inputs; at most {lim.max_inputs} per request")
    for i, text in enumerate(inputs):
        if len(text) > lim.max_chars:
            raise HTTPException(413, f"inputs[{i}] has {len(text)} characters; at most {lim.max_chars}")
        try:  # JSON may carry lone surrogates ("\ud800"); the tokenizer raises TypeError on them (a 500)
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPException(422, f"inputs[{i}] is not valid Unicode (a lone surrogate escape such as "
                                     "\\ud800); send UTF-8 text") from None


def to_predictions(logits: list[torch.Tensor], labels: list[str], all_scores: bool) -> list[dict]:
    out = []
    for row in logits:
        probs = torch.softmax(row.float(), dim=-1)
        best = int(probs.argmax())
        pred = {"label": labels[best], "score": round(float(probs[best]), 6)}
        if all_scores:
            pred["scores"] = {labels[i]: round(float(p), 6) for i, p in enumerate(probs)}
        out.append(pred)
    return out


def add_predict_routes(app: FastAPI, st: State) -> None:
    @app.post("/v1/predict", response_model=PredictResponse, response_model_exclude_none=True,
              responses=ERRORS, tags=["inference"],
              summary="classify texts with one adapter; requests for other adapters share the batch")
    async def predict(body: PredictRequest, request: Request):
        request.state.adapter = body.adapter
        check_limits(st, body.inputs)
        works = st.registry.encode(body.adapter, body.inputs)  # 404 / 400 before queueing
        entry = works[0].entry if works else st.registry.get(body.adapter)
        if not works:
            return {"adapter": body.adapter, "predictions": []}
        entry.pending += 1
        try:
            logits = await asyncio.wait_for(st.batcher.submit(works), st.cfg.limits.timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"request timed out after {st.cfg.limits.timeout_s} s") from None
        finally:
            entry.pending -= 1
        st.metrics.inc("tunesmith_inputs_total", len(works), adapter=body.adapter)
        return {"adapter": body.adapter, "predictions": to_predictions(logits, entry.labels, body.all_scores)}

    for task, methods in TASK_METHODS.items():
        add_task_route(app, st, task, methods)


def add_task_route(app: FastAPI, st: State, task: str, methods: tuple[str, ...]) -> None:
    async def run_task(body: TaskRequest, request: Request) -> dict[str, Any]:
        request.state.adapter = body.model
        check_limits(st, body.inputs)
        entry = st.registry.get(body.model)
        pred = entry.predictor
        method = next((m for m in methods if pred is not None and callable(getattr(pred, m, None))), methods[0])
        kwargs = {k: v for k, v in (("top_k", body.top_k), ("max_new_tokens", body.max_new_tokens))
                  if v is not None}
        entry.pending += 1
        try:
            result = await asyncio.wait_for(
                st.batcher.on_model_thread(lambda: st.registry.call_task(body.model, task, method,
                                                                         list(body.inputs), **kwargs)),
                st.cfg.limits.timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"request timed out after {st.cfg.limits.timeout_s} s") from None
        except TypeError as e:
            raise WrongTask(f"task not supported by this model: {e}") from None
        finally:
            entry.pending -= 1
        return {"model": body.model, "outputs": result}

    run_task.__name__ = f"task_{task.replace('-', '_')}"
    app.post(f"/v1/{task}", responses=ERRORS, tags=["inference"],
             summary=f"{task} with a loaded model that has this head (400 otherwise)")(run_task)


def add_admin_routes(app: FastAPI, st: State) -> None:
    bearer = HTTPBearer(auto_error=False, description="admin token (--server.admin_token)")

    async def admin(request: Request, _: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not st.cfg.server.admin_enabled:
            raise HTTPException(403, "admin endpoints are turned off (--server.admin_enabled=false)")
        if not token_ok(request.headers.get("authorization"), st.token):
            raise HTTPException(401, "admin endpoints need 'Authorization: Bearer <token>'",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.get("/v1/adapters", tags=["adapters"], summary="loaded adapters and models")
    async def list_adapters() -> dict[str, Any]:
        reg = st.registry
        return {"base": reg.base_spec, "adapters": [e.describe() for e in reg.entries.values() if not e.removing]}

    @app.post("/v1/adapters", status_code=201, responses=ADMIN_ERRORS, tags=["adapters"],
              dependencies=[Depends(admin)], summary="load an adapter (admin); requests in flight go on")
    async def load(body: LoadRequest, request: Request) -> dict[str, Any]:
        request.state.adapter = body.name
        async with st.admin_lock:
            try:
                entry = await load_named(st, body.name, body.path)
            except PathRejected as e:
                raise HTTPException(400, str(e)) from None
        return entry.describe()

    @app.delete("/v1/adapters/{name}", responses=ADMIN_ERRORS, tags=["adapters"],
                dependencies=[Depends(admin)], summary="unload an adapter (admin) after its queued requests")
    async def unload(name: str, request: Request) -> dict[str, Any]:
        request.state.adapter = name
        async with st.admin_lock:
            await unload_named(st, name)
        return {"unloaded": name}


def add_ops_routes(app: FastAPI, st: State) -> None:
    @app.get("/healthz", tags=["ops"], summary="the process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: ERRORS[503]}, summary="models loaded, not draining")
    async def readyz():
        if not st.ready or st.draining:
            return error(503, "draining" if st.draining else "loading")
        reg = st.registry
        return {"status": "ready", "adapters": len(reg.entries), "device": str(reg.device),
                "precision": reg.precision, "precision_reason": reg.precision_reason}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse,
             summary="Prometheus text format: requests, latency, batch sizes, queue, adapters, memory")
    async def metrics() -> PlainTextResponse:
        import psutil

        m, reg = st.metrics, st.registry
        if reg is not None:
            m.set("tunesmith_adapters_loaded", sum(e.kind == "lora" for e in reg.entries.values()), kind="lora")
            m.set("tunesmith_adapters_loaded", sum(e.kind == "model" for e in reg.entries.values()), kind="model")
            for part, value in reg.memory().items():
                m.set("tunesmith_weights_bytes", value, part=part.removesuffix("_bytes"))
        m.set("tunesmith_resident_memory_bytes", psutil.Process().memory_info().rss)
        return PlainTextResponse(m.render(), media_type="text/plain; version=0.0.4")
