"""Which device to run on and which floating-point precision it runs fast: one place for both.

`auto` precision means the same everywhere (predict, serve, training):
  * bf16 on CPUs with AVX512-BF16 or AMX-BF16 and on CUDA GPUs with native bf16 (compute
    capability 8.0+: Ampere, Ada, Hopper, ...; ROCm GPUs);
  * fp16 on older CUDA GPUs with fast fp16 (Volta, Turing: 7.x; Pascal P100: 6.0); training then
    needs loss scaling (Trainer's `fp16=True` does it);
  * fp32 everywhere else.

Why not `torch.ops.mkldnn._is_mkldnn_bf16_supported()` or `torch.cuda.is_bf16_supported()`: both
say yes where bf16 only *runs*, emulated. On a 2-core Xeon with AVX-512 but no AVX512-BF16,
oneDNN reported bf16 support while bf16 matmuls ran at 60 GFLOP/s against 285 in fp32 (5x slower);
`torch.cuda.is_bf16_supported()` likewise accepts pre-Ampere GPUs unless told
`including_emulation=False`.

Only torch is imported here; every function is cheap and side-effect free.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import TunesmithError

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # names in torch.cpu.get_capabilities() and /proc/cpuinfo


# ---- devices ------------------------------------------------------------------------------
def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """'auto' / None -> cuda when a GPU is visible, else cpu; 'cpu', 'cuda', 'cuda:N' checked.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if spec is None or str(spec).strip().lower() in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(str(spec).strip().lower())
    except (RuntimeError, ValueError):
        raise TunesmithError(f"device '{spec}' not understood; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TunesmithError(f"device '{spec}': no CUDA GPU is visible to this torch "
                                 f"(torch {torch.__version__}); use --device cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise TunesmithError(f"device '{spec}': only {count} CUDA device(s) visible "
                                 f"(cuda:0..cuda:{count - 1})")
    elif device.type != "cpu":
        raise TunesmithError(f"device '{spec}': tunesmith runs on cpu or cuda (not {device.type})")
    return device


def model_device(model) -> torch.device:
    """The device of a model's first parameter (or buffer); cpu for a model without any.

    Inputs built on the CPU (tokenizers, collators) must be moved here before the forward pass:
    Trainer, the Predictor and the server may have put the model on a GPU."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def to_device(batch: dict, device: torch.device) -> dict:
    """Every tensor of a batch moved to `device` (other values unchanged)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


# ---- what the hardware does natively -------------------------------------------------------
def cpu_native_bf16() -> bool:
    """The CPU has bf16 arithmetic (AVX512-BF16 or AMX-BF16), per torch's CPU feature probe;
    without `torch.cpu.get_capabilities` (older torch), per /proc/cpuinfo's flags; else False."""
    caps = _cpu_capabilities()
    if caps is not None:
        return any(bool(caps.get(flag)) for flag in CPU_BF16_FLAGS)
    return bool(set(CPU_BF16_FLAGS) & _cpuinfo_flags())


def _cpu_capabilities() -> dict | None:
    probe = getattr(getattr(torch, "cpu", None), "get_capabilities", None)
    if probe is None:
        return None
    try:
        return dict(probe())
    except (RuntimeError, AttributeError, TypeError):
        return None


