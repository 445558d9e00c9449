"""The lean classifier pass (infer/encoder.py) and the execution-path choice (infer/fast.py):
same logits as the plain transformers forward, fallbacks where it does not apply, and
`tunesmith bench infer` end to end on a tiny run."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from conftest import sentiment_rows, tiny_classifier as _cls

TEXTS = [r["text"] for r in sentiment_rows(30, seed=5)] + ["ok", "bad " * 50]


def _plain(model, tok, texts, max_length=64):
    with torch.no_grad():
        return torch.cat([model(**tok(t, return_tensors="pt", truncation=True, max_length=max_length)).logits
                          for t in texts])


def _batch(tok, texts):
    return dict(tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt"))


def test_lean_pass_equals_plain_forward_with_and_without_padding(tiny_bert, tok, monkeypatch):
    from tunesmith.infer import encoder

    model = _cls(tiny_bert)
    lean, why = encoder.build(model)
    assert why == "ok" and lean is not None
    ref = _plain(model, tok, TEXTS)
    with torch.no_grad():
        padded = lean(**_batch(tok, TEXTS))  # one batch, lots of padding
        alone = torch.cat([lean(**_batch(tok, [t])) for t in TEXTS])  # no padding: mask skipped
        monkeypatch.setattr(encoder, "SDPA_FROM", 1)  # the SDPA branch used for long sequences
        sdpa = lean(**_batch(tok, TEXTS))
    for got in (padded, alone, sdpa):
        assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()


def test_layouts_it_does_not_cover_fall_back_to_the_plain_forward(tiny_bert, tok):
    from tunesmith.infer.fast import build_engine
    from tunesmith.infer.predictor import Predictor

    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    cfg = DistilBertConfig(vocab_size=tok.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=40,
                           max_position_embeddings=128, num_labels=2)
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(cfg).eval()
    engine = build_engine("fp32", model, torch.device("cpu"))
    assert engine.info["lean"] == "not a BERT-style encoder"
    got = Predictor(model, tok, max_length=64).logits(TEXTS)
    plain = lambda t: model(**{k: v for k, v in tok(t, return_tensors="pt").items() if k != "token_type_ids"})
    with torch.no_grad():
        ref = torch.cat([plain(t).logits for t in TEXTS])
    assert torch.allclose(got, ref, atol=1e-5)

    from transformers import AutoModelForTokenClassification

    ner = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3).eval()
    assert "not a sequence classifier" in build_engine("fp32", ner, torch.device("cpu")).info["lean"]


def test_lean_pass_on_a_roberta_style_head(tmp_path):
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from tunesmith.infer import encoder

    cfg = RobertaConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=40, max_position_embeddings=80, num_labels=2, pad_token_id=1)
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(cfg).eval()
    lean, why = encoder.build(model)
    assert why == "ok"
    ids = torch.randint(3, 60, (4, 12))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    ids[0, 6:] = 1
    with torch.no_grad():
        assert torch.allclose(lean(ids, mask), model(input_ids=ids, attention_mask=mask).logits, atol=1e-5)


def test_a_wrong_lean_answer_is_never_used(tiny_bert, monkeypatch):
    from tunesmith.infer import encoder

    monkeypatch.setattr(encoder.LeanClassifier, "_head", lambda self, h: self.model.classifier(h[:, 0]))
    lean, why = encoder.build(_cls(tiny_bert))  # skips the pooler: the probe batch catches it
    assert lean is None and why.startswith("probe mismatch")


def test_bf16_stays_close_and_auto_compiles_only_long_inputs(tiny_bert, tok):
    from tunesmith.infer.fast import COMPILE_FROM, bf16_supported, default_path
    from tunesmith.infer.predictor import Predictor

    cpu = torch.device("cpu")
    short, long = default_path(cpu, 10), default_path(cpu, COMPILE_FROM)
    assert short in ("bf16", "fp32") and long == {"bf16": "bf16-compile", "fp32": "compile"}[short]
    assert default_path(cpu) == short
    if not bf16_supported(cpu):
        pytest.skip("no bf16 on this CPU")
    model = _cls(tiny_bert)
    ref = Predictor(model, tok, max_length=64).logits(TEXTS)
    got = Predictor(model, tok, max_length=64, fast="bf16", max_tokens=200).logits(TEXTS)
    assert got.dtype == torch.float32 and torch.allclose(got, ref, atol=0.05), (got - ref).abs().max()


def test_compile_failure_falls_back_to_eager_with_a_warning(tiny_bert, tok, monkeypatch):
    from tunesmith.infer.predictor import Predictor

    def broken_compile(fn, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = _cls(tiny_bert)
    ref = Predictor(model, tok, max_length=64).logits(TEXTS)
    p = Predictor(model, tok, max_length=64, fast="compile")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = p.logits(TEXTS)
    assert any("torch.compile failed" in str(w.message) for w in caught)
    assert torch.allclose(got, ref, atol=1e-5)


def test_ragged_padding_equals_the_tokenizer_padding(tok):
    from tunesmith.infer.batching import Ragged, pad_batch

    enc = tok(TEXTS, truncation=True, max_length=64)
    feats = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    ragged = Ragged(feats)
    for idx in ([0], [3, 1, 30], list(range(len(TEXTS)))[::-1]):
        want = tok.pad({k: [feats[k][i] for i in idx] for k in feats}, return_tensors="pt")
        got = pad_batch(ragged, idx, tok.pad_token_id)
        assert all(torch.equal(got[k], want[k]) for k in feats)


def test_bench_infer_prints_every_path_and_the_defaults(tmp_path, tiny_bert, tok, capsys):
    from tunesmith.cli import main

    run = tmp_path / "run"
    _cls(tiny_bert).save_pretrained(run / "model")
    tok.save_pretrained(run / "model")
    (run / "run.json").write_text(json.dumps({"status": "complete", "task": "classification", "method": "full",
                                              "labels": ["LABEL_0", "LABEL_1", "LABEL_2"], "max_length": 32}))
    rows = sentiment_rows(40, seed=9)
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"\"{r['text']}\",LABEL_{i % 3}\n" for i, r in enumerate(rows)))
    md = tmp_path / "t.md"
    assert main(["bench", "infer", "--model", str(run), "--data", str(data), "--paths", "int8",
                 "--rounds", "1", "--textbook-limit", "5", "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| (")]
    assert [r.split("|")[1].strip() for r in table] == ["(a) textbook loop", "(b) pipeline bs=64",
                                                         "(c) tunesmith fp32", "(d) tunesmith int8"]
    assert "(c) fp32 labels identical to (b) pipeline: yes" in out
    assert "default path (--fast auto) for this input:" in out and "large-matmul peaks" in out
    assert md.read_text().strip() in out


def test_compiled_path_runs_lone_texts_eager(tiny_bert, tok, monkeypatch):
    from tunesmith.infer.predictor import Predictor

    calls = []

    def counting_compile(fn, **kwargs):
        def run(*a, **k):
            calls.append(a[0]["input_ids"].shape[0])
            return fn(*a, **k)
        return run

    monkeypatch.setattr(torch, "compile", counting_compile)
    model = _cls(tiny_bert)
    ref = Predictor(model, tok, max_length=64).logits(TEXTS[:3])
    p = Predictor(model, tok, max_length=64, fast="compile")
    assert torch.allclose(p.logits(TEXTS[:1]), ref[:1], atol=1e-5) and calls == []
    assert torch.allclose(p.logits(TEXTS[:3]), ref, atol=1e-5) and sum(calls) == 3
