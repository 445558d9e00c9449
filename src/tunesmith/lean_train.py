"""The lean training pass for BERT-family sequence classifiers: the last layer for [CLS] only.

A sequence classifier reads one row after the last layer: [CLS] (through the pooler for BERT,
directly for RoBERTa-style heads). The plain forward still computes that layer's query, attention
output and feed-forward for every token and throws all but one row away; in training, backward
then pushes zero gradients through them too. Here the last layer computes its query, attention
output and feed-forward for [CLS] only (keys and values still come from every token, as they
must), which is ~14% of a 6-layer encoder's matmul work, forward and backward.

It is the same function of the same weights: loss, logits and every gradient equal the plain
forward's (tests/test_lean_train.py, fp32, dropout off, to 1e-5). With dropout on, the masks that
the plain forward draws for the discarded rows are never read, so training sees the same
distribution of masks on everything that reaches the loss (the random stream differs, as it does
between any two seeds' worth of batches).

How: `install(model)` replaces the instance's `forward` of the underlying transformers model
(under a peft wrapper too) by `lean_forward`, which calls the model's own modules - embeddings,
layers, the (LoRA/IA3/adapter-wrapped) Linears, pooler and classifier - so DDP, peft and
Trainer's evaluation all go through it unchanged. It is installed only after matching the plain
forward on a probe batch with padding; anything it does not cover (DistilBERT, token
classification, virtual-token methods, regression heads, extra arguments at call time) runs the
plain forward. `uninstall(model)` puts the class forward back before the model is saved or served.
"""
from __future__ import annotations

import types

import torch
import torch.nn.functional as F

from . import train_ops
from .adapt.registry import is_peft_model

# peft methods that wrap modules but leave the input alone (virtual-token methods prepend rows)
_MODULE_PEFT = ("LORA", "IA3", "ADALORA", "LOHA", "LOKR", "VERA", "BOFT", "OFT")
_ATTR = "_tunesmith_lean"


def hf_model(model):
    """The transformers model inside a peft wrapper (or the model itself)."""
    inner = getattr(getattr(model, "base_model", None), "model", None)
    if inner is not None and is_peft_model(model):
        return inner
    return model


def layout_problem(model) -> str | None:
    """Why the lean training pass does not apply (None when it does)."""
    if is_peft_model(model):
        kinds = {str(getattr(c.peft_type, "value", c.peft_type)) for c in model.peft_config.values()}
        if not kinds <= set(_MODULE_PEFT):
            return f"peft method {sorted(kinds)} changes the input"
    hf = hf_model(model)
    problem = _bert_layout_problem(hf)
    if problem:
        return problem
    if getattr(hf.config, "num_labels", 2) < 2 or hf.config.problem_type not in (None, "single_label_classification"):
        return "not single-label classification"
    return None


def _bert_layout_problem(hf) -> str | None:
    from .infer.encoder import bert_layout_problem

    if not type(hf).__name__.endswith("ForSequenceClassification"):
        return f"{type(hf).__name__} is not a sequence classifier"
    return bert_layout_problem(hf, wrapped_ok=True)


def _layer(layer, h: torch.Tensor, mask, cls_only: bool) -> torch.Tensor:
    """BertLayer.forward (self-attention, output, feed-forward) with our attention and, with
    `cls_only`, for the [CLS] row only: (B, S, D) -> (B, S or 1, D)."""
    sa = layer.attention.self
    B, S, _ = h.shape
    x = h[:, :1] if cls_only else h  # the rows whose output is needed
    d = sa.attention_head_size
    q = sa.query(x).view(B, x.shape[1], -1, d).transpose(1, 2)  # (B, H, L, d)
    k = sa.key(h).view(B, S, -1, d).transpose(1, 2)  # (B, H, S, d)
    v = sa.value(h).view(B, S, -1, d).transpose(1, 2)
    ctx = train_ops.attention(q, k, v, mask, sa.scaling, sa.dropout.p, sa.training)  # (B, L, H, d)
    a = layer.attention.output(ctx.reshape(B, x.shape[1], -1), x)
    return layer.output(layer.intermediate(a), a)


