"""Prefix tuning on BERT-family encoders with peft's own PrefixTuning, through one small shim.

peft 0.21.2 refuses BERT with "Model does not support past key values which are required for
prefix tuning" only because it looks for a forward parameter named `past_key_values` (peft 0.22 looks
for `cache` on transformers >= 5.24, so the shim's forward names both); transformers
5.24 names it `cache` (the old name is a deprecated alias, to be removed in 5.40), and BERT's
attention still prepends cached keys/values and widens the attention mask for exactly this case.
`expose_past_key_values` gives the backbone a forward that takes `past_key_values` and hands it on
as `cache=`; peft then runs its usual prefix path. Call it wherever a prefix run is created or
loaded (finetune, predict, evaluate, serve; the model card's code does the same in three lines).

The real tokens' positions shift by the number of virtual tokens (BERT numbers positions from the
cache length), so `max_length` must stay under `max_position_embeddings - num_virtual_tokens`.
"""
from __future__ import annotations

import inspect
import types

from ..errors import TunesmithError


def _forward_with_past(self, *args, past_key_values=None, cache=None, **kwargs):
    """The backbone's forward, accepting peft's `past_key_values` and passing it on as `cache`.

    Its signature names both: peft 0.21 looks for `past_key_values`, peft 0.22 (on transformers >=
    5.24) for `cache`, and a shim that hid `cache` behind **kwargs failed 0.22's check."""
    if past_key_values is not None or cache is not None:
        kwargs["cache"] = past_key_values if past_key_values is not None else cache
    return type(self).forward(self, *args, **kwargs)


def backbone(model):
    """The transformers backbone (`model.bert`, ...) peft calls for prefix tuning."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    inner = getattr(model, prefix, None)
    if inner is None:
        raise TunesmithError(f"prefix tuning: {type(model).__name__} has no backbone '{prefix}'")
    return inner


def expose_past_key_values(model):
    """Make peft's signature check pass on transformers-5 encoders (in place; returns `model`).

    A no-op where the forward already takes `past_key_values` (decoders, older transformers)."""
    inner = backbone(model)
    params = inspect.signature(inner.forward).parameters
    if "past_key_values" in params:
        return model
    if "cache" not in params:
        raise TunesmithError(f"prefix tuning: {type(inner).__name__}.forward takes neither past_key_values "
                             "nor cache; this architecture cannot take a prefix (use --method prompt or lora)")
    inner.forward = types.MethodType(_forward_with_past, inner)
    return model


def max_length_limit(config, num_virtual_tokens: int) -> int:
    """The longest input a prefix run can take: the position table minus the virtual tokens."""
    positions = getattr(config, "max_position_embeddings", None) or 512
    limit = positions - num_virtual_tokens
    if limit < 8:
        raise TunesmithError(f"prefix tuning: {num_virtual_tokens} virtual tokens leave {limit} of the "
                             f"model's {positions} positions for text; use fewer --method.num_virtual_tokens")
    return limit


# The model card's three lines (the same shim, in plain code).
PLAIN_SHIM = '''import types
def _forward(self, *args, past_key_values=None, cache=None, **kw):  # peft 0.21 looks for
    if past_key_values is not None or cache is not None:             # past_key_values, 0.22 for cache
        kw["cache"] = past_key_values if past_key_values is not None else cache
    return type(self).forward(self, *args, **kw)
base.base_model.forward = types.MethodType(_forward, base.base_model)'''
