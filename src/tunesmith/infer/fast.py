"""Execution paths for a loaded model: fp32 (the reference) and optional faster ones.

One registry of plain functions, name -> build(model, device) -> Engine. An Engine is the torch
module to use plus `forward(batch) -> logits` (float32, on the CPU or the device). Every path is
measured against fp32 and the transformers pipeline by `tunesmith bench infer`; which one is the
default is decided there (the comment above default_path cites the numbers).
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import TunesmithError
from .engine import Engine, cache_dir, clone_model, weights_digest  # noqa: F401  (callers import them from here)
from ..precision import DTYPES, auto_precision, check_precision, native_bf16

# Memory note (docs/inference.md): oneDNN caches up to 1,024 matmul primitives, one per shape, and
# length-sorted batches bring many shapes, so a long bf16 `predict` plateaus at ~2.1-2.3 GB resident
# (20,000 / 100,000 lines). ONEDNN_PRIMITIVE_CACHE_CAPACITY=16 caps it at ~1.25 GB but costs ~14%
# of bf16 speed (453 vs 525 samples/s; 256 thrashes: 431-454/s, 1.44 GB), so it is left to users.


def _torch_forward(module) -> Callable[[dict], torch.Tensor]:
    return lambda batch: module(**batch).logits.float()


def _classifier(model, dtype: torch.dtype, always_mask: bool = False):
    """(model cast to dtype, forward, info): the lean [CLS] forward of `infer/encoder.py` where it
    applies and matches the plain forward on a probe batch, else the plain forward."""
    from .encoder import build

    model = model.float()
    lean, why = build(model, always_mask)
    if lean is None:
        model = model.to(dtype)
        return model, _torch_forward(model), {"lean": why}
    lean = lean.to(dtype)  # casts the wrapped model too
    return model, (lambda batch: lean(**batch)), {"lean": "yes"}


def fp32(model, device: torch.device) -> Engine:
    """The reference: the model as trained, float32 (classifiers: the lean [CLS] pass, same to 1e-6)."""
    model, forward, info = _classifier(model, torch.float32)
    return Engine("fp32", model, forward, info)


def _reduced(name: str, device: torch.device) -> tuple[torch.dtype, str]:
    """(dtype, why) of an explicitly requested bf16/fp16 path, checked against the device
    (precision.check_precision: fp16 is refused off CUDA; bf16 without native support runs, with
    a warning, since it is emulated there and slower than fp32)."""
    import warnings

    name, why = check_precision(name, device)
    if "emulated" in why:
        warnings.warn(f"--fast {name} on {device}: {why}; --fast auto picks fp32 here", stacklevel=3)
    return DTYPES[name], why


def bf16(model, device: torch.device) -> Engine:
    """bfloat16 weights and activations (native on AVX512-BF16/AMX CPUs, Ampere+ GPUs); logits
    back in fp32."""
    dtype, why = _reduced("bf16", device)
    model, forward, info = _classifier(model, dtype)
    return Engine("bf16", model, forward, {**info, "precision": why})


def fp16(model, device: torch.device) -> Engine:
    """float16 weights and activations, CUDA only: the fast path of GPUs without native bf16
    (Volta, Turing); logits back in fp32."""
    dtype, why = _reduced("fp16", device)
    model, forward, info = _classifier(model, dtype)
    return Engine("fp16", model, forward, {**info, "precision": why})


def int8(model, device: torch.device) -> Engine:
    """Dynamic int8 quantization of the backbone's Linear layers (weights int8, activations
    quantized per batch); the task head stays float because it is tiny and decides the label."""
    if device.type != "cpu":
        raise TunesmithError("int8 dynamic quantization runs on the CPU only; on a GPU use "
                             "--fast auto (bf16 or fp16)")
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    # per output channel: one scale per row keeps small-norm rows from rounding to zero
    prefix = getattr(model, "base_model_prefix", "") or ""
    spec = {name: per_channel_dynamic_qconfig for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and name.startswith(prefix)}
    model = quantize_dynamic(model.float(), spec, dtype=torch.qint8, inplace=False)
    return Engine("int8", model, _torch_forward(model), {"quantized_linears": len(spec)})


def _int8_rows(model, device: torch.device, always_mask: bool = False):
    """(model in bf16, forward, info): the lean pass with per-row int8 matmuls (infer/int8_lean.py)."""
    from .encoder import build
    from .int8_lean import LeanInt8Classifier, supported

    if device.type != "cpu":
        raise TunesmithError("int8-row runs on the CPU only; on a GPU use --fast auto (bf16 or fp16)")
    if not supported():
        raise TunesmithError("this torch build has no oneDNN int8 linear; use --fast bf16 or int8")
    model = model.float()
    lean, why = build(model)  # the lean layout must match the plain forward before it is quantized
    if lean is None:
        raise TunesmithError(f"int8-row covers BERT-style sequence classifiers only; this model: {why}")
    lean = LeanInt8Classifier(model, always_mask).to(torch.bfloat16)
    return model, (lambda batch: lean(**batch)), {"lean": "yes", "int8_matmuls": len(lean.packed)}


def int8_rows(model, device: torch.device) -> Engine:
    """int8 matmuls with one activation scale per token (oneDNN VNNI kernels), bf16 elsewhere."""
    model, forward, info = _int8_rows(model, device)
    return Engine("int8-row", model, forward, info)


def _compiled(name: str, prepared) -> Engine:
    """torch.compile (inductor, dynamic shapes: new batch sizes and lengths do not recompile) of
    the classifier forward `prepared = (model, eager forward, info)` (built with always_mask=True:
    no data-dependent branch). Compiling takes 4-5 s on 2 cores when inductor's on-disk cache
    (/tmp/torchinductor_$USER) holds the kernels, 33-37 s the first time; where it fails (no C++
    compiler, an unsupported op) the eager forward takes over with a warning."""
    import warnings

    model, eager, info = prepared
    # tried and not kept: freezing=True (590 -> 609/s, within noise, compile 11 -> 25 s) and
    # max-autotune with the CPP GEMM template (582/s, compile 30 s)
    compiled = torch.compile(eager, dynamic=True)
    state = {"fn": compiled}

    def forward(batch: dict) -> torch.Tensor:
        if batch["input_ids"].shape[0] == 1:  # a lone text would make dynamo specialise and
            return eager(batch)               # compile a second graph (~12 s) for batch size 1
        try:
            # float attributes (attention scaling, LayerNorm eps) would otherwise be traced as
            # symbolic and make dynamo restart its analysis: 11.7 -> 4.3 s of setup with a warm cache
            with _static_floats():
                return state["fn"](batch)
        except Exception as e:
            if state["fn"] is eager:
                raise
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                          f"running uncompiled", stacklevel=2)
            state["fn"] = eager
            return eager(batch)

    return Engine(name, model, forward, info)


def _static_floats():
    """dynamo's specialize_float=True where this torch has the switch (a no-op elsewhere)."""
    import contextlib

    config = torch._dynamo.config
    return config.patch(specialize_float=True) if hasattr(config, "specialize_float") \
        else contextlib.nullcontext()


