"""The multi-adapter server, in process: routing, mixed batches, load/unload, limits, metrics."""
import asyncio
import csv
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from tunesmith.cli import main
from tunesmith.infer.predictor import Predictor
from tunesmith.serve.app import create_app
from tunesmith.serve.batcher import MicroBatcher
from tunesmith.serve.config import ServeConfig
from tunesmith.serve.metrics import Metrics
from tunesmith.serve.registry import Registry

TEXTS = ["the film was great and lovely", "boring and awful acting", "a dull plot", "superb cast", "it"]


def peft_adapter(base: Path, out: Path, labels: list[str], seed: int) -> Path:
    """A LoRA adapter with random (non-zero) weights and its own head, saved the peft way."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(labels))
    cfg = LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"],
                     modules_to_save=["classifier"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(out)
    (out / "labels.json").write_text(json.dumps(labels))
    return out


_ROOTS: dict[str, Path] = {}  # built once per session: the other serve test modules import `root`


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Adapter root: a tiny base, two real tunesmith runs (lora, head) and two peft adapters.

    Shared by every module that imports it (the fine-tuning runs are the slow part); tests that
    add files to it check first whether an earlier module already did."""
    if "root" not in _ROOTS:
        _ROOTS["root"] = build_root(tmp_path_factory.mktemp("serve"))
    return _ROOTS["root"]


def build_root(root: Path) -> Path:
    from conftest import make_tiny_bert, sentiment_rows

    base = make_tiny_bert(root / "base")
    data = root / "reviews.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(60))
    for method in ("lora", "head"):
        argv = ["finetune", "--model", str(base), "--data", str(data), "--method", method,
                "--output", str(root / f"run-{method}"), "--train.max_steps=3", "--batch-size", "16",
                "--method.pooling=cls"]  # [CLS], as the plain peft adapters below: all share one base
        assert main(argv) == 0
    peft_adapter(base, root / "three", ["x", "y", "z"], seed=1)
    peft_adapter(base, root / "two", ["no", "yes"], seed=2)
    return root


def wait_for(condition, seconds: float = 10.0) -> bool:
    """Poll a condition (never a fixed sleep: the machine may be busy)."""
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def config(root: Path, *adapters: str, **sections) -> ServeConfig:
    cfg = ServeConfig()
    cfg.model.base, cfg.model.adapter_root = str(root / "base"), str(root)
    cfg.model.adapters = list(adapters)
    # these tests compare with exact fp32 references; the default (auto) is bf16 on CPUs with
    # native bf16 (test_devices.py checks that auto matches predict's precision)
    cfg.model.dtype = "fp32"
    for key, value in sections.items():
        section, name = key.split("__")
        setattr(getattr(cfg, section), name, value)
    return cfg


ALL = ("sent=run-lora", "three=three", "two=two", "whole=run-head")


@pytest.fixture(scope="module")
def client(root):
    with TestClient(create_app(config(root, *ALL, batching__max_wait_ms=20.0))) as c:
        yield c


def predict(client, adapter, inputs, **kw):
    return client.post("/v1/predict", json={"adapter": adapter, "inputs": inputs, **kw})


def test_adapters_share_one_base_and_are_listed(client):
    body = client.get("/v1/adapters").json()
    by_name = {a["name"]: a for a in body["adapters"]}
    assert set(by_name) == {"sent", "three", "two", "whole"}
    assert by_name["sent"]["kind"] == "lora" and by_name["whole"]["kind"] == "model"
    assert by_name["three"]["labels"] == ["x", "y", "z"] and by_name["sent"]["labels"] == ["negative", "positive"]
    reg = client.app.state.tunesmith.registry
    assert len(reg.peft.peft_config) == 3  # three adapters on one PeftModel: one copy of the base
    assert by_name["sent"]["size_bytes"] < reg.base_bytes / 5


@pytest.mark.parametrize("name,run", [("sent", "run-lora"), ("whole", "run-head")])
def test_routing_gives_the_engine_scores(client, root, name, run):
    got = predict(client, name, TEXTS, all_scores=True).json()["predictions"]
    want = Predictor.load(str(root / run)).classify(TEXTS, all_scores=True)
    for g, w in zip(got, want):
        assert g["label"] == w["label"]
        for label, score in w["scores"].items():
            assert g["scores"][label] == pytest.approx(score, abs=1e-4)


def test_peft_adapter_scores_match_plain_peft(client, root):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = AutoModelForSequenceClassification.from_pretrained(root / "base", num_labels=3)
    model = PeftModel.from_pretrained(base, root / "three").eval()
    tok = AutoTokenizer.from_pretrained(root / "base")
    with torch.no_grad():
        probs = torch.softmax(model(**tok(TEXTS, padding=True, return_tensors="pt")).logits, -1)
    got = predict(client, "three", TEXTS, all_scores=True).json()["predictions"]
    for g, row in zip(got, probs):
        assert [g["scores"][k] for k in "xyz"] == pytest.approx(row.tolist(), abs=1e-5)


