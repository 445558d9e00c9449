"""A short measured probe: a few real training steps (forward, backward, AdamW) of a method at
the chosen batch and sequence length on this machine, to time an epoch."""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import torch

from .memwatch import PeakMemory


@dataclass
class ProbeResult:
    seconds_per_step: float
    samples_per_second: float
    peak_bytes: int
    device: str
    steps: int

    def epoch_seconds(self, n_samples: int, batch: int) -> float:
        return -(-n_samples // batch) * self.seconds_per_step


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"


def machine_memory_bytes() -> int:
    """Accelerator memory, else this machine's RAM."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def build_model(config, method: str, num_labels: int = 2, weights: str | None = None):
    """A classifier (random weights from config, or real ones) with the method applied."""
    from transformers import AutoModelForSequenceClassification

    from ..adapt import apply_method
    from ..config import MethodConfig

    torch.manual_seed(0)
    if weights:
        model = AutoModelForSequenceClassification.from_pretrained(weights, num_labels=num_labels)
    else:
        model = AutoModelForSequenceClassification.from_config(
            config.__class__(**{**config.to_dict(), "num_labels": num_labels}))
    return apply_method(model, MethodConfig(name=method), "classification")


def probe(config, method: str, batch: int, seq: int, steps: int = 3, weights: str | None = None,
          isolate: bool | None = None) -> ProbeResult:
    """Time `steps` training steps after one warm-up step (random token ids, fixed seed).

    On the CPU each probe runs in a fresh process (`isolate`, default: when there is no GPU): the
    figure is then the peak resident memory that building the model and training it added to
    that process. Measured in one process, the allocator keeps what an earlier probe freed, and
    the second method's figure depended on which ran first (full fine-tuning of bert-base read
    6.7 GB first, 340 MB after LoRA). On CUDA the allocator's own peak counter is reset per probe.

    Example:
        >>> r = probe(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        ...                      intermediate_size=37), "lora", batch=4, seq=16)   # doctest: +SKIP
    """
    if isolate is None:
        isolate = not torch.cuda.is_available()
    if not isolate:
        return _probe_here(config, method, batch, seq, steps, weights)
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_probe_child, args=(send, config, method, batch, seq, steps, weights), daemon=True)
    child.start()
    send.close()
    try:
        result = receive.recv()  # EOFError when the child died (e.g. a __main__ spawn cannot re-import)
    except EOFError:
        result = None
    child.join()
    if isinstance(result, ProbeResult):
        return result
    import warnings

    warnings.warn(f"the probe's fresh process failed ({result or f'exit code {child.exitcode}'}); probing in "
                  "this process, where an earlier probe's memory can change the figure")
    return _probe_here(config, method, batch, seq, steps, weights)


def _probe_child(send, *args) -> None:
    import dataclasses

    from .memwatch import rss_bytes

    try:
        import peft  # noqa: F401  (the libraries' own memory is not the method's)
        import transformers  # noqa: F401

        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING as CLASSES

        try:  # import the model's own module too (its first import compiles bytecode: a memory spike)
            CLASSES[type(args[0])]
        except (KeyError, TypeError):
            pass
        hwm = _reset_high_water_mark()  # imports (a fresh venv compiles bytecode) may have peaked higher
        start = rss_bytes()
        r = _probe_here(*args)
        if hwm:  # the kernel's exact high-water mark since the reset (the sampler can miss a peak)
            r = dataclasses.replace(r, peak_bytes=max(r.peak_bytes, _high_water_mark() - start))
        send.send(r)
    except Exception as e:  # noqa: BLE001 - reported to the parent, which probes in-process instead
        send.send(f"{type(e).__name__}: {e}")
    finally:
        send.close()


def _probe_here(config, method: str, batch: int, seq: int, steps: int, weights: str | None) -> ProbeResult:
    import peft  # noqa: F401  (imported before measuring: the libraries' own memory is not the method's)
    import transformers  # noqa: F401

    from ..adapt import apply_method  # noqa: F401

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with PeakMemory() as mem:
        model = build_model(config, method, weights=weights).to(device).train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(1000 if config.vocab_size > 1000 else 1, config.vocab_size, (batch, seq),
                            generator=gen).to(device)  # (batch, seq)
        labels = torch.randint(0, 2, (batch,), generator=gen).to(device)
        times = []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device == "cuda":
                torch.cuda.synchronize()
            if i:  # step 0 warms up allocators and kernels
                times.append(time.perf_counter() - t0)
    sps = sorted(times)[len(times) // 2]
    return ProbeResult(sps, batch / sps, mem.peak, device_name(), steps)


def _reset_high_water_mark() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _high_water_mark() > 0
    except OSError:
        return False


def _high_water_mark() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0