def compiled(model, device: torch.device) -> Engine:
    """torch.compile of the float32 forward."""
    return _compiled("compile", _classifier(model, torch.float32, always_mask=True))


def bf16_compiled(model, device: torch.device) -> Engine:
    """torch.compile of the bf16 forward: fuses GELU, softmax and add+LayerNorm around the matmuls."""
    dtype, _ = _reduced("bf16", device)
    return _compiled("bf16-compile", _classifier(model, dtype, always_mask=True))


def fp16_compiled(model, device: torch.device) -> Engine:
    """torch.compile of the fp16 forward (CUDA only)."""
    dtype, _ = _reduced("fp16", device)
    return _compiled("fp16-compile", _classifier(model, dtype, always_mask=True))


def int8_rows_compiled(model, device: torch.device) -> Engine:
    """torch.compile of the int8-row forward: the per-token quantize and the rescale + bias fuse
    with LayerNorm / GELU around the int8 GEMMs (eager, they eat the GEMMs' gain)."""
    return _compiled("int8-row-compile", _int8_rows(model, device, always_mask=True))


def onnx(model, device: torch.device, quantize: bool = False) -> Engine:
    """Export to ONNX once (cached by weights hash) and run with ONNX Runtime."""
    from .onnx_path import onnx_engine

    return onnx_engine(model, device, quantize)