def test_mixed_batch_equals_per_adapter_results(client):
    reg = client.app.state.tunesmith.registry
    works = [w for name in ("sent", "three", "two", "whole", "sent", "two") for w in reg.encode(name, TEXTS)]
    mixed = reg.forward(works, mixed=True)
    alone = [reg.forward(reg.encode(w.entry.name, [w.text]), mixed=False)[0] for w in works]
    for m, a in zip(mixed, alone):
        assert m.shape == a.shape and torch.allclose(m, a, atol=1e-5)


def test_microbatcher_puts_requests_of_different_adapters_in_one_batch(client):
    reg = client.app.state.tunesmith.registry
    metrics = Metrics()
    cfg = ServeConfig().batching
    cfg.max_wait_ms = 200.0

    async def go():
        batcher = MicroBatcher(reg, cfg, metrics)
        await batcher.start()
        try:
            reqs = [reg.encode(n, TEXTS[:2]) for n in ("sent", "two", "three", "sent")]
            return reqs, await asyncio.gather(*(batcher.submit(r) for r in reqs))
        finally:
            await batcher.stop()

    reqs, results = asyncio.run(go())
    assert metrics.value("tunesmith_batches_total") == 1  # four requests, three adapters, one batch
    for works, logits in zip(reqs, results):
        want = reg.forward(works, mixed=False)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(logits, want))


def test_concurrent_requests_for_many_adapters_all_answer_in_order(client):
    jobs = [(name, TEXTS[i % 5:] + TEXTS[:i % 5]) for i, name in
            enumerate(["sent", "three", "two", "whole"] * 6)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda job: predict(client, *job, all_scores=True), jobs))
    assert [a.status_code for a in answers] == [200] * len(jobs)
    for (name, texts), a in zip(jobs, answers):
        alone = predict(client, name, texts, all_scores=True).json()["predictions"]
        got = a.json()["predictions"]
        assert [g["label"] for g in got] == [x["label"] for x in alone]
        assert [g["score"] for g in got] == pytest.approx([x["score"] for x in alone], abs=1e-5)


def test_load_and_unload_while_requests_run(root):
    with TestClient(create_app(config(root, "sent=run-lora", batching__max_wait_ms=2.0))) as c:
        stop, statuses = threading.Event(), []

        def hammer():
            while not stop.is_set():
                statuses.append(predict(c, "sent", TEXTS[:2]).status_code)

        workers = [threading.Thread(target=hammer) for _ in range(3)]
        for w in workers:
            w.start()
        try:
            before = predict(c, "sent", TEXTS).json()
            assert c.post("/v1/adapters", json={"name": "extra", "path": "three"}).status_code == 201
            assert predict(c, "extra", TEXTS).status_code == 200
            assert c.post("/v1/adapters", json={"name": "extra", "path": "two"}).status_code == 409
            assert c.delete("/v1/adapters/extra").status_code == 200
            assert predict(c, "extra", TEXTS).status_code == 404
            assert c.delete("/v1/adapters/extra").status_code == 404
            assert c.post("/v1/adapters", json={"name": "extra", "path": "two"}).status_code == 201
            assert predict(c, "sent", TEXTS).json() == before  # the others did not change
        finally:
            stop.set()
            for w in workers:
                w.join()
        assert statuses and set(statuses) == {200}


def test_unload_lets_queued_requests_of_that_adapter_finish(root):
    with TestClient(create_app(config(root, "two=two", "sent=run-lora", batching__max_wait_ms=2000.0))) as c:
        with ThreadPoolExecutor(4) as pool:
            pending = [pool.submit(predict, c, "two", TEXTS) for _ in range(4)]
            assert wait_for(lambda: c.app.state.tunesmith.batcher.queued_inputs == 4 * len(TEXTS))
            assert c.delete("/v1/adapters/two").status_code == 200
            codes = [p.result().status_code for p in pending]
        assert codes == [200] * 4
        assert predict(c, "two", TEXTS).status_code == 404
        assert c.app.state.tunesmith.registry.peft.peft_config.keys() == {"sent"}


def test_error_codes(root):
    cfg = config(root, "sent=run-lora", "whole=run-head", limits__max_inputs=3, limits__max_chars=20,
                 batching__max_queue=4)
    with TestClient(create_app(cfg)) as c:
        assert predict(c, "sent", ["a"] * 4).status_code == 413
        r = predict(c, "sent", ["x" * 21])
        assert r.status_code == 413 and "inputs[0]" in r.json()["error"]
        assert predict(c, "nope", ["a"]).status_code == 404
        assert c.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
        for bad in ({"adapter": "sent", "inputs": "a"}, {"adapter": "sent", "inputs": [1]},
                    {"adapter": 3, "inputs": ["a"]}, {"inputs": ["a"]},
                    {"adapter": "sent", "inputs": ["a"], "extra": 1}):
            r = c.post("/v1/predict", json=bad)
            assert r.status_code == 422 and r.json()["error"]
        r = c.post("/v1/fill-mask", json={"model": "sent", "inputs": ["a [MASK]"]})
        assert r.status_code == 400 and "not supported" in r.json()["error"]
        assert c.post("/v1/generate", json={"model": "whole", "inputs": ["a"]}).status_code == 400
        assert c.post("/v1/ner", json={"model": "nope", "inputs": ["a"]}).status_code == 404
        assert predict(c, "sent", []).json() == {"adapter": "sent", "predictions": []}


