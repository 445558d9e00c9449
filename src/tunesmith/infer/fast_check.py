"""Run a fine-tuned classifier's inexact fast paths on its held-out texts and judge them by
verify.py's rule (finetune calls this after its evaluation). Apart from verify.py, which the
Predictor reads, so that the record does not import the Predictor back."""
from __future__ import annotations

from ..errors import TunesmithError
from . import verify  # its limits read at call time (tests set them)
from .engine import clone_model
from .predictor import Predictor
from .verify import CHECKED


def skip_reason(path: str, n_texts: int) -> str | None:
    """Why `path` is not checked on `n_texts` held-out texts here; None: it is (finetune's time
    budget reserves the check's time only then)."""
    from .int8_lean import vnni

    if path.startswith("int8-row") and not vnni():
        # Without VNNI/AMX oneDNN's int8 GEMM is a slow fallback (an AVX2-only EPYC spent over
        # ten minutes here on 1,057 reviews) and `--fast auto` never picks the path anyway.
        return "this CPU has no VNNI/AMX int8 instructions (auto never picks int8-row here)"
    if n_texts < verify.MIN_TEXTS:  # could not clear it: not worth the compile
        return f"only {n_texts} held-out texts (needs {verify.MIN_TEXTS})"
    return None


def check_paths(model, tokenizer, texts: list[str], gold: list[int], ref: list[int], max_length: int,
                paths: tuple[str, ...] = CHECKED) -> dict:
    """{path: judge(...)} for each inexact path, run on `texts` (fp32 gave `ref`)."""
    out = {}
    for path in paths:
        why = skip_reason(path, len(texts))
        if why is not None:
            out[path] = {"texts": len(texts), "default_ok": False, "why": why}
            continue
        try:
            p = Predictor(clone_model(model), tokenizer, "classification", max_length, fast=path)
        except TunesmithError as e:  # not this model's layout, or not this machine
            out[path] = {"default_ok": False, "why": str(e)}
            continue
        out[path] = verify.judge(p.logits(texts).argmax(-1).tolist(), ref, gold)
    return out
