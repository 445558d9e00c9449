"""The server's gate and shutdown: content types, body limits before reading, token before body,
admission by expected wait, local /docs assets, cutting slow bodies, exit status after SIGTERM."""
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from test_serve import TEXTS, config, predict, root, wait_for  # noqa: F401  (module fixture)
from tunesmith.serve.app import create_app
from tunesmith.serve.batcher import Throughput
from tunesmith.serve.config import ServeConfig
from tunesmith.serve.guard import Guard

BODY = b'{"adapter": "sent", "inputs": ["a lovely film"]}'


@pytest.fixture(scope="module")
def client(root):  # noqa: F811
    cfg = config(root, "sent=run-lora", limits__max_body_bytes=64 * 1024)
    cfg.server.admin_token = "s3cret"
    with TestClient(create_app(cfg)) as c:
        yield c


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded", "text/plain", None,
                                   "application/json; charset=utf-8", "multipart/form-data"])
def test_json_body_is_read_whatever_the_content_type(client, ctype):
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/v1/predict", content=BODY, headers=headers)
    assert r.status_code == 200, r.text
    assert [p["label"] for p in r.json()["predictions"]] == \
        [p["label"] for p in predict(client, "sent", ["a lovely film"]).json()["predictions"]]


def test_non_json_body_says_what_was_sent(client):
    r = client.post("/v1/predict", content=b"adapter=sent&inputs=x",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422
    assert "application/x-www-form-urlencoded" in r.json()["error"] and "JSON" in r.json()["error"]


class Endless:
    """A body that would never end; counts the chunks the server pulled."""

    def __init__(self, chunk: int = 16 * 1024):
        self.chunk, self.pulled = b"x" * chunk, 0

    async def __aiter__(self):
        while True:
            self.pulled += 1
            yield self.chunk


def stream(root, method: str, path: str, body: Endless, headers: dict | None = None):  # noqa: F811
    """Send `body` as a streamed (chunked unless Content-Length is given) request through httpx's
    ASGI transport, which pulls chunks only when the app asks (TestClient reads the whole body
    first). The gate answers before the app, so the app's lifespan need not run."""
    import httpx

    cfg = config(root, "sent=run-lora", limits__max_body_bytes=64 * 1024)
    cfg.server.admin_token = "s3cret"

    async def go():
        transport = httpx.ASGITransport(app=create_app(cfg))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.request(method, path, content=body, headers=headers or {})

    return asyncio.run(go())


def test_chunked_body_over_the_limit_stops_early(root):  # noqa: F811
    body = Endless()
    r = stream(root, "POST", "/v1/predict", body, {"content-type": "application/json"})
    assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]
    assert body.pulled <= 64 * 1024 // len(body.chunk) + 1  # stopped right after the limit


def test_content_length_over_the_limit_is_refused_before_reading(root):  # noqa: F811
    body = Endless()
    r = stream(root, "POST", "/v1/predict", body, {"content-type": "application/json", "content-length": str(10**9)})
    assert r.status_code == 413 and body.pulled == 0