def test_full_queue_answers_429_with_retry_after_and_loses_nothing(root):
    cfg = config(root, "sent=run-lora", batching__max_queue=4, batching__max_wait_ms=150.0)
    with TestClient(create_app(cfg)) as c:
        r = predict(c, "sent", ["a"] * 5)  # more than the whole queue
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: predict(c, "sent", TEXTS[:2]), range(24)))
        codes = [a.status_code for a in answers]
        assert set(codes) <= {200, 429} and 200 in codes and 429 in codes
        st = c.app.state.tunesmith
        assert st.batcher.queued_inputs == 0
        served = st.metrics.value("tunesmith_requests_total", endpoint="/v1/predict", adapter="sent", status="200")
        assert served == codes.count(200)


def test_timeout_gives_504_and_the_queue_drains(root):
    cfg = config(root, "sent=run-lora", limits__timeout_s=0.05, batching__max_wait_ms=400.0)
    with TestClient(create_app(cfg)) as c:
        assert predict(c, "sent", TEXTS).status_code == 504
        assert wait_for(lambda: c.app.state.tunesmith.batcher.queued_inputs == 0)


def test_draining_server_answers_503_and_readyz_says_so(root):
    with TestClient(create_app(config(root, "sent=run-lora"))) as c:
        assert c.get("/readyz").status_code == 200
        c.app.state.tunesmith.draining = True
        assert predict(c, "sent", TEXTS).status_code == 503
        assert c.get("/readyz").status_code == 503 and c.get("/healthz").status_code == 200
        c.app.state.tunesmith.draining = False


def test_metrics_move_with_requests(client):
    def value(text, line):
        hits = [l for l in text.splitlines() if l.startswith(line + " ")]
        return float(hits[0].rsplit(" ", 1)[1]) if hits else 0.0

    key = 'tunesmith_requests_total{adapter="two",endpoint="/v1/predict",status="200"}'
    before = client.get("/metrics").text
    predict(client, "two", TEXTS)
    predict(client, "two", TEXTS)
    predict(client, "ghost", TEXTS)
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    assert value(after.text, key) == value(before, key) + 2
    assert value(after.text, 'tunesmith_requests_total{adapter="(unknown)",endpoint="/v1/predict",status="404"}') >= 1
    assert value(after.text, 'tunesmith_inputs_total{adapter="two"}') >= value(before, 'tunesmith_inputs_total{adapter="two"}') + 10
    assert value(after.text, "tunesmith_request_seconds_count{endpoint=\"/v1/predict\"}") > \
        value(before, "tunesmith_request_seconds_count{endpoint=\"/v1/predict\"}")
    for name in ("tunesmith_batch_inputs_bucket", "tunesmith_queue_depth", "tunesmith_adapters_loaded",
                 "tunesmith_resident_memory_bytes"):
        assert name in after.text
    assert value(after.text, 'tunesmith_adapters_loaded{kind="lora"}') == 3


def test_openapi_documents_every_endpoint(client):
    schema = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/fill-mask", "/v1/ner", "/v1/generate", "/v1/adapters",
                 "/v1/adapters/{name}", "/healthz", "/readyz", "/metrics"):
        assert path in schema["paths"]
    assert "429" in schema["paths"]["/v1/predict"]["post"]["responses"]
    assert "PredictRequest" in schema["components"]["schemas"]


def test_unknown_route_and_wrong_method_use_the_error_body(client):
    r = client.get("/v1/no-such-endpoint")
    assert r.status_code == 404 and "error" in r.json()
    r = client.get("/v1/predict")
    assert r.status_code == 405 and "error" in r.json()


def test_a_mean_pooled_lora_run_gets_a_base_that_reads_the_mean_and_cls_adapters_are_refused(root, tmp_path):
    import shutil

    from tunesmith.serve.registry import Registry, WrongTask

    run = tmp_path / "run-lora-mean"
    assert main(["finetune", "--model", str(root / "base"), "--data", str(root / "reviews.csv"), "--method", "lora",
                 "--output", str(run), "--train.max_steps=2", "--batch-size", "16"]) == 0  # pooling auto: mean
    assert json.loads((run / "run.json").read_text())["pooling"] == "mean"
    shutil.copytree(root / "three", tmp_path / "three")
    reg = Registry(None, tmp_path, device="cpu", dtype="fp32")
    reg.attach(reg.read_adapter("m", "run-lora-mean"))
    assert reg.base_pooling == "mean" and reg.base_model.config.tunesmith_mean_pooling_layer is not None
    with pytest.raises(WrongTask, match=r"reads the \[CLS\] state, but this server's base reads the mean"):
        reg.read_adapter("c", "three")
