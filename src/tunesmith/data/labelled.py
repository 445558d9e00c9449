"""Labelled text-classification data: built-in or user files -> clean splits + a label map."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TunesmithError
from .builtin import LABELLED, load_builtin
from .columns import LABEL_FALLBACK_NAMES, LABEL_NAMES, TEXT_NAMES, columns_of, headerless_error, pick_column
from .readers import describe_value, read_records
from .split import stratified_split


@dataclass
class LabelledData:
    """Splits of {"text", "label", "_line"} rows and the label names in id order."""

    splits: dict[str, list[dict]]
    labels: list[str]
    info: dict = field(default_factory=dict)

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels)}


def label_order(values: list[str]) -> list[str]:
    """Sorted label names; numerically when every label is an integer ('-1' < '0' < '2')."""
    uniq = set(values)
    try:
        return sorted(uniq, key=lambda v: int(v))
    except ValueError:
        return sorted(uniq)


EMPTY_HINT = "fix them or pass --data.drop_empty=true to drop them"


def read_labelled_file(path: str, text_column: str | None, label_column: str | None,
                       drop_empty: bool = False, need_labels: bool = True,
                       empty_hint: str = EMPTY_HINT) -> tuple[list[dict], dict]:
    """Read a user file and normalise it to {"text", "label", "_line"} rows.

    Texts must be strings; labels strings or integers (see `label_text`). `empty_hint` is the
    advice for empty texts, worded for the command that reads the file.
    """
    records = read_records(path)
    tcol, lcol = _columns(path, records, text_column, label_column, need_labels)
    rows, empty = [], []
    for rec in records:
        text = text_value(path, rec, tcol)
        if text is None or not text.strip():
            empty.append(rec["_line"])
            continue
        row = {"text": text.strip(), "_line": rec["_line"]}
        if lcol:
            row["label"] = label_text(path, rec, lcol)
        rows.append(row)
    if empty and not drop_empty:
        shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        raise TunesmithError(f"{path}: {len(empty)} empty text(s) in column '{tcol}' at line(s) {shown}; "
                             + empty_hint)
    if not rows:
        raise TunesmithError(f"{path}: no rows with text in column '{tcol}'")
    return rows, {"source": path, "text_column": tcol, "label_column": lcol, "dropped_empty": len(empty)}


def _columns(path: str, records: list[dict], text_column: str | None, label_column: str | None,
             need_labels: bool) -> tuple[str, str | None]:
    cols = columns_of(records)
    try:
        tcol = pick_column(cols, text_column, TEXT_NAMES, "text", path)
        lcol = None
        if need_labels or label_column:
            lcol = pick_column(cols, label_column, LABEL_NAMES, "label", path, exclude=tcol,
                               fallback=LABEL_FALLBACK_NAMES)
    except TunesmithError as e:  # a headerless file gets told so, not asked to name a column
        raise (headerless_error(path, records) or e) from None
    return tcol, lcol


def text_value(path: str, rec: dict, col: str) -> str | None:
    """The text of one record; None when missing. A number, list, object or true/false is an
    error rather than its Python spelling (5 -> '5', ['x'] -> "['x']" read as text silently)."""
    value = rec.get(col)
    if value is None or isinstance(value, str):
        return value
    raise TunesmithError(f"{path}, line {rec['_line']}: field '{col}' holds {describe_value(value)}, not text; "
                         "texts must be strings (in JSON: quoted)")


def label_text(path: str, rec: dict, col: str) -> str:
    """The label of one record as text.

    The rule: a label is a string or an integer. An integer (or a float with an integral value,
    as pandas writes integer columns with gaps: 2.0) is read as its decimal text, so 1, 1.0 and
    "1" are the same label "1", and integer labels sort numerically. Anything else - true/false,
    a fraction such as 0.7, NaN, a list or an object - is an error naming the file, line and field.
    """
    value = rec.get(col)
    where = f"{path}, line {rec['_line']}: field '{col}'"
    if value is None or (isinstance(value, str) and not value.strip()):
        raise TunesmithError(f"{path}, line {rec['_line']}: empty label in column '{col}'")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        raise TunesmithError(f"{where} holds {describe_value(value)}, not a class: labels are strings or "
                             "integers (bin scores into classes first, e.g. 0 / 1)")
    why = " (multi-label data is not supported)" if isinstance(value, (list, dict)) else \
        '; write it as a string ("true") or an integer' if isinstance(value, bool) else ""
    raise TunesmithError(f"{where} holds {describe_value(value)}; a label is one string or integer per row{why}")


def _subsample(rows: list[dict], n: int | None, seed: int) -> list[dict]:
    if not n or n >= len(rows):
        return rows
    rng = random.Random(seed)
    return rng.sample(rows, n)


def load_labelled(cfg) -> LabelledData:
    """Load data as described by a DataConfig (see tunesmith.finetune_config.DataConfig)."""
    info: dict = {}
    if cfg.train:
        splits = {}
        for split in ("train", "validation", "test"):
            path = getattr(cfg, split)
            if path:
                splits[split], info[split] = read_labelled_file(
                    path, cfg.text_column, cfg.label_column, cfg.drop_empty)
        if "validation" not in splits:
            parts = stratified_split(splits["train"], cfg.val_size, 0.0, cfg.seed)
            splits["train"], splits["validation"] = parts["train"], parts["validation"]
    else:
        if cfg.dataset in LABELLED:
            rows, info["dataset"] = load_builtin(cfg.dataset)
        elif Path(cfg.dataset).exists():
            rows, info["dataset"] = read_labelled_file(cfg.dataset, cfg.text_column, cfg.label_column,
                                                       cfg.drop_empty)
        else:
            raise TunesmithError(f"data set '{cfg.dataset}' is neither a built-in ({', '.join(LABELLED)}) "
                                 "nor an existing file")
        splits = stratified_split(rows, cfg.val_size, cfg.test_size, cfg.seed)
    labels = label_order([r["label"] for r in splits["train"]])
    if len(labels) < 2:
        where = info.get("train", info.get("dataset", {})).get("source", cfg.dataset)
        raise TunesmithError(f"{where}: the label column has a single class ({labels}); "
                             "classification needs at least two")
    check_known_labels(splits, labels)
    splits["train"] = _subsample(splits["train"], cfg.max_train, cfg.seed)
    for split in ("validation", "test"):
        if split in splits:
            splits[split] = _subsample(splits[split], cfg.max_eval, cfg.seed)
    info["sizes"] = {k: len(v) for k, v in splits.items()}
    info["label_counts"] = {k: dict(Counter(r["label"] for r in v)) for k, v in splits.items()}
    return LabelledData(splits, labels, info)


def check_known_labels(splits: dict[str, list[dict]], labels: list[str]) -> None:
    known = set(labels)
    for name, rows in splits.items():
        for r in rows:
            if "label" in r and r["label"] not in known:
                raise TunesmithError(f"{name} split, line {r['_line']}: label '{r['label']}' never occurs "
                                     f"in the training data (labels: {labels})")
