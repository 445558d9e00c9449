"""A leaner, exact forward pass for BERT-family sequence classifiers (inference only).

Same weights, same arithmetic as the transformers forward, minus work whose result is thrown away:

- the last layer computes attention and feed-forward for the [CLS] row only (the classifier reads
  nothing else; keys and values still come from every token), about 14% of the FLOPs of a 6-layer
  encoder and the biggest single win measured (bf16: 332 -> 413 samples/s on 1,057 reviews);
- query, key and value are one matmul per layer instead of three;
- attention is two batched matmuls and a softmax (faster than SDPA's CPU flash kernel on short
  sentences: 527 vs 484 samples/s), and the padding mask is skipped when a batch has no padding
  (length-sorted batches mostly have none).

`build(model)` returns None unless the model has the BERT layout (bert, roberta, ... with absolute
positions) AND the lean pass matches `model(...)` on a probe batch with padding to 1e-4: anything it
does not cover falls back to the plain forward instead of answering differently.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SDPA_FROM = 256  # sequence length from which SDPA's flash kernel beats plain matmul attention


def _layout_problem(model) -> str | None:
    """Why the lean pass does not apply to this model (None when it does)."""
    if not type(model).__name__.endswith("ForSequenceClassification"):
        return f"{type(model).__name__} is not a sequence classifier"
    from ..adapt.bottleneck import has_adapters

    if has_adapters(model):  # the lean pass re-implements the layers: it would skip the adapters
        return "bottleneck adapter layers (not mergeable): the plain forward runs them"
    from ..adapt.registry import is_peft_model

    if is_peft_model(model):  # prompt / prefix tuning: virtual tokens the lean pass lacks
        return "an unmerged peft model (prompt, p-tuning or prefix tuning): the plain forward runs it"
    return bert_layout_problem(model)


def bert_layout_problem(model, wrapped_ok: bool = False) -> str | None:
    """Why `model` does not have the BERT encoder layout the lean passes re-implement (None when it
    does). `wrapped_ok`: the attention projections may be any module (peft's LoRA/IA3 wrappers;
    the training pass calls them), not only nn.Linear (the inference pass reads their weights)."""
    cfg = model.config
    base = getattr(model, getattr(model, "base_model_prefix", "") or "", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if base is None or layers is None or not hasattr(base, "embeddings") or not hasattr(model, "classifier"):
        return "not a BERT-style encoder"
    if getattr(cfg, "is_decoder", False) or getattr(cfg, "add_cross_attention", False):
        return "decoder / cross-attention"
    if getattr(cfg, "position_embedding_type", "absolute") not in (None, "absolute"):
        return f"{cfg.position_embedding_type} position embeddings"
    for layer in layers:
        att = getattr(layer, "attention", None)
        parts = [getattr(getattr(att, "self", None), n, None) for n in ("query", "key", "value")]
        kinds = torch.nn.Module if wrapped_ok else torch.nn.Linear
        if not all(isinstance(p, kinds) for p in parts) or not hasattr(layer, "intermediate") \
                or not hasattr(getattr(layer, "output", None), "LayerNorm"):
            return f"layer {type(layer).__name__} has another structure"
    return None


class LeanClassifier(torch.nn.Module):
    """`forward(input_ids, attention_mask, token_type_ids=None) -> logits` (float32) of a BERT-family
    sequence classifier, computing the last layer for [CLS] only. Casting it (`.to(torch.bfloat16)`)
    casts the wrapped model too: they share weights, apart from the fused QKV copies."""

    def __init__(self, model, always_mask: bool = False):
        super().__init__()
        self.model = model
        self.base = getattr(model, model.base_model_prefix)
        self.always_mask = always_mask  # torch.compile: no data-dependent branch
        self.heads = model.config.num_attention_heads
        for i, layer in enumerate(self.base.encoder.layer):
            s = layer.attention.self
            self.register_buffer(f"qkv_w{i}", torch.cat([s.query.weight, s.key.weight, s.value.weight]).detach(),
                                 persistent=False)
            self.register_buffer(f"qkv_b{i}", torch.cat([s.query.bias, s.key.bias, s.value.bias]).detach(),
                                 persistent=False)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        h = self.base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # (B, S, D)
        B, S, D = h.shape
        mask = None
        if attention_mask is not None and (self.always_mask or not bool(attention_mask.all())):
            mask = torch.zeros((B, 1, 1, S), dtype=h.dtype, device=h.device).masked_fill(
                attention_mask[:, None, None, :] == 0, torch.finfo(h.dtype).min)
        layers = self.base.encoder.layer
        for i, layer in enumerate(layers):
            w, b = getattr(self, f"qkv_w{i}"), getattr(self, f"qkv_b{i}")
            if i == len(layers) - 1:  # only [CLS] is read after this layer
                x = h[:, :1]
                q = F.linear(x, w[:D], b[:D])
                k, v = self._linear(f"kv{i}", h, w[D:], b[D:]).split(D, dim=-1)
            else:
                x = h
                q, k, v = self._linear(f"qkv{i}", h, w, b).split(D, dim=-1)
            ctx = self._attend(q, k, v, mask, layer.attention.self.scaling)
            out, mid = layer.attention.output, layer.intermediate
            a = out.LayerNorm(self._linear(f"o{i}", ctx, out.dense.weight, out.dense.bias) + x)
            up = mid.intermediate_act_fn(self._linear(f"up{i}", a, mid.dense.weight, mid.dense.bias))
            dn = layer.output.dense
            h = layer.output.LayerNorm(self._linear(f"down{i}", up, dn.weight, dn.bias) + a)
        return self._head(h).float()

    def _linear(self, name: str, x, weight, bias):
        """One of the encoder's matmuls (`name` says which; the int8 pass replaces this)."""
        return F.linear(x, weight, bias)

    def _attend(self, q, k, v, mask, scale):
        B, L, D = q.shape
        S, H = k.shape[1], self.heads
        q = q.view(B, L, H, D // H).transpose(1, 2)  # (B, H, L, d)
        k = k.view(B, S, H, D // H).transpose(1, 2)
        v = v.view(B, S, H, D // H).transpose(1, 2)
        if S >= SDPA_FROM:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, H, L, S)
            if mask is not None:
                scores = scores + mask
            ctx = torch.matmul(scores.softmax(-1), v)
        return ctx.transpose(1, 2).reshape(B, L, D)

    def _head(self, h):
        pooler = getattr(self.base, "pooler", None)
        if pooler is not None and isinstance(self.model.classifier, torch.nn.Linear):  # BERT
            return self.model.classifier(pooler(h))
        return self.model.classifier(h)  # RoBERTa-style heads read h[:, 0] themselves


def _probe(model) -> dict:
    g = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    ids = torch.randint(min(5, vocab - 1), vocab, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@torch.inference_mode()
def build(model, always_mask: bool = False) -> tuple[LeanClassifier | None, str]:
    """The lean classifier around a float32 `model`, verified on a probe batch, or (None, reason)."""
    problem = _layout_problem(model)
    if problem:
        return None, problem
    try:
        lean = LeanClassifier(model, always_mask).eval()
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in _probe(model).items()}
        want = model(**batch).logits.float()
        got = lean(**batch)
    except Exception as e:  # an unexpected variant of the layout: use the plain forward
        return None, f"{type(e).__name__}: {e}"
    if got.shape != want.shape or not torch.allclose(got, want, atol=1e-4, rtol=1e-4):
        return None, f"probe mismatch {(got - want).abs().max():.2e}"
    return lean, "ok"