def additive_mask(attention_mask, dtype: torch.dtype):
    """(B, S) 1/0 -> additive (B, 1, 1, S) float mask; None when nothing is padded."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def lean_logits(hf, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None):
    """Logits (B, num_labels) of the transformers classifier `hf`, last layer for [CLS] only."""
    base = getattr(hf, hf.base_model_prefix)
    h = base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, inputs_embeds=inputs_embeds)
    mask = additive_mask(attention_mask, h.dtype)
    layers = base.encoder.layer
    for i, layer in enumerate(layers):
        h = _layer(layer, h, mask, cls_only=i == len(layers) - 1)  # (B, S, D); last: (B, 1, D)
    if getattr(base, "pooler", None) is not None:  # BERT: pooler -> dropout -> classifier
        return hf.classifier(hf.dropout(base.pooler(h)))
    return hf.classifier(h)  # RoBERTa-style heads read h[:, 0] themselves


_COVERED = {"input_ids", "attention_mask", "token_type_ids", "inputs_embeds", "labels", "return_dict"}


def lean_forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
                 labels=None, **kwargs):
    """Drop-in `forward` for a sequence classifier; anything unusual goes to the plain forward."""
    from transformers.modeling_outputs import SequenceClassifierOutput

    plain = type(self).forward
    extra = {k: v for k, v in kwargs.items() if v is not None and k not in _COVERED}
    if extra or (labels is not None and labels.dtype not in (torch.long, torch.int)):
        return plain(self, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                     inputs_embeds=inputs_embeds, labels=labels, **kwargs)
    logits = lean_logits(self, input_ids, attention_mask, token_type_ids, inputs_embeds)
    loss = None
    if labels is not None:
        loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
    return SequenceClassifierOutput(loss=loss, logits=logits)


def _probe(hf) -> dict:
    from .infer.encoder import _probe as probe

    batch = probe(hf)
    device = next(hf.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    batch["labels"] = torch.tensor([0, 1, 0], device=device) % hf.num_labels
    return batch


def install(model) -> tuple[bool, str]:
    """Make `model` (plain or peft) train with the lean pass; (installed?, why not / 'ok').

    Verified first: logits and loss of the lean pass must match the plain forward on a probe
    batch with padding (eval mode, no dropout), else the model keeps its plain forward."""
    problem = layout_problem(model)
    if problem:
        return False, problem
    hf = hf_model(model)
    was_training = hf.training
    hf.eval()
    try:
        batch = _probe(hf)
        with torch.no_grad():
            want = type(hf).forward(hf, **batch)
            got = lean_forward(hf, **batch)
        ok = torch.allclose(got.logits.float(), want.logits.float(), atol=1e-4, rtol=1e-4) and \
            torch.allclose(got.loss.float(), want.loss.float(), atol=1e-4, rtol=1e-4)
        why = "ok" if ok else f"probe mismatch {(got.logits - want.logits).abs().max():.2e}"
    except Exception as e:  # an unexpected variant of the layout: keep the plain forward
        ok, why = False, f"{type(e).__name__}: {str(e)[:200]}"
    finally:
        hf.train(was_training)
    if ok:
        hf.forward = types.MethodType(lean_forward, hf)
        train_ops.patch_dropouts(hf)
        setattr(hf, _ATTR, True)
    return ok, why


def uninstall(model) -> None:
    """Back to the class's forward (before saving, serving or exporting)."""
    hf = hf_model(model)
    if getattr(hf, _ATTR, False):
        del hf.forward
        train_ops.unpatch_dropouts(hf)
        delattr(hf, _ATTR)


def installed(model) -> bool:
    return bool(getattr(hf_model(model), _ATTR, False))
