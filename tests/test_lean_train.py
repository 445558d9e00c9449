"""The lean training pass (lean_train.py): same loss, logits and gradients as the plain forward on
a tiny random model in fp32, for full fine-tuning and LoRA; plain fallbacks where it does not
apply; and a fine-tuning run that uses it."""
from __future__ import annotations

import copy

import pytest
import torch

from conftest import sentiment_rows, tiny_classifier as _cls

TEXTS = [r["text"] for r in sentiment_rows(12, seed=3)] + ["ok", "bad " * 40]


def _batch(tok):
    b = dict(tok(TEXTS, padding=True, truncation=True, max_length=64, return_tensors="pt"))
    b["labels"] = torch.arange(len(TEXTS)) % 3
    return b


def _loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    return out.loss.detach(), out.logits.detach(), grads


def _compare(plain, lean, batch):
    from tunesmith import lean_train

    ok, why = lean_train.install(lean)
    assert ok, why
    assert lean_train.installed(lean)
    loss0, logits0, g0 = _loss_and_grads(plain, batch)
    loss1, logits1, g1 = _loss_and_grads(lean, batch)
    assert torch.allclose(loss0, loss1, atol=1e-6, rtol=1e-6), (loss0, loss1)
    assert torch.allclose(logits0, logits1, atol=1e-5)
    assert set(g0) == set(g1) and len(g0) > 0
    for name in g0:  # every trainable weight, embeddings and the last layer included
        assert torch.allclose(g0[name], g1[name], atol=1e-5, rtol=1e-4), (name, (g0[name] - g1[name]).abs().max())
    return g0


def test_lean_pass_has_the_plain_loss_and_gradients_full(tiny_bert, tok):
    plain = _cls(tiny_bert)  # eval mode: no dropout, so both passes are deterministic
    lean = copy.deepcopy(plain)
    grads = _compare(plain, lean, _batch(tok))
    # the last layer's query / feed-forward get real (non-zero) gradients from the [CLS] row
    assert any("layer.1.intermediate" in n and g.abs().sum() > 0 for n, g in grads.items())


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_lean_pass_has_the_plain_loss_and_gradients_peft(tiny_bert, tok, method):
    from tunesmith.adapt import apply_method
    from tunesmith.config import MethodConfig

    torch.manual_seed(0)
    base = _cls(tiny_bert)
    plain = apply_method(copy.deepcopy(base), MethodConfig(name=method, lora_dropout=0.0), "classification")
    plain.eval()
    lean = copy.deepcopy(plain)
    with torch.no_grad():  # LoRA's B starts at zero: move it so the adapter path carries gradient
        for (n, p), (_, q) in zip(plain.named_parameters(), lean.named_parameters()):
            if "lora_B" in n:
                p.normal_(0, 0.1)
                q.copy_(p)
    _compare(plain, lean, _batch(tok))


def test_lean_pass_uninstall_restores_the_class_forward(tiny_bert, tok):
    from tunesmith import lean_train

    model = _cls(tiny_bert)
    assert lean_train.install(model)[0]
    lean_train.uninstall(model)
    assert not lean_train.installed(model) and "forward" not in vars(model)


def test_lean_pass_falls_back_where_it_does_not_apply(tiny_bert, tok):
    from transformers import AutoModelForTokenClassification

    from tunesmith import lean_train
    from tunesmith.adapt import apply_method
    from tunesmith.config import MethodConfig

    ner = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=3)
    assert lean_train.install(ner) == (False, "BertForTokenClassification is not a sequence classifier")
    prompt = apply_method(_cls(tiny_bert), MethodConfig(name="prompt"), "classification")
    ok, why = lean_train.install(prompt)
    assert not ok and "changes the input" in why
    regression = _cls(tiny_bert, problem_type="multi_label_classification")
    assert lean_train.install(regression) == (False, "not single-label classification")


def test_lean_pass_hands_unusual_calls_to_the_plain_forward(tiny_bert, tok):
    from tunesmith import lean_train

    model = _cls(tiny_bert)
    assert lean_train.install(model)[0]
    batch = _batch(tok)
    batch.pop("labels")
    out = model(**batch, output_hidden_states=True)  # needs every row of every layer
    assert out.hidden_states is not None and len(out.hidden_states) == 3


def _methods():
    from tunesmith.adapt import REGISTRY

    return [n for n, r in REGISTRY.items() if "classification" in r.tasks]


@pytest.mark.parametrize("method", _methods())
def test_every_method_trains_lean_or_falls_back_with_the_same_loss(tiny_bert, tok, method):
    """Registered methods: where the lean pass installs, its loss and gradients are the plain ones."""
    from tunesmith import lean_train
    from tunesmith.adapt import apply_method
    from tunesmith.config import MethodConfig

    torch.manual_seed(0)
    plain = apply_method(_cls(tiny_bert), MethodConfig(name=method), "classification").eval()
    lean = copy.deepcopy(plain)
    ok, why = lean_train.install(lean)
    batch = _batch(tok)
    loss0, logits0, g0 = _loss_and_grads(plain, batch)
    loss1, logits1, g1 = _loss_and_grads(lean, batch)
    assert torch.allclose(loss0, loss1, atol=1e-6) and torch.allclose(logits0, logits1, atol=1e-5), why
    for name in g0:
        assert torch.allclose(g0[name], g1[name], atol=1e-5, rtol=1e-4), name
    assert ok == lean_train.installed(lean)
