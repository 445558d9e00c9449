"""End-to-end fine-tuning on a tiny random BERT: every method, artifacts, reports, reloads."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tunesmith.cli import main
from tunesmith.config import FinetuneConfig, load as load_config
from tunesmith.infer.predictor import Predictor

METHODS = ["full", "lora", "head"]
TEXTS = ["the film was great and lovely", "boring and awful acting", "a dull plot", "superb cast"]


def finetune(model_dir, data, out, method, *extra):
    argv = ["finetune", "--model", str(model_dir), "--data", str(data), "--method", method,
            "--output", str(out), "--epochs", "6", "--batch-size", "16", "--train.eval_every=8",
            "--train.logging_steps=2", "--lr", "5e-3", *extra]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run per method on the same toy data (module-scoped: trained once)."""
    import csv

    from conftest import make_tiny_bert, sentiment_rows

    root = tmp_path_factory.mktemp("ft")
    model = make_tiny_bert(root / "tiny")
    data = root / "reviews.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(160))
    runs = {m: finetune(model, data, root / f"run-{m}", m, *(["--merge"] if m == "lora" else []))
            for m in METHODS}
    return {"model": model, "data": data, "runs": runs}


@pytest.mark.parametrize("method", METHODS)
def test_run_directory_is_complete(trained, method):
    run = trained["runs"][method]
    for name in ("run.json", "config.yaml", "metrics.jsonl", "labels.json", "token_stats.json", "params.json",
                 "report.json", "report.md", "confusion_matrix.png", "learning_curve.png", "README.md",
                 "model/tokenizer.json"):
        assert (run / name).is_file(), name
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["method"] == method
    assert json.loads((run / "labels.json").read_text()) == {"0": "negative", "1": "positive"}
    report = json.loads((run / "report.json").read_text())
    test = report["evaluation"]["test"]
    assert test["n"] == 16 and sum(map(sum, test["confusion_matrix"])) == 16
    assert set(test) >= {"accuracy", "precision", "recall", "f1", "per_class"}
    events = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "train" for e in events) and any(e["kind"] == "eval" for e in events)
    stats = json.loads((run / "token_stats.json").read_text())
    assert stats["train"]["count"] == 128 and stats["train"]["max"] <= 10


def test_parameter_tables_match_hand_counts(trained):
    """Tiny BERT: hidden 32, 2 layers, vocab V; counts derived by hand from the shapes."""
    p = {m: json.loads((trained["runs"][m] / "params.json").read_text()) for m in METHODS}
    head = 32 * 2 + 2  # classifier weight + bias
    lora = 2 * 2 * 8 * (32 + 32)  # 2 layers x (query, value) x r x (d + k)
    assert p["full"]["trainable"] == p["full"]["total"]
    assert p["head"]["trainable"] == head + 32 * 32 + 32  # + the pooler feeding it (dense 32x32 + bias)
    assert p["lora"]["trainable"] == head + lora
    assert p["lora"]["groups"]["adapter"]["total"] == lora
    pooling = 4 * (32 * 32 + 32) + (32 * 37 + 37) + (37 * 32 + 32) + 2 * 2 * 32  # lora reads the mean: one frozen layer
    assert p["lora"]["total"] == p["full"]["total"] + lora + pooling


def test_training_learns_the_toy_task(trained):
    acc = json.loads((trained["runs"]["full"] / "report.json").read_text())["evaluation"]["test"]["accuracy"]
    assert acc >= 0.9  # separable by construction; a broken pipeline sits near 0.5


from tunesmith.adapt.pooling import PLAIN_CODE  # noqa: E402  (what the model card prints)

PLAIN_LOAD = r"""
import json, os, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
run, method, base, texts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
info = json.load(open(f"{run}/run.json"))
labels = info["labels"]
if os.path.exists(f"{run}/model/adapter_config.json"):  # a peft run
    from peft import PeftModel
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(labels))
    if info.get("pooling") == "mean":  # the model card's plain-torch mean-pooling layer (pooling.PLAIN_CODE)
        exec(sys.argv[5], {"base": model})
    model = PeftModel.from_pretrained(model, f"{run}/model")
else:
    model = AutoModelForSequenceClassification.from_pretrained(f"{run}/model")
tok = AutoTokenizer.from_pretrained(f"{run}/model")
model.eval()
with torch.no_grad():
    out = [torch.softmax(model(**tok(t, return_tensors="pt")).logits, -1)[0].tolist() for t in texts]
assert "tunesmith" not in sys.modules
print(json.dumps(out))
"""


