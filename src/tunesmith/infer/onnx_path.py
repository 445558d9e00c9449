"""ONNX Runtime path: export the model once (cached by weights hash), run with ORT.

Optional: needs `pip install 'tunesmith[onnx]'` (onnx + onnxruntime). Encoder tasks only
(classification, token classification, fill-mask), whose forward is `ids, mask[, types] -> logits`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..errors import TunesmithError


def _require():
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError:
        raise TunesmithError("the onnx paths need onnx and onnxruntime: pip install 'tunesmith[onnx]' "
                             "(or pip install onnx onnxruntime)") from None
    return onnxruntime


def export(model, path: Path, input_names: list[str]) -> Path:
    """torch -> ONNX with dynamic batch and sequence axes (TorchScript exporter: no extra deps)."""
    model = model.float().eval()
    wrapped = _LogitsOnly(model, input_names)
    dummy = tuple(torch.ones((2, 8), dtype=torch.long) for _ in input_names)
    with torch.no_grad():
        per_token = wrapped(*dummy).dim() == 3  # (batch, seq, labels|vocab) vs (batch, labels)
    axes = {n: {0: "batch", 1: "seq"} for n in input_names}
    axes["logits"] = {0: "batch", 1: "seq"} if per_token else {0: "batch"}
    tmp = path.with_name(path.name + ".tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, dummy, str(tmp), input_names=input_names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    tmp.replace(path)
    return path


class _LogitsOnly(torch.nn.Module):
    """Positional inputs in a fixed order -> logits tensor (what the exporter wants)."""

    def __init__(self, model, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors):
        return self.model(**dict(zip(self.names, tensors))).logits


def quantize(src: Path, dst: Path) -> Path:
    """ORT dynamic int8 quantization of the MatMul weights, one scale per output channel."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ORT logs a pre-processing hint on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    return dst


def session(path: Path, device: torch.device, threads: int | None = None):
    ort = _require()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" \
        else ["CPUExecutionProvider"]
    providers = [p for p in providers if p in ort.get_available_providers()]
    return ort.InferenceSession(str(path), opts, providers=providers)


def onnx_engine(model, device: torch.device, quantize_int8: bool = False):
    from .engine import Engine, cache_dir, weights_digest

    _require()
    names = ["input_ids", "attention_mask"]
    if getattr(model.config, "type_vocab_size", 0):
        names.append("token_type_ids")
    key = weights_digest(model)
    base = cache_dir() / f"{key}.onnx"
    if not base.exists():
        export(model, base, names)
    path = base
    if quantize_int8:
        path = base.with_name(f"{key}.int8.onnx")
        if not path.exists():
            quantize(base, path)
    sess = session(path, device)
    feed = [i.name for i in sess.get_inputs()]

    def forward(batch: dict) -> torch.Tensor:
        inputs = {n: batch[n].cpu().numpy() if n in batch else
                  torch.zeros_like(batch["input_ids"]).cpu().numpy() for n in feed}
        return torch.from_numpy(sess.run(["logits"], inputs)[0]).float()

    return Engine("onnx-int8" if quantize_int8 else "onnx", None, forward, {"file": str(path)})
