"""Mean pooling for a BERT sequence classifier that plain transformers still loads.

`BertForSequenceClassification` reads the [CLS] row through its pooler. Sentence encoders such as
all-MiniLM-L6-v2 (the built-in `minilm`) were trained to be read by the *mean* of their token
states instead: frozen, their [CLS] state is a weak feature (scripts/head_probe.py: a linear head
on [CLS] 0.66 validation accuracy, on the mean 0.76, at the compare budget). `append_mean_pooling`
appends one fixed BERT layer whose output at every position is LayerNorm(mean of the non-padding
token states), so the pooler and classifier see the mean through the standard architecture:

- query and key weights 0: every attention score is 0, softmax over the mask is uniform over the
  real tokens, so the attention context is the mean of the values;
- value = identity: the context is the mean of the previous layer's states, m;
- attention output dense = SCALE * identity: its LayerNorm sees SCALE*m + h_i, i.e. LN(m + h_i/SCALE),
  which is LN(m) to |h_i|/SCALE (at most 0.05 on minilm's unit-scale outputs; SCALE = 2**10, a power
  of two: exact in bf16, and SCALE*m stays far from fp16's limit);
- feed-forward output dense = 0: the output LayerNorm sees LN(m) + 0 and returns it (idempotent).

The saved model is an ordinary `BertForSequenceClassification` with `num_hidden_layers + 1` (the
config says so), and the lean [CLS]-only last layer (infer/encoder.py, lean_train.py) is exactly
this layer's one needed query. Not for MPNet and other encoders with a relative-position bias in
attention (scores are then not all equal): those keep [CLS].
"""
from __future__ import annotations


import torch

SCALE = 2.0 ** 10
MARK = "tunesmith_mean_pooling_layer"  # config attribute: index of the appended layer

# The same layer in plain torch, for a model card (the run read the mean; its base needs this layer
# before PeftModel.from_pretrained); append_mean_pooling runs this very code.
PLAIN_CODE = f"""# the run read the mean of the token states: append the same fixed mean-pooling layer to the base
import copy, torch
with torch.no_grad():
    layers = base.base_model.encoder.layer
    layer = copy.deepcopy(layers[-1]); d = base.config.hidden_size
    sa, ao = layer.attention.self, layer.attention.output
    for lin, w in ((sa.query, 0.0), (sa.key, 0.0), (sa.value, torch.eye(d)), (ao.dense, torch.eye(d) * {SCALE}),
                   (layer.intermediate.dense, 0.0), (layer.output.dense, 0.0)):
        lin.weight.copy_(w) if isinstance(w, torch.Tensor) else lin.weight.fill_(w)
        lin.bias.zero_()
    for ln in (ao.LayerNorm, layer.output.LayerNorm):
        ln.weight.fill_(1.0); ln.bias.zero_()
    for mod in layer.modules():
        if hasattr(mod, "layer_idx"):
            mod.layer_idx = len(layers)
    layers.append(layer)
    base.config.num_hidden_layers = len(layers)
    setattr(base.config, "tunesmith_mean_pooling_layer", len(layers) - 1)"""


def problem(model) -> str | None:
    """Why a mean-pooling layer cannot be appended to `model` (None when it can)."""
    cfg = model.config
    if getattr(cfg, "model_type", "") != "bert":
        return f"model type '{getattr(cfg, 'model_type', '?')}' (only BERT's attention is a plain softmax of q.k)"
    if getattr(cfg, MARK, None) is not None:
        return "the model already ends in a mean-pooling layer"
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None or not len(layers) or getattr(base, "pooler", None) is None:
        return "not a BERT encoder with a pooler"
    if getattr(cfg, "position_embedding_type", "absolute") not in (None, "absolute"):
        return f"{cfg.position_embedding_type} position embeddings (a bias in the attention scores)"
    return None


@torch.no_grad()
def append_mean_pooling(model) -> int:
    """Append the fixed mean-pooling layer (see the module docstring); returns its index.
    Raises ValueError with the reason when `problem(model)` has one."""
    why = problem(model)
    if why:
        raise ValueError(f"mean pooling layer: {why}")
    exec(PLAIN_CODE, {"base": model})  # one definition: what the model card prints is what runs
    return getattr(model.config, MARK)
