"""Every curl example in README.md and docs/serving.md, replayed against the in-process app with
the method, headers and Content-Type curl itself would send (`-d` means
application/x-www-form-urlencoded), in the order the documents give them. A documented answer on
the line after a command (`# {...}`) must have the same shape as the real one."""
import json
import shlex
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from test_serve import config, peft_adapter, root  # noqa: F401  (module fixture)
from tunesmith.serve.app import create_app

DOCS = [Path(__file__).parents[1] / "README.md", Path(__file__).parents[1] / "docs" / "serving.md"]
TOKEN = "example-token"
ENV = {"TUNESMITH_ADMIN_TOKEN": TOKEN}
VALUED = {"-d", "--data", "--data-raw", "--data-binary", "--json", "-H", "--header", "-X", "--request",
          "-o", "--output", "-w", "--write-out", "-m", "--max-time"}


def code_lines(path: Path) -> list[str]:
    """Lines inside ``` fences, backslash continuations joined."""
    out, inside, pending = [], False, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            out.append(pending + line)
            pending = ""
    return out


def examples() -> list[tuple[str, str, str | None]]:
    """(document, curl command, documented answer or None)."""
    found = []
    for doc in DOCS:
        lines = code_lines(doc)
        for i, line in enumerate(lines):
            if line.strip().startswith("curl "):
                after = lines[i + 1].strip() if i + 1 < len(lines) else ""
                answer = after[1:].strip() if after.startswith("# {") else None
                found.append((doc.name, line.strip(), answer))
    return found


def as_request(command: str) -> dict:
    """The request curl would send for `command` (the part before a pipe)."""
    words = shlex.split(command.split(" | ")[0])
    assert words[0] == "curl"
    method, headers, data, url, it = None, {}, None, None, iter(words[1:])
    for word in it:
        if word in VALUED:
            value = next(it)
            for var, sub in ENV.items():
                value = value.replace("$" + var, sub)
            if word in ("-X", "--request"):
                method = value
            elif word in ("-H", "--header"):
                key, _, val = value.partition(":")
                headers[key.strip().lower()] = val.strip()
            elif word in ("-d", "--data", "--data-raw", "--data-binary"):
                assert not value.startswith("@"), "file bodies are not replayed"
                data = value
                headers.setdefault("content-type", "application/x-www-form-urlencoded")  # what curl sends
            elif word == "--json":
                data = value
                headers.setdefault("content-type", "application/json")
        elif not word.startswith("-"):
            url = word
    path = "/" + url.split("://", 1)[-1].split("/", 1)[1] if "/" in url.split("://", 1)[-1] else "/"
    return {"method": method or ("POST" if data is not None else "GET"), "url": path,
            "headers": headers, "content": data.encode() if data is not None else None}


def same_shape(documented, real) -> bool:
    if isinstance(documented, dict):
        return isinstance(real, dict) and documented.keys() <= real.keys() and \
            all(same_shape(v, real[k]) for k, v in documented.items())
    if isinstance(documented, list):
        return isinstance(real, list) and (not documented or (real and same_shape(documented[0], real[0])))
    return type(documented) is type(real) or (isinstance(documented, float) and isinstance(real, (int, float)))


@pytest.fixture(scope="module")
def docs_client(root):  # noqa: F811
    """The names the documents use: adapters 'sentiment' and 'spam' under the root."""
    if not (root / "spam").exists():
        peft_adapter(root / "base", root / "spam", ["ham", "spam"], seed=5)
    cfg = config(root, "sentiment=run-lora", "spam=spam")
    cfg.server.admin_token = TOKEN
    with TestClient(create_app(cfg)) as c:
        yield c


def test_documents_have_examples():
    found = examples()
    assert len(found) >= 8, found
    assert any(doc == "README.md" and "/v1/predict -d" in cmd for doc, cmd, _ in found)


def test_every_documented_curl_command_works(docs_client):
    for doc, command, answer in examples():
        req = as_request(command)
        r = docs_client.request(**req)
        assert r.status_code < 400, f"{doc}: {command}\n-> {r.status_code} {r.text[:300]}"
        if answer is not None:
            documented = json.loads(answer)
            assert same_shape(documented, r.json()), f"{doc}: {command}\n{answer}\nvs {r.text[:300]}"
            if "adapter" in documented:
                assert r.json()["adapter"] == documented["adapter"]


def test_the_replay_sends_what_curl_sends():
    req = as_request("curl -s localhost:8000/v1/predict -d '{\"a\": 1}'")
    assert req["method"] == "POST" and req["url"] == "/v1/predict"
    assert req["headers"]["content-type"] == "application/x-www-form-urlencoded"
    req = as_request('curl -s -X DELETE -H "Authorization: Bearer $TUNESMITH_ADMIN_TOKEN" localhost:8000/v1/adapters/x')
    assert req["method"] == "DELETE" and req["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert as_request("curl -s localhost:8000/metrics | grep x")["url"] == "/metrics"
