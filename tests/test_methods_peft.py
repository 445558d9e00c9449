"""The PEFT methods beyond LoRA (DoRA, IA3, prompt, p-tuning): which parameters train, and a run
trains, saves its head with the adapter and reloads to the same predictions."""
import csv

import pytest
import torch

from tunesmith.adapt import METHODS, PEFT_METHODS, apply_method, param_table
from tunesmith.cli import main
from tunesmith.config import MethodConfig
from tunesmith.infer.predictor import Predictor

NEW = ["dora", "ia3", "prompt", "ptuning"]
TEXTS = ["the film was great and lovely", "boring and awful acting", "a dull plot", "superb cast"]


def tiny_classifier(path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)


@pytest.mark.parametrize("method", NEW)
def test_registered_and_peft(method):
    assert method in METHODS and method in PEFT_METHODS


def test_trainable_counts_by_hand(tiny_bert):
    """tiny BERT: hidden 32, 2 layers, intermediate 37, 2 labels -> head 32*2+2 = 66."""
    head = 32 * 2 + 2
    expect = {
        # r=4 on query, value: 2 layers x 2 matrices x r(d+k) + magnitude (32 per matrix)
        "dora": 2 * 2 * (4 * (32 + 32) + 32) + head,
        # key, value outputs (32 each), attention.output.dense input (32), output.dense input (37)
        "ia3": 2 * (32 + 32 + 32 + 37) + head,
        "prompt": 5 * 32 + head,
    }
    for method, n in expect.items():
        model = apply_method(tiny_classifier(tiny_bert), MethodConfig(name=method, lora_r=4, num_virtual_tokens=5,
                                                                       pooling="cls"), "classification")
        t = param_table(model)
        assert t["trainable"] == n, method
        assert t["groups"]["head"]["trainable"] == head
        assert t["groups"]["adapter"]["trainable"] == n - head


@pytest.fixture(scope="module")
def peft_runs(tmp_path_factory):
    from conftest import make_tiny_bert, sentiment_rows

    root = tmp_path_factory.mktemp("peft")
    model = make_tiny_bert(root / "tiny")
    data = root / "reviews.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(80))
    runs = {}
    for m in NEW:
        out = root / f"run-{m}"
        argv = ["finetune", "--model", str(model), "--data", str(data), "--method", m, "--output", str(out),
                "--epochs", "1", "--batch-size", "16", "--lr", "5e-3", "--method.num_virtual_tokens=4",
                "--train.logging_steps=2", "--method.pooling=cls"]  # peft's own layout (the mean: test_finetune.py)
        assert main(argv) == 0
        runs[m] = out
    return runs


@pytest.mark.parametrize("method", NEW)
def test_run_saves_adapter_with_head_and_reloads(peft_runs, method):
    import json

    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    run = peft_runs[method]
    assert (run / "model" / "adapter_config.json").is_file()
    report = json.loads((run / "report.json").read_text())
    assert report["params"]["groups"]["head"]["trainable"] == 66
    # The reloaded run (base + adapter + saved head) gives the same logits as the evaluation.
    p = Predictor.load(str(run))
    logits = p.logits(TEXTS)
    info = json.loads((run / "run.json").read_text())
    base = AutoModelForSequenceClassification.from_pretrained(info["base_model_path"], num_labels=2)
    plain = PeftModel.from_pretrained(base, run / "model").eval()
    enc = p.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = plain(**enc).logits
    assert torch.allclose(logits, ref, atol=1e-4)
    # The head is the trained one, not a fresh random init.
    fresh = AutoModelForSequenceClassification.from_pretrained(info["base_model_path"], num_labels=2)
    trained_head = plain.base_model.model.classifier if hasattr(plain.base_model, "model") \
        else plain.base_model.classifier
    w = [p for n, p in trained_head.named_parameters() if "modules_to_save" in n and n.endswith("weight")]
    assert w and not torch.allclose(w[0], fresh.classifier.weight)
