"""Which inexact fast paths a fine-tuned run may get by default, checked on its held-out texts.

int8 moves labels by an amount that depends on the model (how many of its texts sit near a decision
boundary): compiled per-token int8 changed 0.85% of the demo run's movie-review test labels, but
nothing guarantees that another model stays under the 1% rule. So `--fast auto` uses
`int8-row-compile` only for a run whose `inference.json` records that, on at least MIN_TEXTS
held-out texts, that very path (compiled: its fused kernels round a little differently from the
eager int8-row, 0.66% there) changed at most
MAX_CHANGED_PCT % of the fp32 labels and lost at most MAX_ACCURACY_DROP accuracy points. `finetune`
writes the record after its evaluation; `tunesmith bench infer --record` writes it for older runs.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from .. import runs

RECORD = "inference.json"
CHECKED = ("int8-row-compile",)
MIN_TEXTS = 500
MAX_CHANGED_PCT = 1.0
MAX_ACCURACY_DROP = 0.5


def judge(pred: list[int], ref: list[int], gold: list[int]) -> dict:
    """The rule applied to one path's labels `pred` against fp32's `ref` and the true `gold`."""
    n = len(ref)
    changed = 100 * sum(a != b for a, b in zip(pred, ref)) / max(n, 1)
    acc = 100 * sum(a == b for a, b in zip(pred, gold)) / max(n, 1)
    acc0 = 100 * sum(a == b for a, b in zip(ref, gold)) / max(n, 1)
    why = (f"only {n} held-out texts (needs {MIN_TEXTS})" if n < MIN_TEXTS else
           f"{changed:.2f}% of labels changed (max {MAX_CHANGED_PCT}%)" if changed > MAX_CHANGED_PCT else
           f"accuracy {acc0 - acc:.2f} points lower (max {MAX_ACCURACY_DROP})" if acc0 - acc > MAX_ACCURACY_DROP
           else "")
    return {"texts": n, "labels_changed_pct": round(changed, 3), "accuracy": round(acc, 2),
            "fp32_accuracy": round(acc0, 2), "default_ok": not why, "why": why or "within the rule"}


def write_record(run: Path, checks: dict, data: str) -> None:
    runs.write_json(Path(run) / RECORD, {
        "checked_on": data, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rule": f">= {MIN_TEXTS} texts, <= {MAX_CHANGED_PCT}% labels changed vs fp32, "
                f"<= {MAX_ACCURACY_DROP} accuracy points lost",
        "paths": checks})


def verified_paths(run: Path) -> frozenset[str]:
    """The inexact paths `run`'s record clears for `--fast auto` (none without a record)."""
    path = Path(run) / RECORD
    if not path.is_file():
        return frozenset()
    try:
        record = runs.read_json(path)
        return frozenset(p for p, r in record.get("paths", {}).items() if r.get("default_ok") is True)
    except (ValueError, AttributeError, OSError):  # a damaged record clears nothing
        return frozenset()