def test_admin_token_is_checked_before_the_body(root, client):  # noqa: F811
    body = Endless()
    r = stream(root, "POST", "/v1/adapters", body, {"content-length": str(10**8)})
    assert r.status_code == 401 and body.pulled == 0
    body = Endless()
    r = stream(root, "POST", "/v1/adapters", body, {"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and body.pulled == 0
    assert client.delete("/v1/adapters/sent").status_code == 401
    assert predict(client, "sent", TEXTS).status_code == 200  # still loaded


def test_expected_wait_over_the_bound_answers_429_with_retry_after(root):  # noqa: F811
    cfg = config(root, "sent=run-lora", batching__max_wait_ms=3000.0, batching__admission_wait_s=2.0)
    with TestClient(create_app(cfg)) as c:
        batcher = c.app.state.tunesmith.batcher
        batcher.throughput.per_second = 1.0  # fake a slow machine: one input per second
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(predict, c, "sent", TEXTS[:2])  # 2 s expected: admitted
            assert wait_for(lambda: batcher.queued_inputs == 2)
            r = predict(c, "sent", TEXTS[:3])  # (2 + 3) / 1 = 5 s > 2 s
            assert r.status_code == 429 and "expected wait" in r.json()["error"]
            assert r.headers["retry-after"] == "3"  # the 3 s over the bound
            assert first.result().status_code == 200
        # the real batch cycle (3 s of batching wait for 2 inputs) moved the estimate
        assert 0 < batcher.throughput.per_second < 1.0


def test_before_the_first_batch_the_queue_holds_one_batch(root):  # noqa: F811
    cfg = config(root, "sent=run-lora", batching__max_wait_ms=3000.0, batching__max_batch_tokens=20,
                 batching__warm_up=False)
    with TestClient(create_app(cfg)) as c:
        batcher = c.app.state.tunesmith.batcher
        assert batcher.throughput.per_second == 0
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(predict, c, "sent", TEXTS[:2])  # under 20 tokens: waits for the batch
            assert wait_for(lambda: batcher.queued_inputs == 2)
            assert batcher.queued_tokens < 20
            r = predict(c, "sent", TEXTS[:2])  # would make the queue more than one batch
            assert r.status_code == 429 and "measuring throughput" in r.json()["error"]
            assert first.result().status_code == 200
        assert batcher.throughput.per_second > 0
        assert predict(c, "sent", TEXTS[:2]).status_code == 200  # measured: admitted by expected wait


def test_warm_up_measures_throughput_before_ready(client):
    assert client.app.state.tunesmith.batcher.throughput.per_second > 0


def test_queued_requests_that_would_time_out_are_shed_with_429(client):
    from tunesmith.serve.batcher import MicroBatcher, Pending, QueueFull
    from tunesmith.serve.metrics import Metrics

    reg = client.app.state.tunesmith.registry

    async def go(rate: float):
        b = MicroBatcher(reg, ServeConfig().batching, Metrics(), admission_wait_s=1.0, timeout_s=2.0)
        b.throughput.per_second = rate
        loop = asyncio.get_running_loop()
        pending = [Pending(reg.encode("sent", ["a"]), loop.create_future(), 3) for _ in range(4)]
        for p in pending:
            b.queue.append(p)
            b._account(p, +1)
        batch = b._take()  # the loop is not running: take one batch by hand
        return pending, batch, b

    pending, batch, b = asyncio.run(go(rate=1.0))  # 1 input/s: the 2nd..4th would end after 2 s
    assert batch == pending[:1] and not b.queue and b.queued_inputs == 0
    for p in pending[1:]:
        assert isinstance(p.future.exception(), QueueFull)
    pending, batch, b = asyncio.run(go(rate=100.0))  # fast enough: nothing shed
    assert len(batch) + len(b.queue) == 4 and not any(p.future.done() for p in pending)


def test_throughput_is_a_moving_average():
    t = Throughput(alpha=0.5)
    assert t.seconds_for(10) is None
    t.add(100, 1.0)
    t.add(300, 1.0)
    assert t.per_second == 200.0 and t.seconds_for(50) == 0.25


def test_admission_wait_must_be_below_the_timeout():
    from tunesmith.errors import TunesmithError

    cfg = ServeConfig()
    assert cfg.admission_wait() == cfg.limits.timeout_s / 3
    cfg.batching.admission_wait_s = cfg.limits.timeout_s
    with pytest.raises(TunesmithError, match="admission_wait_s"):
        cfg.__post_init__()


def test_docs_page_loads_its_assets_locally(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert not re.search(r"https?://", page.text), re.findall(r"https?://\S+", page.text)
    for src in re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', page.text):
        asset = client.get(src)
        assert asset.status_code == 200 and len(asset.content) > 1000
    assert client.get("/docs-assets/swagger-ui-bundle.js").headers["content-type"].startswith("application/javascript")
    assert client.get("/docs-assets/..%2Fcore.py").status_code == 404
    assert "/docs-assets/{name}" not in client.get("/openapi.json").json()["paths"]


def test_draining_answers_503_with_connection_close(client):
    st = client.app.state.tunesmith
    st.draining = True
    try:
        r = client.post("/v1/predict", content=BODY)
        assert r.status_code == 503 and r.headers["connection"] == "close" and "retry-after" in r.headers
    finally:
        st.draining = False


# ---- Guard alone, with a receive() that never finishes the body ------------------------------
class FakeState:
    def __init__(self, body_timeout_s: float = 10.0):
        self.cfg = ServeConfig()
        self.cfg.limits.body_timeout_s = body_timeout_s
        self.token, self.draining, self.stopping = None, False, asyncio.Event()


async def half_sent_body(state: FakeState, stop_after_first: bool) -> tuple[int, float]:
    """(status, seconds) for a body of which only the first chunk ever arrives."""
    chunks = 0

    async def receive():
        nonlocal chunks
        chunks += 1
        if chunks == 1:
            if stop_after_first:
                asyncio.get_running_loop().call_later(0.05, state.stopping.set)
            return {"type": "http.request", "body": b'{"adap', "more_body": True}
        await asyncio.Event().wait()  # the rest never comes

    sent = []

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):  # never reached
        raise AssertionError("the app must not see an incomplete body")

    scope = {"type": "http", "method": "POST", "path": "/v1/predict", "headers": []}
    t0 = time.monotonic()
    await Guard(app, state)(scope, receive, send)
    return sent[0]["status"], time.monotonic() - t0


def test_shutdown_cuts_a_half_sent_body():
    status, seconds = asyncio.run(half_sent_body(FakeState(body_timeout_s=30.0), stop_after_first=True))
    assert status == 503 and seconds < 5


def test_slow_body_times_out_with_408():
    status, seconds = asyncio.run(half_sent_body(FakeState(body_timeout_s=0.1), stop_after_first=False))
    assert status == 408 and seconds < 5


# ---- the real process: signals and exit status --------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, port: int) -> subprocess.Popen:  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    argv = [sys.executable, "-m", "tunesmith.cli", "serve", "--base", str(root / "base"), "--port", str(port),
            "--model.adapter_root", str(root), "--adapter", "sent=run-lora", "--server.shutdown_grace_s=20",
            "--server.drain_linger_s=0.1"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    import httpx

    def ready():
        assert proc.poll() is None, proc.stdout.read()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_for(ready, 180), "server did not become ready"
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_cuts_a_half_sent_body_and_exits_0(root, sig):  # noqa: F811
    port = free_port()
    proc = start_server(root, port)
    try:
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 200\r\n\r\n" + BODY[:20])  # 180 bytes never follow
        time.sleep(0.3)  # let the server start reading it
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=15)  # far under the 20 s grace: the slow body was cut
        took = time.monotonic() - t0
        answer = slow.recv(4096)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert took < 10, f"shutdown took {took:.1f} s"
    assert answer.startswith(b"HTTP/1.1 503"), answer
    assert "resume" not in out and "Traceback" not in out
