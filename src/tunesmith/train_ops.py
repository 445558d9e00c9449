"""Two training ops that cost far more on the CPU than their arithmetic: dropout and short-sequence
attention. Same distributions, same results; only how they are computed differs.

Dropout. `F.dropout` on the CPU draws one Mersenne-Twister number per element: on this 2-core
machine it took 16-22 ms for one (32, 27, 1536) feed-forward activation whose multiply takes
0.3 ms, and the 14 dropout calls of a 6-layer BERT step were ~21% of the forward pass (profiled).
`dropout` here draws the keep mask from NumPy's PCG64 (16 random bits per element, keep when
>= round(p * 65536), so p is exact to 1/65536) seeded from torch's global generator: ~2 ms for the
same tensor, reproducible from torch's RNG state (which Trainer checkpoints, so a resumed run draws
the same masks), and each element kept independently with probability 1 - p, as before. The mask is
saved as bool for the backward pass (1 byte per element instead of a float mask). CUDA tensors use
`F.dropout` (the GPU's Philox generator is already fast).

Attention. For short sequences, matmul attention (two batched matmuls and a softmax) beats SDPA's
CPU kernels, and with dropout on, SDPA runs its unfused "math" path anyway (6.5 ms a call for a
(32, 12, 27, 32) batch here). `attention` is the eager formula with the fast dropout on the
probabilities, and SDPA from SDPA_FROM tokens or on CUDA.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SDPA_FROM = 256  # sequence length from which SDPA's fused kernel wins (infer/encoder.py measured)
_BITS = 65536


def keep_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """Bool tensor of `shape`, each element True with probability 1 - p (to 1/65536)."""
    seed = int(torch.randint(0, 2**62, (1,)).item())  # torch's RNG state decides the mask
    rng = np.random.Generator(np.random.PCG64(seed))
    u = rng.integers(0, _BITS, size=int(np.prod(shape)), dtype=np.uint16)
    return torch.from_numpy(u >= round(p * _BITS)).view(shape)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        keep = keep_mask(x.shape, p)
        ctx.save_for_backward(keep)
        ctx.scale = 1.0 / (1.0 - p)
        return torch.where(keep, x * ctx.scale, 0.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad * ctx.scale, 0.0), None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`F.dropout(x, p, training)` with a fast CPU mask."""
    if not training or p <= 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return _Dropout.apply(x, p)


def _dropout_forward(self, x):  # bound to nn.Dropout instances by `patch_dropouts`
    return dropout(x, self.p, self.training)


def patch_dropouts(model) -> int:
    """Make every nn.Dropout in `model` use the fast mask; returns how many."""
    import types

    n = 0
    for m in model.modules():
        if type(m) is torch.nn.Dropout and not m.inplace:
            m.forward = types.MethodType(_dropout_forward, m)
            n += 1
    return n


def unpatch_dropouts(model) -> None:
    for m in model.modules():
        if type(m) is torch.nn.Dropout and "forward" in vars(m):
            del m.forward


def attention(q, k, v, mask, scale: float, p: float, training: bool) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v with dropout p on the probabilities.

    q (B, H, L, d), k and v (B, H, S, d), mask additive (B, 1, 1|L, S) or None -> (B, L, H, d)."""
    S = k.shape[-2]
    if S >= SDPA_FROM or q.device.type != "cpu":
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p if training else 0.0, scale=scale)
    else:
        scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, H, L, S)
        if mask is not None:
            scores = scores + mask
        out = torch.matmul(dropout(scores.softmax(-1), p, training), v)  # (B, H, L, d)
    return out.transpose(1, 2)
