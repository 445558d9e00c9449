"""Training-memory estimates: weights, gradients, optimizer states and activations.

Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
Transformer Models"), per layer at 16 bit: s·b·(18h + 4i) + 5·a·s²·b bytes (34·s·b·h + 5·a·s²·b
when i = 4h), doubled in fp32. They are an estimate (allocator overhead, framework buffers and
fused kernels move the real number), which the probe checks by measuring.
"""
from __future__ import annotations

from dataclasses import dataclass

from .formulas import MethodCount


@dataclass
class MemoryEstimate:
    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def rows(self) -> list[tuple[str, int]]:
        return [("weights", self.weights), ("gradients", self.gradients), ("optimizer (AdamW)", self.optimizer),
                ("activations", self.activations), ("total", self.total)]


def activation_bytes(config, batch: int, seq: int, precision: str = "fp32", checkpointing: bool = False) -> int:
    """Activations kept for the backward pass over all layers (no recomputation unless checkpointing)."""
    h, L = config.hidden_size, config.num_hidden_layers
    a = config.num_attention_heads
    i = getattr(config, "intermediate_size", 4 * h) or 4 * h
    per_layer = seq * batch * (18 * h + 4 * i) + 5 * a * seq * seq * batch  # 16-bit bytes
    scale = 2 if precision == "fp32" else 1
    if checkpointing:  # keep each layer's input, recompute one layer at a time
        return scale * (L * 2 * seq * batch * h + per_layer)
    return scale * (L * per_layer + 2 * seq * batch * h)  # + embeddings output


def estimate(config, count: MethodCount, batch: int, seq: int, precision: str = "fp32",
             checkpointing: bool = False) -> MemoryEstimate:
    """Peak training memory of one method.

    fp32: 4 bytes per weight, 4 per trainable gradient, 8 per trainable for AdamW's two moments.
    mixed (AMP): weights stay fp32, activations are 16-bit. A frozen backbone (method `head`)
    keeps no activations for backward: nothing below the head needs a gradient.

    Example:
        >>> from transformers import BertConfig
        >>> from tunesmith.strategy.formulas import count_method
        >>> c = BertConfig(); m = estimate(c, count_method(c, "full"), 32, 128)
        >>> round(m.weights / 1e9, 2)
        0.44
    """
    acts = 0 if count.method == "head" else activation_bytes(config, batch, seq, precision, checkpointing)
    if count.method == "head":
        acts = 4 * batch * config.hidden_size  # the pooled features the head sees
    return MemoryEstimate(weights=4 * count.total, gradients=4 * count.trainable,
                          optimizer=8 * count.trainable, activations=acts)
