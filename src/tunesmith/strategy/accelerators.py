"""Training step time on an accelerator that is not here: an estimate from FLOPs and memory traffic.

When advise's situation names an accelerator this machine does not have, a probe here would time
the wrong hardware. Instead the step time is bounded from the model's arithmetic and the
accelerator's data-sheet peaks (a roofline: the step takes at least the longer of the two):

  compute: training FLOPs per token = 6·N (full: forward 2·N, backward 4·N) + 12·L·s·h (attention
           scores and weighted values, forward 4·L·s·h, backward twice that), N = the weights that
           multiply (everything but the embedding tables). A frozen backbone skips the weight
           gradients: 4·N; head-only runs no backward through the encoder: 2·N + 4·L·s·h.
           time = FLOPs / (peak x UTILISATION)
  memory:  weights read in the forward and the backward pass, gradient + AdamW traffic (write the
           gradient 4 B, read parameter, gradient and both moments 16 B, write parameter and moments
           12 B) per trainable weight, activations written forward and read backward.
           time = bytes / (bandwidth x BANDWIDTH_UTILISATION)

It is an estimate, never a measurement: the utilisations are assumptions (no measurement here), and
kernels, padding, data loading and evaluation move the real figure. The output says so.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import TunesmithError
from .memory import activation_bytes

UTILISATION = 0.4  # assumed share of the peak FLOP/s a BERT-size training step reaches (no measurement)
BANDWIDTH_UTILISATION = 0.7  # assumed share of the data-sheet bandwidth (no measurement)


@dataclass(frozen=True)
class Accelerator:
    """Data-sheet peaks (dense, no sparsity) of one accelerator."""

    name: str
    fp32_tflops: float  # CUDA cores, no TF32 (PyTorch's default for matmuls is full fp32)
    half_tflops: float  # tensor cores, fp16/bf16 inputs, dense
    half: str  # the 16-bit type mixed precision takes there: bf16, or fp16 before Ampere
    memory_gb: float
    bandwidth_gbs: float
    source: str


ACCELERATORS: dict[str, Accelerator] = {a.name.lower(): a for a in (
    Accelerator("T4", 8.1, 65, "fp16", 16, 320, "NVIDIA T4 Tensor Core GPU data sheet (FP32 8.1, mixed FP16/FP32 "
                "65 TFLOPS, 16 GB GDDR6, 320 GB/s)"),
    Accelerator("V100", 15.7, 125, "fp16", 16, 900, "NVIDIA V100 data sheet, SXM2 16 GB (FP32 15.7, tensor 125 "
                "TFLOPS, 900 GB/s)"),
    Accelerator("A10", 31.2, 125, "bf16", 24, 600, "NVIDIA A10 data sheet (FP32 31.2, BF16/FP16 tensor 125 "
                "TFLOPS dense, 24 GB, 600 GB/s)"),
    Accelerator("L4", 30.3, 121, "bf16", 24, 300, "NVIDIA L4 data sheet (FP32 30.3, FP16/BF16 tensor 242 "
                "TFLOPS with sparsity = 121 dense, 24 GB GDDR6, 300 GB/s)"),
    Accelerator("A100", 19.5, 312, "bf16", 40, 1555, "NVIDIA A100 data sheet, 40 GB SXM (FP32 19.5, BF16 tensor "
                "312 TFLOPS dense, 1,555 GB/s)"),
    Accelerator("A100-80GB", 19.5, 312, "bf16", 80, 2039, "NVIDIA A100 data sheet, 80 GB SXM (FP32 19.5, BF16 "
                "tensor 312 TFLOPS dense, 2,039 GB/s)"),
    Accelerator("H100", 67, 989, "bf16", 80, 3350, "NVIDIA H100 data sheet, SXM (FP32 67, BF16 tensor 1,979 "
                "TFLOPS with sparsity = 989 dense, 80 GB HBM3, 3.35 TB/s)"),
    Accelerator("H200", 67, 989, "bf16", 141, 4800, "NVIDIA H200 data sheet, SXM (FP32 67, BF16 tensor 989 "
                "TFLOPS dense, 141 GB HBM3e, 4.8 TB/s)"),
)}


def get(name: str) -> Accelerator:
    acc = ACCELERATORS.get(name.lower())
    if acc is None:
        raise TunesmithError(f"unknown accelerator '{name}'; known: {', '.join(a.name for a in ACCELERATORS.values())}")
    return acc


def present(acc: Accelerator) -> bool:
    """Whether this machine's first GPU is that accelerator (its name appears in the device name)."""
    import torch

    if not torch.cuda.is_available():
        return False
    return matches(acc, torch.cuda.get_device_name(0))


