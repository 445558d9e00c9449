"""Prefix tuning (peft, through the past_key_values shim) and bottleneck adapters (our own):
the math against hand-written references, the textbook's counts, and runs that learn."""
import csv
import json
import math

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from tunesmith.adapt import apply_method, param_table
from tunesmith.adapt.bottleneck import BottleneckAdapter, add_adapters, has_adapters
from tunesmith.cli import main
from tunesmith.config import MethodConfig
from tunesmith.errors import TunesmithError
from tunesmith.strategy.formulas import count_method

SMALL = dict(vocab_size=60, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=12,
             max_position_embeddings=30, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def test_textbook_counts_for_bert_base():
    prefix = count_method(BertConfig(), "prefix", num_virtual_tokens=20, pooling="cls")  # the book reads [CLS]
    assert prefix.adapter == 20 * 12 * 2 * 768 == 368_640
    houlsby = count_method(BertConfig(), "adapter", adapter_size=64)
    assert houlsby.adapter == 24 * (768 * 64 + 64 + 64 * 768 + 768) == 2_379_264
    assert round(100 * houlsby.adapter / 109_482_240, 2) == 2.17  # of the bare encoder
    assert 1 <= 100 * houlsby.adapter / houlsby.base <= 5  # the textbook's 1-5%
    pfeiffer = count_method(BertConfig(), "adapter", adapter_size=64, adapter_type="pfeiffer")
    assert pfeiffer.adapter == houlsby.adapter // 2 and pfeiffer.extra_trainable == 0


def test_params_command_prints_the_new_methods(capsys):
    assert main(["params", "bert-base-uncased", "--method", "prefix,adapter", "--pooling", "cls"]) == 0
    out = capsys.readouterr().out
    assert "= 368,640" in out and "2,379,264 adapter weights = 2.17%" in out


def _hand_prefix_logits(model, prefix: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BERT with `prefix` (layers, 2, heads, P, head_dim) keys/values, written out by hand."""
    bert, cfg = model.bert, model.config
    P, H = prefix.shape[3], cfg.num_attention_heads
    pos = torch.arange(P, P + ids.shape[1])[None]  # real tokens' positions shift by P
    e = bert.embeddings
    x = e.LayerNorm(e.word_embeddings(ids) + e.position_embeddings(pos)
                    + e.token_type_embeddings(torch.zeros_like(ids)))
    full_mask = torch.cat([torch.ones(ids.shape[0], P), mask.float()], 1)  # (batch, P + seq)
    bias = (1 - full_mask)[:, None, None, :] * torch.finfo(torch.float32).min
    for i, layer in enumerate(bert.encoder.layer):
        s = layer.attention.self
        split = lambda t: t.view(t.shape[0], -1, H, t.shape[-1] // H).transpose(1, 2)  # (b, h, seq, d)
        q, k, v = split(s.query(x)), split(s.key(x)), split(s.value(x))
        k = torch.cat([prefix[i, 0].expand(ids.shape[0], -1, -1, -1), k], 2)
        v = torch.cat([prefix[i, 1].expand(ids.shape[0], -1, -1, -1), v], 2)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias, -1) @ v
        att = att.transpose(1, 2).reshape(x.shape)
        o = layer.attention.output
        x = o.LayerNorm(o.dense(att) + x)
        y = layer.output
        x = y.LayerNorm(y.dense(layer.intermediate(x)) + x)
    return model.classifier(bert.pooler(x))


def test_prefix_forward_equals_a_hand_written_reference():
    torch.manual_seed(0)
    base = BertForSequenceClassification(BertConfig(**SMALL, num_labels=3)).eval()
    model = apply_method(base, MethodConfig(name="prefix", num_virtual_tokens=4, pooling="cls"), "classification").eval()
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.normal_()
    ids = torch.randint(5, 60, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
        flat = model.prompt_encoder["default"].embedding.weight  # (P, layers * 2 * hidden)
        prefix = flat.view(4, 2, 2, 2, 4).permute(1, 2, 3, 0, 4)  # (layers, k/v, heads, P, head_dim)
        want = _hand_prefix_logits(model.base_model, prefix, ids, mask)
    assert torch.allclose(got, want, atol=1e-5)


def test_prefix_projection_and_max_length_cap():
    from tunesmith.adapt.prefix import max_length_limit
    from tunesmith.adapt.registry import prepare_config
    from tunesmith.config import FinetuneConfig

    cfg = BertConfig(**SMALL, num_labels=2)
    model = apply_method(BertForSequenceClassification(cfg),  # [CLS]: the formula of 2 layers below
                         MethodConfig(name="prefix", num_virtual_tokens=3, prefix_projection=True, pooling="cls"),
                         "classification")
    c = count_method(cfg, "prefix", num_virtual_tokens=3, prefix_projection=True, pooling="cls")
    assert param_table(model)["trainable"] == c.trainable and c.adapter == 3 * 8 + (8 * 8 + 8) + (8 * 32 + 32)
    run_cfg = FinetuneConfig()
    run_cfg.method.name, run_cfg.method.num_virtual_tokens, run_cfg.model.max_length = "prefix", 3, 128
    prepare_config(run_cfg, cfg)
    assert run_cfg.model.max_length == max_length_limit(cfg, 3) == 30 - 3
    with pytest.raises(TunesmithError, match="fewer --method.num_virtual_tokens"):
        max_length_limit(cfg, 25)


def test_adapter_starts_equal_to_the_base_and_sits_before_the_layer_norm():
    torch.manual_seed(0)
    base = BertForSequenceClassification(BertConfig(**SMALL, num_labels=2)).eval()
    ids = torch.randint(5, 60, (2, 6))
    with torch.no_grad():
        want = base(input_ids=ids).logits
    model = apply_method(base, MethodConfig(name="adapter", adapter_size=3), "classification").eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, want)  # zero up-projection: identity
    layer = model.bert.encoder.layer[0]
    assert isinstance(layer.attention.output.dropout.adapter, BottleneckAdapter)
    assert isinstance(layer.output.dropout.adapter, BottleneckAdapter)
    # Houlsby: adapters, every LayerNorm and the head train; nothing else
    train = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(".adapter." in n or "LayerNorm" in n or n.startswith("classifier.") for n in train)
    assert any("LayerNorm" in n for n in train)
    pf = apply_method(BertForSequenceClassification(BertConfig(**SMALL)), MethodConfig(
        name="adapter", adapter_type="pfeiffer", adapter_size=3), "classification")
    assert not any("LayerNorm" in n for n, p in pf.named_parameters() if p.requires_grad)
    assert not hasattr(pf.bert.encoder.layer[0].attention.output.dropout, "adapter")
    with pytest.raises(TunesmithError, match="already has adapter layers"):
        add_adapters(model)


def test_lean_fast_path_refuses_adapters_and_falls_back():
    from tunesmith.infer.encoder import build
    from tunesmith.infer.fast import build_engine

    torch.manual_seed(0)
    model = apply_method(BertForSequenceClassification(BertConfig(**SMALL, num_labels=2)),
                         MethodConfig(name="adapter", adapter_size=3), "classification").eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".adapter." in name:
                p.normal_()
    lean, why = build(model)
    assert lean is None and "adapter" in why
    engine = build_engine("fp32", model, torch.device("cpu"))
    assert has_adapters(engine.module) and engine.info["lean"] != "yes"
    batch = {"input_ids": torch.randint(5, 60, (2, 6)), "attention_mask": torch.ones(2, 6, dtype=torch.long)}
    with torch.no_grad():
        assert torch.allclose(engine.forward(batch), model(**batch).logits, atol=1e-6)


@pytest.fixture(scope="module")
def learned_runs(tmp_path_factory):
    from conftest import make_tiny_bert, sentiment_rows

    root = tmp_path_factory.mktemp("prefix-adapter")
    model = make_tiny_bert(root / "tiny")
    data = root / "reviews.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(64))
    out = {}
    for m, lr in (("prefix", "3e-2"), ("adapter", "1e-2")):
        out[m] = root / f"run-{m}"
        assert main(["finetune", "--model", str(model), "--data", str(data), "--method", m, "--output",
                     str(out[m]), "--epochs", "1", "--batch-size", "16", "--lr", lr, "--max-length", "200",
                     "--method.num_virtual_tokens=4", "--method.adapter_size=8"]) == 0
    return out


@pytest.mark.parametrize("method", ["prefix", "adapter"])
def test_a_run_trains_its_weights_and_writes_its_card(learned_runs, method):
    from safetensors.torch import load_file

    run = learned_runs[method]
    assert json.loads((run / "report.json").read_text())["params"]["groups"]["adapter"]["trainable"] > 0
    if method == "adapter":  # the up-projections start at zero: non-zero means gradients reached them
        ups = [t for n, t in load_file(str(run / "model" / "adapters.safetensors")).items() if ".up.weight" in n]
        assert len(ups) == 4 and all(t.abs().sum() > 0 for t in ups)
    card = (run / "README.md").read_text()
    assert ("library_name: peft" in card) == (method == "prefix")
    info = json.loads((run / "run.json").read_text())
    if method == "prefix":  # 128 positions - 4 virtual tokens
        assert info["max_length"] == 124 and "past_key_values" in card
    else:
        assert "adapters.safetensors" in card


@pytest.mark.parametrize("method", ["prefix", "adapter"])
def test_ner_runs_with_the_new_methods(tmp_path, tiny_bert, method):
    from tunesmith.infer.predictor import Predictor

    conll = tmp_path / "ner.conll"
    sents = [[("Alice", "B-PER"), ("visited", "O"), ("Paris", "B-LOC")],
             [("Bob", "B-PER"), ("likes", "O"), ("Berlin", "B-LOC")]] * 12
    conll.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sents) + "\n")
    run = tmp_path / "run"
    assert main(["finetune", "--task", "token-classification", "--model", str(tiny_bert), "--data", str(conll),
                 "--method", method, "--output", str(run), "--epochs", "1", "--batch-size", "8",
                 "--method.num_virtual_tokens=3", "--method.adapter_size=4"]) == 0
    p = Predictor.load(str(run))
    assert p.task == "token-classification" and isinstance(p.predict("Alice visited Paris"), list)


def test_prefix_projection_run_keeps_its_best_checkpoint_and_resumes(tmp_path, tiny_bert, sentiment_csv, monkeypatch):
    """PEFT saves a projected prefix in inference form; Trainer could not load its own best checkpoint
    back (a shape error at the end of the run, peft issue 2256). Both that and a resume now work."""
    from safetensors.torch import load_file

    from conftest import crash_training_at_step
    from tunesmith.trainer import TRAINABLE

    def args(out):
        return ["finetune", "--model", str(tiny_bert), "--data", str(sentiment_csv), "--method", "prefix",
                "--method.prefix_projection=true", "--method.num_virtual_tokens=3", "--output", str(out),
                "--train.max_steps=6", "--train.eval_every=2", "--batch-size", "16", "--seed", "3"]

    assert main(args(tmp_path / "a")) == 0
    full = json.loads((tmp_path / "a" / "report.json").read_text())
    best = load_file(str(next((tmp_path / "a" / "checkpoints").glob(f"checkpoint-*/{TRAINABLE}"))))
    assert any("prompt_encoder" in k and "transform" in k for k in best)  # the MLP, not just its output

    restore = crash_training_at_step(monkeypatch, 5)  # after checkpoint-4 was written
    assert main(args(tmp_path / "b")) == 130
    restore()
    assert main(args(tmp_path / "b") + ["--output.resume=true"]) == 0
    resumed = json.loads((tmp_path / "b" / "report.json").read_text())
    assert resumed["evaluation"]["test"] == full["evaluation"]["test"]