def _cpuinfo_flags(path: str = "/proc/cpuinfo") -> set[str]:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    line = next((l for l in text.splitlines() if l.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def cuda_capability(device: torch.device) -> tuple[int, int]:
    """(major, minor) compute capability of a CUDA device (the current one when it has no index)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    return tuple(torch.cuda.get_device_capability(index))  # type: ignore[return-value]


def native_bf16(device: torch.device | str) -> bool:
    """bf16 runs natively, not emulated, on this device (CPU: AVX512-BF16/AMX; CUDA: 8.0+, ROCm).

    Example:
        >>> native_bf16(torch.device("cpu"))   # a Xeon with AVX-512 but no AVX512-BF16
        False
    """
    device = torch.device(device)
    if device.type == "cpu":
        return cpu_native_bf16()
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    if getattr(torch.version, "hip", None):
        return True  # every ROCm GPU torch supports has bf16
    if device.index is None or device.index == torch.cuda.current_device():
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # a torch without the keyword: the same test by hand
            pass
    return cuda_capability(device)[0] >= 8


def cuda_fast_fp16(device: torch.device) -> bool:
    """fp16 is a fast path on this GPU: tensor cores (7.0+) or the P100's double-rate fp16 (6.0);
    consumer Pascal (6.1) runs fp16 at a fraction of its fp32 rate."""
    major, minor = cuda_capability(device)
    return major >= 7 or (major, minor) == (6, 0)


def cuda_fp16_only(device: torch.device | str) -> bool:
    """A CUDA GPU without native bf16 whose fast reduced precision is fp16 (Volta, Turing, P100)."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available() or native_bf16(device):
        return False
    return cuda_fast_fp16(device)


def auto_precision(device: torch.device | str) -> tuple[str, str]:
    """(precision, why) that `auto` picks on this device: "bf16", "fp16" or "fp32".

    Example:
        >>> auto_precision(torch.device("cpu"))
        ('fp32', 'this CPU has no AVX512-BF16 or AMX (bf16 would be emulated, slower than fp32)')
    """
    device = torch.device(device)
    if device.type == "cpu":
        if cpu_native_bf16():
            return "bf16", "this CPU has native bf16 (AVX512-BF16 or AMX)"
        return "fp32", "this CPU has no AVX512-BF16 or AMX (bf16 would be emulated, slower than fp32)"
    if device.type == "cuda" and torch.cuda.is_available():
        if native_bf16(device):
            return "bf16", f"this GPU has native bf16 ({_gpu_name(device)})"
        if cuda_fp16_only(device):
            return "fp16", f"this GPU has no native bf16 but fast fp16 ({_gpu_name(device)})"
        return "fp32", f"this GPU has neither native bf16 nor fast fp16 ({_gpu_name(device)})"
    return "fp32", f"no reduced precision is known to be fast on {device}"


def _cuda_runs_bf16() -> bool:
    """The current GPU can hold and compute bf16 tensors at all (emulated counts)."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=True))
    except TypeError:
        return bool(torch.cuda.is_bf16_supported())


def _gpu_name(device: torch.device) -> str:
    major, minor = cuda_capability(device)
    try:
        index = device.index if device.index is not None else torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
    except (RuntimeError, AssertionError, AttributeError):
        name = "CUDA GPU"
    return f"{name}, compute capability {major}.{minor}"


def check_precision(name: str, device: torch.device | str) -> tuple[str, str]:
    """(precision, why) for a requested `auto | fp32 | bf16 | fp16` on this device.

    An explicit choice is honoured where the device can run it at all (bf16 on a CPU without
    native bf16 runs, emulated and slow: the reason says so); fp16 on the CPU is refused (its
    matmuls have no fast kernels there) and bf16 on a GPU that cannot hold bf16 tensors too.
    """
    device = torch.device(device)
    name = str(name).strip().lower()
    if name == "auto":
        return auto_precision(device)
    if name not in PRECISIONS:
        raise TunesmithError(f"precision '{name}' unknown; use auto, {', '.join(PRECISIONS)}")
    if name == "fp16" and device.type != "cuda":
        raise TunesmithError("fp16 runs on CUDA GPUs only; on the CPU use bf16 (fast with "
                             "AVX512-BF16/AMX), fp32 or auto")
    if name == "bf16" and not native_bf16(device):
        if device.type == "cuda" and not _cuda_runs_bf16():
            raise TunesmithError(f"{device} cannot run bf16; use fp16, fp32 or auto")
        return "bf16", f"asked for; {device.type} has no native bf16, so it is emulated (slower than fp32)"
    return name, "asked for"
