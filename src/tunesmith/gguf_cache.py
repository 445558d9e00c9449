"""The built-in decoder ships as GGUF: dequantise it once to fp32 safetensors in a cache dir.

Dequantising takes ~30 s on 2 cores; later loads read the cached safetensors directly.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .assets import Asset
from .split_asset import cache_root


def dequantised_dir(asset: Asset) -> Path:
    """Directory with config, tokenizer and fp32 safetensors of a GGUF built-in (made on first use)."""
    gguf = asset.require()
    target = cache_root() / f"{asset.name}-{gguf.stat().st_size}"
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"[tunesmith] dequantising {gguf.name} to fp32 safetensors once (about 30 s); "
          f"cache: {target}", flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{asset.name}-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # transformers marks a GGUF-loaded model as quantised and refuses to save it, although its
        # weights are already dequantised fp32 tensors: drop the marker so save_pretrained works.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)  # atomic: a half-written cache is never picked up
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
