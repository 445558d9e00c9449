"""The lean classifier pass with the encoder's matmuls in int8 (CPU, oneDNN VNNI kernels).

Weights: int8 per output channel (symmetric). Activations: int8 per token (one scale per row,
computed on the fly), which keeps label changes far below per-tensor quantization's (measured on
2,114 movie-review sentences: 0.71% vs 1.89% of labels). oneDNN's fast int8 GEMM wants unsigned
activations with one zero point, so a row is stored as round(x / s_row) + 128 and the GEMM runs
with scale 1; the row scales and the bias are applied to its bf16 output, where torch.compile fuses
them with what follows (GELU, residual add + LayerNorm). The GEMMs run ~2.1x the bf16 ones here.
"""
from __future__ import annotations

import torch

from .encoder import LeanClassifier

ZERO_POINT = 128


def supported() -> bool:
    """oneDNN's quantized linear is present (x86 CPU builds of torch)."""
    return hasattr(torch.ops, "onednn") and hasattr(torch.ops.onednn, "qlinear_pointwise") \
        and torch.backends.mkldnn.is_available()


def vnni() -> bool:
    """The CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX), per torch's own
    CPU feature probe: where int8 GEMMs beat bf16/fp32 ones. Without them `--fast auto` does not
    pick int8-row (it may still be asked for)."""
    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return False
    return any(caps.get(k) for k in ("avx512_vnni", "avx_vnni", "amx_int8"))


def pack(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(packed int8 weight, float32 scale per output channel, zero points) of a (out, in) weight."""
    w = weight.detach().float()
    scale = (w.abs().amax(1) / 127).clamp(min=1e-12)
    q = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return torch.ops.onednn.qlinear_prepack(q, None), scale, torch.zeros(len(scale), dtype=torch.int32)


@torch.library.custom_op("tunesmith::int8_gemm", mutates_args=())
def int8_gemm(q: torch.Tensor, packed: torch.Tensor, w_scale: torch.Tensor, w_zp: torch.Tensor) -> torch.Tensor:
    """(q - 128) @ W.T * w_scale in bf16 for uint8 rows q. An opaque op to torch.compile: inductor's
    own lowering of the oneDNN call wants frozen weights, and around it it fuses the rest."""
    return torch.ops.onednn.qlinear_pointwise(q, 1.0, ZERO_POINT, packed, w_scale, w_zp, None, 1.0, 0,
                                              torch.bfloat16, "none", [], "")


@int8_gemm.register_fake
def _(q, packed, w_scale, w_zp):
    return q.new_empty((q.shape[0], w_scale.shape[0]), dtype=torch.bfloat16)


def int8_linear(x: torch.Tensor, packed, w_scale, w_zp, bias) -> torch.Tensor:
    """x @ W.T + bias with x quantized per row; x and the result in x's dtype."""
    shape = x.shape
    x2 = x.reshape(-1, shape[-1]).float()
    s = x2.abs().amax(-1, keepdim=True).clamp(min=1e-8) / 127
    q = (torch.round(x2 / s) + ZERO_POINT).to(torch.uint8)
    y = int8_gemm(q, packed, w_scale, w_zp).float() * s + bias.float()
    return y.to(x.dtype).reshape(*shape[:-1], y.shape[-1])


class LeanInt8Classifier(LeanClassifier):
    """LeanClassifier whose encoder matmuls (QKV, attention output, feed-forward) run in int8; the
    last layer's [CLS] query, the pooler and the head stay in the float dtype."""

    def __init__(self, model, always_mask: bool = False):
        super().__init__(model, always_mask)
        D = model.config.hidden_size
        self.packed: dict[str, tuple] = {}
        layers = self.base.encoder.layer
        for i, layer in enumerate(layers):
            w = getattr(self, f"qkv_w{i}")
            qkv = (f"kv{i}", w[D:]) if i == len(layers) - 1 else (f"qkv{i}", w)
            for name, weight in (qkv, (f"o{i}", layer.attention.output.dense.weight),
                                 (f"up{i}", layer.intermediate.dense.weight),
                                 (f"down{i}", layer.output.dense.weight)):
                self.packed[name] = pack(weight)

    def _linear(self, name: str, x, weight, bias):
        packed, scale, zp = self.packed[name]
        return int8_linear(x, packed, scale, zp, bias)
