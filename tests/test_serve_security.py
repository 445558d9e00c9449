"""Serving safety: adapter-root confinement, safetensors only, admin token, bind rules, config."""
import argparse
import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from test_serve import config, peft_adapter, predict, root  # noqa: F401  (module fixture)
from tunesmith.errors import TunesmithError
from tunesmith.serve.app import create_app
from tunesmith.serve.config import ServeConfig, parse_adapters
from tunesmith.serve.metrics import Metrics
from tunesmith.serve.security import PathRejected, check_bind, confine, is_loopback, token_ok


def test_confine_refuses_escapes(tmp_path):
    (tmp_path / "root" / "ok").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "root" / "link")
    r = tmp_path / "root"
    assert confine(r, "ok") == (r / "ok").resolve()
    assert confine(r, str(r / "ok")) == (r / "ok").resolve()  # absolute inside the root is fine
    for bad in ("../outside", "ok/../../outside", str(tmp_path / "outside"), "/etc", "link", "", "a\x00b"):
        with pytest.raises(PathRejected):
            confine(r, bad)


@pytest.fixture
def admin_client(root):  # noqa: F811
    cfg = config(root, "sent=run-lora")
    cfg.server.admin_token = "s3cret"
    with TestClient(create_app(cfg)) as c:
        yield c


def load(c, name, path, token="s3cret"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return c.post("/v1/adapters", json={"name": name, "path": path}, headers=headers)


def test_adapter_paths_stay_in_the_root(admin_client, root, tmp_path):  # noqa: F811
    outside = peft_adapter(root / "base", tmp_path / "evil", ["a", "b"], seed=3)
    link = root / "escape-link"
    if not link.exists():
        os.symlink(outside, link)
    inner = root / "inner-link"  # a real directory inside, whose weights file links outside
    if not inner.exists():
        inner.mkdir()
        shutil.copy(outside / "adapter_config.json", inner)
        os.symlink(outside / "adapter_model.safetensors", inner / "adapter_model.safetensors")
    for path in ("../evil", str(outside), "escape-link", "inner-link", "/etc", "two/../../x"):
        r = load(admin_client, "evil", path)
        assert r.status_code == 400, (path, r.json())
    assert load(admin_client, "evil", "no-such-dir").status_code == 404
    assert load(admin_client, "bad name!", "two").status_code == 400
    assert predict(admin_client, "evil", ["a"]).status_code == 404


def test_pickle_weights_are_never_loaded(admin_client, root):  # noqa: F811
    pickled = root / "pickled"
    if not pickled.exists():
        shutil.copytree(root / "two", pickled)
        (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    r = load(admin_client, "pickled", "pickled")
    assert r.status_code == 400 and "pickle" in r.json()["error"]


def test_admin_needs_the_bearer_token(admin_client):
    assert load(admin_client, "two", "two", token=None).status_code == 401
    assert load(admin_client, "two", "two", token="wrong").status_code == 401
    assert admin_client.delete("/v1/adapters/sent").status_code == 401
    assert load(admin_client, "two", "two").status_code == 201
    assert admin_client.delete("/v1/adapters/two", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert admin_client.get("/v1/adapters").status_code == 200  # reading needs no token


def test_admin_can_be_turned_off(root):  # noqa: F811
    cfg = config(root, "sent=run-lora")
    cfg.server.admin_enabled = False
    with TestClient(create_app(cfg)) as c:
        assert load(c, "two", "two", token=None).status_code == 403


def test_public_bind_needs_a_token_or_an_explicit_yes():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    with pytest.raises(TunesmithError, match="refusing to bind"):
        check_bind("0.0.0.0", admin_enabled=True, token=None, allow_open_admin=False)
    check_bind("0.0.0.0", True, "tok", False)
    check_bind("0.0.0.0", False, None, False)
    check_bind("0.0.0.0", True, None, True)
    cfg = ServeConfig()
    cfg.server.host = "0.0.0.0"
    with pytest.raises(TunesmithError):
        create_app(cfg)
    assert token_ok("Bearer abc", "abc") and not token_ok("Bearer abd", "abc") and not token_ok(None, "abc")


def test_serve_command_reads_flags_and_yaml(tmp_path):
    from tunesmith.cli import build_parser
    from tunesmith.commands.serve import build_config

    yaml_file = tmp_path / "serve.yaml"
    yaml_file.write_text("model:\n  base: minilm\n  adapters: [sentiment=runs/a]\nbatching:\n  max_wait_ms: 2\n")
    args, extra = build_parser().parse_known_args(
        ["serve", "--config", str(yaml_file), "--adapter", "spam=runs/b", "--port", "9000",
         "--batching.mode", "grouped"])
    args.extra = extra
    cfg = build_config(args)
    assert parse_adapters(cfg.model.adapters) == {"sentiment": "runs/a", "spam": "runs/b"}
    assert (cfg.server.port, cfg.batching.max_wait_ms, cfg.batching.mode) == (9000, 2.0, "grouped")
    with pytest.raises(TunesmithError):
        parse_adapters(["nonsense"])
    with pytest.raises(TunesmithError):
        parse_adapters(["a=x", "a=y"])


def test_metrics_text_format():
    m = Metrics()
    m.inc("reqs", adapter='we"ird', status="200")
    m.observe("lat", 0.02)
    m.observe("lat", 3.0)
    text = m.render()
    assert 'reqs{adapter="we\\"ird",status="200"} 1' in text
    assert 'lat_bucket{le="0.025"} 1' in text and 'lat_bucket{le="+Inf"} 2' in text
    assert "lat_count 2" in text and "# TYPE lat histogram" in text
