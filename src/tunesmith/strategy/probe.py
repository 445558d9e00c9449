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


def probe(config, method: str, batch: int, seq: int, steps: int = 3, weights: str | None = None) -> ProbeResult:
    """Time `steps` training steps after one warm-up step (random token ids, fixed seed).

    Example:
        >>> r = probe(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        ...                      intermediate_size=37), "lora", batch=4, seq=16)   # doctest: +SKIP
    """
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