def matches(acc: Accelerator, device_name: str) -> bool:
    """'NVIDIA A100-SXM4-80GB' is the A100-80GB, not the A10; 'NVIDIA L40S' is no L4.

    Example:
        >>> matches(get("A10"), "NVIDIA A100-SXM4-40GB"), matches(get("A100"), "NVIDIA A100-SXM4-40GB")
        (False, True)
    """
    import re

    device = device_name.upper()
    base, _, size = acc.name.upper().partition("-")
    if not re.search(rf"(?<![A-Z0-9]){re.escape(base)}(?![A-Z0-9])", device):
        return False
    if base == "A100":
        return ("80GB" in device) == (size == "80GB")
    return True


@dataclass
class StepEstimate:
    """One training step's estimated time on an accelerator, with the arithmetic behind it."""

    accelerator: Accelerator
    flops: float
    compute_s: float
    bytes: float
    memory_s: float
    peak_tflops: float
    lines: list[str]

    @property
    def step_seconds(self) -> float:
        return max(self.compute_s, self.memory_s)

    def epoch_seconds(self, n_samples: int, batch: int) -> float:
        return -(-n_samples // batch) * self.step_seconds


def matmul_params(config, count) -> int:
    """The weights that multiply per token: all of the model's but the embedding tables."""
    from .configs import meta_model
    from .formulas import unique_params

    backbone = meta_model(config, "backbone")
    emb = getattr(backbone, "embeddings", None)
    n_emb = unique_params(emb) if emb is not None else backbone.get_input_embeddings().weight.numel()
    return count.total - n_emb


def flops_per_token(config, count, seq: int) -> tuple[float, str]:
    """Training FLOPs per token and the formula used (see the module docstring)."""
    n, L, h = matmul_params(config, count), config.num_hidden_layers, config.hidden_size
    L += 1 if count.pooling else 0  # the appended mean-pooling layer (adapt/pooling.py)
    attention = 4 * L * seq * h  # forward: QK^T and attention x V, 2 FLOPs per multiply-add
    if count.method == "head":
        return 2 * n + attention, f"2·N + 4·L·s·h (forward only), N={n:,}, L={L}, s={seq}, h={h}"
    weights = 6 if count.trainable >= count.base else 4  # frozen weights: no weight-gradient matmuls
    return (weights * n + 3 * attention,
            f"{weights}·N + 12·L·s·h (forward + backward{'' if weights == 6 else ', no weight gradients for frozen weights'}), "
            f"N={n:,}, L={L}, s={seq}, h={h}")


def step_bytes(config, count, batch: int, seq: int, precision: str) -> float:
    """Memory traffic of one step (see the module docstring)."""
    passes = 1 if count.method == "head" else 2
    acts = 0 if count.method == "head" else 2 * activation_bytes(config, batch, seq, precision)
    return passes * 4 * count.total + 32 * count.trainable + acts


def estimate_step(config, count, batch: int, seq: int, precision: str, acc: Accelerator) -> StepEstimate:
    """Estimated seconds per training step of `count`'s method on `acc` (roofline; see module docstring).

    Example:
        >>> from transformers import BertConfig
        >>> from tunesmith.strategy.formulas import count_method
        >>> c = BertConfig(); e = estimate_step(c, count_method(c, "full"), 32, 128, "mixed", get("A100"))
        >>> round(e.step_seconds, 4)   # compute-bound: 2.16 TFLOP at 40% of 312 TFLOP/s
        0.0173
    """
    per_token, formula = flops_per_token(config, count, seq)
    flops = per_token * batch * seq
    mixed = precision != "fp32"
    peak = acc.half_tflops if mixed else acc.fp32_tflops
    compute_s = flops / (peak * 1e12 * UTILISATION)
    nbytes = step_bytes(config, count, batch, seq, precision)
    memory_s = nbytes / (acc.bandwidth_gbs * 1e9 * BANDWIDTH_UTILISATION)
    kind = f"{acc.half} tensor" if mixed else "fp32"
    lines = [f"compute: {formula} = {per_token / 1e6:,.1f} MFLOP/token x {batch} x {seq} tokens = "
             f"{flops / 1e12:.2f} TFLOP per step, at {UTILISATION:.0%} of {acc.name}'s {peak:g} TFLOP/s "
             f"({kind}) = {compute_s:.3f} s",
             f"memory: {nbytes / 1e9:.2f} GB moved per step at {BANDWIDTH_UTILISATION:.0%} of "
             f"{acc.bandwidth_gbs:g} GB/s = {memory_s:.3f} s",
             f"source of the peaks: {acc.source}"]
    return StepEstimate(acc, flops, compute_s, nbytes, memory_s, peak, lines)
