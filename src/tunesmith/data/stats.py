"""Token-length statistics: how long the texts are in tokens and how many a max_length cuts."""
from __future__ import annotations

import numpy as np


def token_lengths(tokenizer, texts: list[str], batch_size: int = 1000) -> np.ndarray:
    """Token counts per text, special tokens included, no truncation."""
    lengths: list[int] = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], add_special_tokens=True, truncation=False,
                        return_attention_mask=False, return_token_type_ids=False, verbose=False)
        lengths.extend(len(ids) for ids in enc["input_ids"])
    return np.asarray(lengths, dtype=np.int64)


def length_stats(lengths: np.ndarray, max_length: int) -> dict:
    """Mean, median, max, 95th percentile and share truncated at max_length."""
    if len(lengths) == 0:
        return {"count": 0}
    return {
        "count": int(len(lengths)),
        "mean": round(float(lengths.mean()), 2),
        "median": float(np.median(lengths)),
        "p95": float(np.percentile(lengths, 95)),
        "max": int(lengths.max()),
        "max_length": int(max_length),
        "truncated": int((lengths > max_length).sum()),
        "truncated_share": round(float((lengths > max_length).mean()), 4),
    }


def format_stats(name: str, s: dict, over: str = "truncated at") -> str:
    """One line per split; `over` names what happens past max_length ("truncated at" for
    classification, where the rest is cut; NER reads long sentences in windows instead)."""
    if not s.get("count"):
        return f"{name}: no texts"
    return (f"{name:<10} n={s['count']:>6}  mean={s['mean']:.1f}  p95={s['p95']:.0f}  max={s['max']}  "
            f"{over} {s['max_length']}: {s['truncated']} ({100 * s['truncated_share']:.2f}%)")