@pytest.mark.parametrize("method", METHODS)
def test_plain_transformers_and_peft_reproduce_predictions(trained, method):
    run = trained["runs"][method]
    res = subprocess.run([sys.executable, "-c", PLAIN_LOAD, str(run), method, str(trained["model"]),
                          json.dumps(TEXTS), PLAIN_CODE], capture_output=True, text=True, check=True)
    plain = json.loads(res.stdout)
    ours = Predictor.load(str(run)).classify(TEXTS, all_scores=True)
    labels = json.loads((run / "run.json").read_text())["labels"]
    for p, o in zip(plain, ours):
        assert labels[max(range(len(p)), key=p.__getitem__)] == o["label"]
        assert p == pytest.approx([o["scores"][l] for l in labels], abs=1e-4)


def test_prompt_tuning_on_the_mean_saves_its_pooler_and_plain_peft_reproduces_it(trained, tmp_path):
    """On the mean, prompt methods train BERT's pooler with the head: it must travel with the
    adapter (modules_to_save), or plain peft would reload the base's pooler and predict otherwise."""
    from safetensors import safe_open

    run = finetune(trained["model"], trained["data"], tmp_path / "prompt-mean", "prompt", "--method.pooling=mean",
                   "--train.max_steps=6", "--train.head_lr=5e-2")
    assert json.loads((run / "run.json").read_text())["pooling"] == "mean"
    with safe_open(run / "model" / "adapter_model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert any("pooler" in k for k in keys) and any("classifier" in k for k in keys), keys
    res = subprocess.run([sys.executable, "-c", PLAIN_LOAD, str(run), "prompt", str(trained["model"]),
                          json.dumps(TEXTS), PLAIN_CODE], capture_output=True, text=True, check=True)
    ours = Predictor.load(str(run)).classify(TEXTS, all_scores=True)
    labels = json.loads((run / "run.json").read_text())["labels"]
    for p, o in zip(json.loads(res.stdout), ours):
        assert p == pytest.approx([o["scores"][l] for l in labels], abs=1e-4)


def test_lora_head_is_saved_and_merge_writes_a_plain_model(trained):
    run = trained["runs"]["lora"]
    from safetensors import safe_open

    with safe_open(run / "model" / "adapter_model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert any("classifier" in k for k in keys), keys  # the head travels with the adapter
    assert (run / "merged" / "config.json").is_file()
    from transformers import AutoModelForSequenceClassification

    merged = AutoModelForSequenceClassification.from_pretrained(run / "merged")
    a = Predictor(merged, Predictor.load(str(run)).tokenizer).classify(TEXTS, all_scores=True)
    b = Predictor.load(str(run)).classify(TEXTS, all_scores=True)
    for x, y in zip(a, b):
        assert x["label"] == y["label"] and x["score"] == pytest.approx(y["score"], abs=1e-4)


def test_evaluate_and_predict_commands(trained, tmp_path, capsys):
    run = trained["runs"]["full"]
    assert main(["evaluate", str(run), "--data", str(trained["data"]), "--out", str(tmp_path / "ev")]) == 0
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert rep["n"] == 160 and 0 <= rep["accuracy"] <= 1
    assert (tmp_path / "ev" / "confusion_matrix.png").is_file()
    inp = tmp_path / "in.txt"
    inp.write_text("great lovely film\n\nawful boring plot\n")
    out = tmp_path / "preds.jsonl"
    assert main(["predict", str(run), "--input", str(inp), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "execution path: bf16 (--fast auto, 3 texts: the default for this device)" in err \
        or "execution path: fp32 (--fast auto" in err  # CPUs without bf16
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert [l["index"] for l in lines] == [0, 1, 2]
    assert "error" in lines[1] and lines[0]["label"] in ("positive", "negative")
    assert 0.5 <= lines[0]["score"] <= 1


def test_resume_continues_from_checkpoint(trained, tmp_path):
    """Interrupted after some steps (max_steps), resumed to the full length: same step count."""
    out = tmp_path / "resumed"
    common = ["finetune", "--model", str(trained["model"]), "--data", str(trained["data"]), "--output", str(out),
              "--batch-size", "16", "--train.eval_every=4", "--lr", "5e-3"]
    assert main(common + ["--train.max_steps=8"]) == 0
    info = json.loads((out / "run.json").read_text())
    info["status"] = "running"  # pretend it was killed after its step-8 checkpoint
    (out / "run.json").write_text(json.dumps(info))
    cfg_path = out / "config.yaml"
    cfg_path.write_text(cfg_path.read_text().replace("max_steps: 8", "max_steps: 12"))
    assert main(["finetune", "--output", str(out), "--resume"]) == 0
    summary = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(e["step"] for e in summary) == 12
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_bad_inputs_give_clear_errors(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the cases without --output would write runs/ into the working directory
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "run.json").write_text(json.dumps({"status": "running", "task": "classification"}))
    cases = [
        (["predict", str(incomplete), "x"], "run is incomplete"),
        (["predict", str(tmp_path), "x"], "directory has no config.json"),
        (["evaluate", str(trained["runs"]["full"]), "--data", str(tmp_path / "missing.csv")], "file not found"),
        (["finetune", "--data", str(tmp_path / "missing.csv")], "neither a built-in"),
        (["finetune", "--train.epoch=1"], "unknown key"),
        (["finetune", "--output", str(trained["runs"]["full"])], "directory exists and is not empty"),
        (["finetune", "--method", "magic", "--model", str(trained["model"]), "--data", str(trained["data"]),
          "--output", str(tmp_path / "m")], "unknown method 'magic'"),
        (["info", "no/such/model/here"], "not found"),
    ]
    for argv, pattern in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert pattern in err and "Traceback" not in err, (argv, err)
    other = tmp_path / "other-task"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"status": "complete", "task": "mlm"}))
    (other / "model").mkdir()
    assert main(["evaluate", str(other), "--data", str(trained["data"])]) == 2
    assert "cannot evaluate a 'mlm' run" in capsys.readouterr().err
    from tunesmith.runs import load_run

    with pytest.raises(Exception, match="this command needs a 'classification' run"):
        load_run(other, task="classification")


def test_layer_wise_lr_decay_groups(trained):
    from tunesmith.models import load_for_task, resolve
    from tunesmith.trainer import TunesmithTrainer, layer_index
    from transformers import TrainingArguments

    assert layer_index("bert.embeddings.word_embeddings.weight", 2) == 0
    assert layer_index("bert.encoder.layer.1.attention.self.query.weight", 2) == 2
    assert layer_index("classifier.weight", 2) == 3
    model, _ = load_for_task(resolve(str(trained["model"])), "classification", ["a", "b"])
    t = TunesmithTrainer(model=model, args=TrainingArguments(output_dir="/tmp/x", learning_rate=1.0,
                                                             weight_decay=0.1, report_to="none"))
    t.layer_lr_decay = 0.5
    opt = t.create_optimizer()
    lrs = sorted({g["lr"] for g in opt.param_groups})
    assert lrs == [0.125, 0.25, 0.5, 1.0]  # embeddings, layer 0, layer 1, head
    nodecay = [g for g in opt.param_groups if g["weight_decay"] == 0.0]
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(("bias" in names[id(p)] or "LayerNorm" in names[id(p)]) for g in nodecay for p in g["params"])


@pytest.mark.parametrize("method", ["full", "prompt"])
def test_head_lr_gives_the_task_head_its_own_rate(trained, method):
    """train.head_lr: the classifier (and the pooler where it trains) at their own peak lr, under
    a peft wrapper too; the rest keeps the method's."""
    from tunesmith.adapt.registry import apply_method
    from tunesmith.config import MethodConfig
    from tunesmith.models import load_for_task, resolve
    from tunesmith.trainer import TunesmithTrainer
    from transformers import TrainingArguments

    model, _ = load_for_task(resolve(str(trained["model"])), "classification", ["a", "b"])
    model = apply_method(model, MethodConfig(name=method, pooling="cls"), "classification")
    t = TunesmithTrainer(model=model, args=TrainingArguments(output_dir="/tmp/x", learning_rate=0.3,
                                                             report_to="none"))
    t.head_lr = 0.01
    opt = t.create_optimizer()
    names = {id(p): n for n, p in model.named_parameters()}
    by_lr: dict[float, list[str]] = {}
    for g in opt.param_groups:
        by_lr.setdefault(g["lr"], []).extend(names[id(p)] for p in g["params"])
    assert set(by_lr) == {0.01, 0.3}
    assert by_lr[0.01] and all(".classifier." in f".{n}" or ".pooler." in n for n in by_lr[0.01])
    assert not any(".classifier." in f".{n}" for n in by_lr[0.3])
    assert sum(len(ps) for ps in by_lr.values()) == sum(p.requires_grad for p in model.parameters())


def test_head_lr_without_a_trainable_head_is_refused(trained):
    from tunesmith.errors import TunesmithError
    from tunesmith.models import load_for_task, resolve
    from tunesmith.trainer import TunesmithTrainer
    from transformers import TrainingArguments

    model, _ = load_for_task(resolve(str(trained["model"])), "classification", ["a", "b"])
    for name, p in model.named_parameters():
        p.requires_grad = "classifier" not in name and "pooler" not in name
    t = TunesmithTrainer(model=model, args=TrainingArguments(output_dir="/tmp/x", report_to="none"))
    t.head_lr = 0.01
    with pytest.raises(TunesmithError, match="no trainable task head"):
        t.create_optimizer()


def test_peft_run_with_a_relative_model_path_loads_from_elsewhere(trained, tmp_path, monkeypatch):
    """A LoRA classification run stores its base model's absolute path (NER and generation did)."""
    import shutil

    shutil.copytree(trained["model"], tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "rel-lora"
    assert main(["finetune", "--model", "tiny", "--data", str(trained["data"]), "--method", "lora",
                 "--output", str(out), "--train.max_steps=2", "--batch-size", "16"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert Path(info["base_model_path"]).is_absolute()
    monkeypatch.chdir(trained["data"].parent)  # another directory: the base still resolves
    assert Predictor.load(str(out)).labels == ["negative", "positive"]


def test_evaluate_rebuilds_the_runs_own_split(tmp_path):
    """`evaluate RUN --data <built-in>` splits with the run's val_size, test_size and max_eval,
    not its seed alone."""
    from tunesmith.evaluate.run_eval import held_out_config

    (tmp_path / "config.yaml").write_text("data:\n  seed: 7\n  val_size: 0.2\n  test_size: 0.3\n"
                                          "  max_eval: 50\n  dataset: movie-reviews\n")
    cfg = held_out_config(tmp_path, "movie-reviews")
    assert (cfg.dataset, cfg.seed, cfg.val_size, cfg.test_size, cfg.max_eval) == ("movie-reviews", 7, 0.2, 0.3, 50)


def test_an_adapter_run_as_a_model_names_a_real_way_out(trained):
    from tunesmith.errors import TunesmithError
    from tunesmith.models import resolve

    run = trained["runs"]["full"].parent / "run-lora"
    merged = run / "merged"
    hidden = run / "merged-hidden"
    merged.rename(hidden)
    try:
        with pytest.raises(TunesmithError, match="--output.merge=true") as e:
            resolve(str(run))
        assert "tunesmith export" not in str(e.value)
    finally:
        hidden.rename(merged)


def test_validation_batches_run_longest_first_and_score_the_same(trained):
    """Trainer's validation pass sees the split sorted by length (less padding); same metrics."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from tunesmith.models import load_for_task, resolve
    from tunesmith.tasks.classification import compute_metrics_fn
    from tunesmith.trainer import TunesmithTrainer

    from transformers import AutoTokenizer

    model, _ = load_for_task(resolve(str(trained["model"])), "classification", ["a", "b"])
    tok = AutoTokenizer.from_pretrained(str(trained["model"]))
    texts = ["good " * (1 + (7 * i) % 13) for i in range(40)]
    ds = Dataset.from_dict({**tok(texts), "labels": [i % 2 for i in range(40)]})
    args = TrainingArguments(output_dir="/tmp/x", per_device_eval_batch_size=8, report_to="none", use_cpu=True)
    kw = dict(model=model, args=args, eval_dataset=ds, data_collator=DataCollatorWithPadding(tok),
              compute_metrics=compute_metrics_fn(["a", "b"]))
    ours = TunesmithTrainer(**kw)
    widths = [b["input_ids"].shape[1] for b in ours.get_eval_dataloader()]
    assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
    got, stock = ours.evaluate(), Trainer(**kw).evaluate()
    assert got["eval_accuracy"] == stock["eval_accuracy"] and got["eval_f1"] == stock["eval_f1"]
    assert abs(got["eval_loss"] - stock["eval_loss"]) < 1e-5