def onnx_int8(model, device: torch.device) -> Engine:
    """ONNX Runtime with its own dynamic int8 quantization of MatMul weights."""
    return onnx(model, device, quantize=True)


PATHS: dict[str, Callable[[torch.nn.Module, torch.device], Engine]] = {
    "fp32": fp32, "bf16": bf16, "fp16": fp16, "int8": int8, "compile": compiled,
    "bf16-compile": bf16_compiled, "fp16-compile": fp16_compiled, "onnx": onnx, "onnx-int8": onnx_int8,
    "int8-row": int8_rows, "int8-row-compile": int8_rows_compiled,
}

# The default, chosen by `tunesmith bench infer` (docs/inference.md): the fastest path whose
# accuracy stays within 0.5 points of fp32 and that changes at most 1% of labels. On the 2-core
# AVX512-BF16/VNNI EPYC (1,057 movie-review sentences, 2026-11-25 17:03):
# - bf16 4.62x the pipeline, 0.09% of labels changed: the default for short inputs;
# - per-tensor int8 (torch, ONNX Runtime) changed 2.5-4% of labels: opt-in;
# - compiling costs 4-5 s with inductor's on-disk cache warm, 33-37 s cold. bf16-compile gains ~10%
#   (break-even ~26,000 texts warm, ~200,000 cold): from 100,000 texts (streamed files);
# - int8-row-compile (per-token int8) 7.26x the pipeline, 24.1x the textbook loop, but it moves
#   labels by a model-dependent amount (0.85% there): only for runs whose held-out check cleared it
#   (infer/verify.py), from 30,000 texts (break-even with bf16 ~7,000 warm, ~50,000 cold). Eager
#   int8-row is no faster than bf16 (its quantize passes cost what the int8 GEMMs save).
# The precision itself comes from precision.auto_precision (one rule for predict, serve and
# training): bf16 where the CPU/GPU has it natively, fp16 on CUDA GPUs without it, else fp32. On a
# 2-core Xeon with AVX-512 but no AVX512-BF16 (oneDNN still claimed bf16), bf16 matmuls ran at 60
# GFLOP/s vs 285 in fp32: emulated bf16 is never the default.
COMPILE_FROM = 100_000
INT8_COMPILE_FROM = 30_000
COMPILED = {"bf16": "bf16-compile", "fp16": "fp16-compile", "fp32": "compile",
            "int8-row": "int8-row-compile"}


def bf16_supported(device: torch.device) -> bool:
    """Native (not emulated) bf16 on this device: what --fast auto requires to pick bf16."""
    return native_bf16(device)


def default_path(device: torch.device, n_texts: int | None = None, verified=frozenset()) -> str:
    """What --fast auto runs: the device's auto precision (bf16 native, fp16 on older GPUs, else
    fp32); compiled for long inputs, int8-row-compile when the model's held-out check cleared it
    (`verified`, infer/verify.py)."""
    from .int8_lean import supported as int8_supported, vnni

    best = auto_precision(device)[0]  # the engine of each precision has the same name
    if n_texts is None:
        return best
    if n_texts >= INT8_COMPILE_FROM and device.type == "cpu" and "int8-row-compile" in verified \
            and int8_supported() and vnni():
        return "int8-row-compile"
    return COMPILED.get(best, best) if n_texts >= COMPILE_FROM else best


def build_engine(name: str, model, device: torch.device, n_texts: int | None = None,
                 verified=frozenset()) -> Engine:
    """The engine `name` around `model` ('auto' picks the default for the device, the number of
    texts to come when known, and the inexact paths the model was `verified` for).

    Example:
        >>> engine = build_engine("fp32", model, torch.device("cpu"))
        >>> engine.forward({"input_ids": ids, "attention_mask": mask}).shape
        torch.Size([2, 2])
    """
    if name == "auto":
        name = default_path(device, n_texts, verified)
    if name not in PATHS:
        raise TunesmithError(f"unknown fast path '{name}'; choose one of auto, {', '.join(PATHS)}")
    return PATHS[name](model, device)
