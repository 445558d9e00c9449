"""Hostile request bodies for every endpoint of the server (in process, fastapi TestClient): any
bytes or JSON either work or get a 4xx with an {"error": ...} body - never a 500, never a hang."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("TUNESMITH_FUZZ_EXAMPLES", "100"))
pytestmark = pytest.mark.timeout(900)  # a request that hangs fails by pytest-timeout, not a wall-time assertion
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TOKEN = "s3cret"
ENDPOINTS = ["/v1/predict", "/v1/fill-mask", "/v1/ner", "/v1/generate", "/v1/adapters"]
KEYS = ["adapter", "inputs", "all_scores", "model", "top_k", "max_new_tokens", "name", "path", "extra"]

text = st.text(max_size=60) | st.sampled_from(["two", "../..", "/etc/passwd", "\x00", "a" * 5000, "two\x00", "\ud800x"])
scalar = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | text
json_value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=4),
                          max_leaves=15)
# Near-valid bodies reach the handlers; the rest tests validation.
near_valid = st.fixed_dictionaries({}, optional={k: json_value | st.lists(text, max_size=70) for k in KEYS}) | \
    st.fixed_dictionaries({"adapter": st.just("two") | text, "inputs": st.lists(text, max_size=70)},
                          optional={"all_scores": st.booleans() | scalar}) | \
    st.fixed_dictionaries({"model": st.just("two") | text, "inputs": st.lists(text, max_size=5)},
                          optional={"top_k": scalar, "max_new_tokens": scalar})


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from fastapi.testclient import TestClient

    from conftest import make_tiny_bert
    from test_serve import config, peft_adapter
    from tunesmith.serve.app import create_app

    root = tmp_path_factory.mktemp("fuzz-serve")
    make_tiny_bert(root / "base")
    peft_adapter(root / "base", root / "two", ["no", "yes"], seed=2)
    cfg = config(root, "two=two", batching__max_wait_ms=1.0)
    cfg.server.admin_token = TOKEN
    with TestClient(create_app(cfg), raise_server_exceptions=False) as c:
        yield c


def check(response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        # {"error": ...} from tunesmith's handlers; Starlette's own 400 (unparseable body) and 405
        # still answer {"detail": ...} (serve/app.py handles fastapi's HTTPException, not Starlette's)
        body = response.json()
        assert "error" in body or "detail" in body


def send(client, path: str, content: bytes, content_type: str | None, auth: bool):
    headers = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
    if content_type:
        headers["Content-Type"] = content_type
    return client.post(path, content=content, headers=headers)


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), body=st.binary(max_size=400),
       ctype=st.sampled_from(["application/json", "text/plain", None, "application/json; charset=latin-1"]),
       auth=st.booleans())
def test_any_bytes(client, path, body, ctype, auth):
    check(send(client, path, body, ctype, auth))


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), body=json_value | near_valid, auth=st.booleans())
def test_any_json(client, path, body, auth):
    raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    r = send(client, path, raw, "application/json", auth)
    check(r)
    if path == "/v1/adapters" and r.status_code == 201:  # a fuzzed load succeeded: undo it
        client.delete(f"/v1/adapters/{body['name']}", headers={"Authorization": f"Bearer {TOKEN}"})


@FUZZ
@given(name=text.filter(lambda n: n != "two"), auth=st.booleans())
def test_delete_any_name(client, name, auth):
    from urllib.parse import quote

    r = client.delete(f"/v1/adapters/{quote(name.encode('utf-8', 'surrogatepass'), safe='')}",
                      headers={"Authorization": f"Bearer {TOKEN}"} if auth else {})
    check(r)


def test_named_hostile_bodies(client):
    deep = b'{"adapter": "two", "inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    cases = [b"", b"\x00" * 100, b"\xef\xbb\xbf{}", "{\"adapter\": \"two\", \"inputs\": [\"caf\xe9\"]}".encode("latin-1"),
             deep, b'{"adapter": "two", "inputs": ["' + b"a" * 2_000_000 + b'"]}',
             b'{"adapter": "two", "inputs": ["ok"], "all_scores": NaN}', b'{"adapter": "two", "inputs": [' + b"9" * 5000 + b"]}",
             b'{"adapter": "two", "inputs": ["x\\u0000y", "\\ud800"]}', b"[" * 100_000]
    for body in cases:
        for path in ENDPOINTS:
            check(send(client, path, body, "application/json", True))


def test_valid_request_still_works(client):
    r = client.post("/v1/predict", json={"adapter": "two", "inputs": ["a good film", "x\u0000y"]})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2


def test_surrogate_adapter_name_is_a_4xx_and_metrics_stay_readable(client):
    """Found by test_any_json: a lone surrogate in the adapter name made the 404 reply (which
    echoes the name) fail to encode, a 500; and the name became a metrics label."""
    raw = json.dumps({"adapter": "\ud800x", "inputs": []}).encode()
    r = send(client, "/v1/predict", raw, "application/json", False)
    check(r)
    assert r.status_code in (404, 422)
    m = client.get("/metrics")
    assert m.status_code == 200 and "ud800" not in m.text and "\ud800" not in m.text
