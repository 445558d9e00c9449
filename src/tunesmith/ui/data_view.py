"""The Data page: preview a built-in or a user file, its detected columns, class balance and
token-length statistics, all through the core readers (data/), so the errors are theirs."""
from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path

from ..errors import TunesmithError

PREVIEW_ROWS = 10
STATS_SAMPLE = 5000  # texts tokenised for the statistics (seeded sample beyond this)
_tokenizers: dict[str, object] = {}
_lock = threading.Lock()


def tokenizer_for(model: str):
    """The model's tokenizer, loaded once per model name (built-in, run directory or model dir)."""
    with _lock:
        if model not in _tokenizers:
            from ..models import load_tokenizer, resolve

            _tokenizers[model] = load_tokenizer(resolve(model))
        return _tokenizers[model]


def builtins() -> dict:
    """Built-in data sets and models, and whether each is installed."""
    from ..assets import DATASETS, MODELS
    from ..data.builtin import LABELLED

    return {"datasets": [{"name": n, "description": DATASETS[n].description, "installed": DATASETS[n].path() is not None}
                         for n in LABELLED],
            "models": [{"name": n, "description": a.description, "installed": a.path() is not None}
                       for n, a in MODELS.items()]}


def read_source(source: str, text_column: str | None, label_column: str | None) -> dict:
    """Records, columns and the (detected or chosen) text/label columns of a data source."""
    from ..data.builtin import LABELLED, load_builtin

    if source in LABELLED:
        rows, meta = load_builtin(source)
        return {"kind": "builtin", "records": rows, "columns": ["text", "label"], "text_column": "text",
                "label_column": "label", "rows": rows, "meta": meta}
    return read_file(source, text_column, label_column)


def read_file(source: str, text_column: str | None, label_column: str | None) -> dict:
    from ..data.columns import LABEL_FALLBACK_NAMES, LABEL_NAMES, TEXT_NAMES, columns_of, pick_column
    from ..data.labelled import read_labelled_file
    from ..data.readers import read_records

    if not source.strip():
        raise TunesmithError("choose a built-in data set, upload a file or give a file path")
    records = read_records(source)
    cols = columns_of(records)
    out = {"kind": "file", "records": records, "columns": cols, "text_column": None, "label_column": None,
           "rows": None, "column_error": None}
    try:  # detection failing is shown next to the column choosers, not as a dead end
        out["text_column"] = pick_column(cols, text_column, TEXT_NAMES, "text", source)
        out["label_column"] = pick_column(cols, label_column, LABEL_NAMES, "label", source,
                                          exclude=out["text_column"], fallback=LABEL_FALLBACK_NAMES)
    except TunesmithError as e:
        out["column_error"] = str(e)
        return out
    out["rows"], out["meta"] = read_labelled_file(source, out["text_column"], out["label_column"])
    return out


def histogram(lengths, bins: int = 30) -> dict:
    import numpy as np

    counts, edges = np.histogram(lengths, bins=min(bins, max(1, int(lengths.max() - lengths.min()) + 1)))
    return {"counts": counts.tolist(), "edges": [round(float(e), 2) for e in edges]}


def token_statistics(rows: list[dict], model: str, max_length: int) -> dict:
    """length_stats over the texts (a seeded sample of STATS_SAMPLE when there are more) + histogram."""
    from ..data.stats import length_stats, token_lengths

    texts = [r["text"] for r in rows]
    sampled = len(texts) > STATS_SAMPLE
    if sampled:
        texts = random.Random(0).sample(texts, STATS_SAMPLE)
    lengths = token_lengths(tokenizer_for(model), texts)
    return {**length_stats(lengths, max_length), "sampled": sampled, "of": len(rows), "model": model,
            "histogram": histogram(lengths)}


def preview_value(v):
    return v if isinstance(v, (str, int, float, bool)) or v is None else str(v)


def inspect(source: str, text_column: str | None = None, label_column: str | None = None,
            model: str = "minilm", max_length: int = 128) -> dict:
    """Everything the Data page shows for one source (raises TunesmithError with the reader's message)."""
    from ..data.labelled import label_order

    src = read_source(source.strip(), text_column or None, label_column or None)
    records = src["records"]
    out = {"source": source.strip(), "kind": src["kind"], "n_records": len(records), "columns": src["columns"],
           "text_column": src["text_column"], "label_column": src["label_column"],
           "column_error": src.get("column_error"),
           "preview": [{k: preview_value(v) for k, v in r.items() if k != "_line"} for r in records[:PREVIEW_ROWS]],
           "meta": {k: v for k, v in (src.get("meta") or {}).items() if k != "source"}}
    rows = src["rows"]
    if rows:
        counts = Counter(r["label"] for r in rows)
        out["n_rows"] = len(rows)
        out["classes"] = [{"label": l, "count": counts[l], "share": round(counts[l] / len(rows), 4)}
                          for l in label_order(list(counts))]
        out["token_stats"] = token_statistics(rows, model, max_length)
    return out


def save_upload(uploads: Path, filename: str, body: bytes) -> Path:
    """Store an uploaded file under the uploads folder (plain name only; a number keeps names apart)."""
    from ..data.readers import detect_format

    name = Path(filename or "").name
    if not name or name.startswith("."):
        raise TunesmithError("upload needs a file name (e.g. reviews.csv)")
    detect_format(Path(name))  # unknown suffix: the reader's message, before writing anything
    if not body:
        raise TunesmithError(f"{name}: file is empty")
    uploads.mkdir(parents=True, exist_ok=True)
    path, n = uploads / name, 1
    while path.exists():
        path, n = uploads / f"{Path(name).stem}-{n}{Path(name).suffix}", n + 1
    path.write_bytes(body)
    return path
