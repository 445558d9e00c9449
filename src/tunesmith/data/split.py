"""Stratified train/validation/test splits with a seed."""
from __future__ import annotations

from sklearn.model_selection import train_test_split

from ..errors import TunesmithError


def stratified_split(rows: list[dict], val_size: float, test_size: float, seed: int,
                     key: str = "label") -> dict[str, list[dict]]:
    """Split rows into train/validation/test keeping the label proportions.

    Example:
        >>> parts = stratified_split(rows, 0.1, 0.1, seed=42)
        >>> sorted(parts)
        ['test', 'train', 'validation']
    """
    if not 0 <= val_size < 1 or not 0 <= test_size < 1 or val_size + test_size >= 1:
        raise TunesmithError("data.val_size and data.test_size must be in [0, 1) and sum to less than 1")
    labels = [r[key] for r in rows]
    out: dict[str, list[dict]] = {}
    rest = rows
    try:
        if test_size > 0:
            rest, out["test"] = train_test_split(rows, test_size=test_size, random_state=seed, stratify=labels)
        if val_size > 0:
            rel = val_size / (1 - test_size)
            rest, out["validation"] = train_test_split(
                rest, test_size=rel, random_state=seed, stratify=[r[key] for r in rest])
    except ValueError as e:
        raise TunesmithError(f"cannot make a stratified split of {len(rows)} rows: {e}. "
                             "Give more data or smaller data.val_size / data.test_size") from None
    out["train"] = rest
    return {k: out[k] for k in ("train", "validation", "test") if k in out}
