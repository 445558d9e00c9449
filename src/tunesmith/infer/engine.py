"""What every execution path returns, and the helpers the paths share (fast.py's torch paths and
onnx_path.py's ONNX Runtime path both use them; here, so neither imports the other back)."""
from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch


@dataclass
class Engine:
    """How to run one batch: `forward(batch) -> logits (float32)` plus the module behind it."""

    name: str
    module: torch.nn.Module | None  # None for engines outside torch (ONNX Runtime)
    forward: Callable[[dict], torch.Tensor]
    info: dict = field(default_factory=dict)


def weights_digest(model) -> str:
    """A short hash of the weights, for caching exported artifacts."""
    h = hashlib.sha1()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
        h.update(str(tuple(t.shape)).encode())
    return h.hexdigest()[:16]


def clone_model(model):
    """A deep copy, so one loaded model can be turned into several engines (the benchmark)."""
    return copy.deepcopy(model)


def cache_dir() -> Path:
    root = os.environ.get("TUNESMITH_CACHE") or str(Path.home() / ".cache" / "tunesmith")
    path = Path(root) / "onnx"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        path = Path(tempfile.mkdtemp(prefix="tunesmith-onnx-"))
    return path
