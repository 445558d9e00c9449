"""Readers for user data: CSV, TSV, JSON, JSONL and Parquet into a list of records.

Each record is a plain dict; `_line` holds the 1-based line (or row) it came from, so every
later error can name it. Bytes that are not UTF-8 are reported with their line number.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..errors import TunesmithError

# Python's csv module rejects fields over 128 KiB; a long document in one cell is legitimate data.
csv.field_size_limit(2**31 - 1)

LINE = "_line"  # the key every record carries: where it came from, for error messages
FORMATS = ("csv", "tsv", "json", "jsonl", "parquet", "txt")
Record = dict[str, Any]


def detect_format(path: Path) -> str:
    suffixes = [s.lower().lstrip(".") for s in path.suffixes]
    for s in reversed(suffixes):
        if s in ("ndjson",):
            return "jsonl"
        if s in FORMATS:
            return s
    raise TunesmithError(f"{path}: unknown file type '{path.suffix}'; use one of "
                         f".csv .tsv .json .jsonl .parquet (or .txt for raw text)")


def read_text(path: Path) -> str:
    """The file's text as UTF-8 (BOM stripped, CRLF kept for csv); errors name the line."""
    path = Path(path)
    if not path.exists():
        raise TunesmithError(f"{path}: file not found")
    if path.is_dir():
        raise TunesmithError(f"{path}: is a directory, expected a data file")
    raw = path.read_bytes()
    if not raw.strip():
        raise TunesmithError(f"{path}: file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TunesmithError(
            f"{path}, line {line}: bytes that are not UTF-8 ({raw[e.start:e.start + 4]!r}); "
            "re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
    if not text.strip():  # e.g. only a byte-order mark
        raise TunesmithError(f"{path}: file is empty")
    return text


def read_records(path: str | Path, fmt: str | None = None) -> list[Record]:
    """Read a data file into records.

    Example:
        >>> read_records("train.csv")[0]
        {'text': 'great film', 'label': 'pos', '_line': 2}
    """
    path = Path(path)
    fmt = fmt or detect_format(path)
    if fmt == "parquet":
        return _read_parquet(path)
    text = read_text(path)
    if fmt in ("csv", "tsv"):
        return _read_delimited(path, text, "\t" if fmt == "tsv" else ",")
    if fmt == "jsonl":
        return _read_jsonl(path, text)
    if fmt == "json":
        stripped = text.lstrip()
        if stripped.startswith("["):
            return _read_json_array(path, text)
        return _read_jsonl(path, text)
    raise TunesmithError(f"{path}: format '{fmt}' holds raw text, not labelled records")


def _read_delimited(path: Path, text: str, delimiter: str) -> list[Record]:
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = next(reader)
    except StopIteration:
        raise TunesmithError(f"{path}: file is empty") from None
    except csv.Error as e:
        raise TunesmithError(f"{path}, line 1: cannot parse the header: {e}") from None
    header = [h.strip() for h in header]
    if not any(header):
        raise TunesmithError(f"{path}, line 1: the header row is empty; the first row must name the columns")
    if LINE in header:
        raise TunesmithError(f"{path}, line 1: a column is named '{LINE}', which tunesmith uses for line numbers; "
                             "rename that column")
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        raise TunesmithError(f"{path}, line 1: duplicate column name(s) {dupes}")
    records = []
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise TunesmithError(
                    f"{path}, line {reader.line_num}: {len(row)} fields, but the header has "
                    f"{len(header)} ({', '.join(header)}); quote fields that contain '{delimiter}'")
            rec: Record = dict(zip(header, row))
            rec["_line"] = reader.line_num
            records.append(rec)
    except csv.Error as e:
        raise TunesmithError(f"{path}, line {reader.line_num}: {e}") from None
    if not records:
        raise TunesmithError(f"{path}: has a header but no data rows")
    return records


def _read_jsonl(path: Path, text: str) -> list[Record]:
    records = []
    # split on "\n" only: str.splitlines() also breaks at U+0085/U+2028, legal inside JSON strings
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as e:  # ValueError: also integers over 4300 digits
            raise TunesmithError(f"{path}, line {n}: not valid JSON ({e}); each line must be one JSON object") from None
        if not isinstance(obj, dict):
            raise TunesmithError(f"{path}, line {n}: expected a JSON object, got {type(obj).__name__}")
        _check_reserved(path, obj, f"line {n}")
        obj["_line"] = n
        records.append(obj)
    if not records:
        raise TunesmithError(f"{path}: no records")
    return records


def _check_reserved(path: Path, obj: dict, where: str) -> None:
    if LINE in obj:
        raise TunesmithError(f"{path}, {where}: a field is named '{LINE}', which tunesmith uses for line numbers; "
                             "rename that field")


def _read_json_array(path: Path, text: str) -> list[Record]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:  # ValueError: also integers over 4300 digits
        line = getattr(e, "lineno", "?")
        raise TunesmithError(f"{path}, line {line}: not valid JSON ({e})") from None
    records = []
    for i, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise TunesmithError(f"{path}: item {i} is {type(obj).__name__}, expected an object")
        _check_reserved(path, obj, f"item {i}")
        records.append({**obj, "_line": i})
    if not records:
        raise TunesmithError(f"{path}: the JSON array is empty")
    return records


def _read_parquet(path: Path) -> list[Record]:
    import pyarrow.parquet as pq

    if not path.exists():
        raise TunesmithError(f"{path}: file not found")
    try:
        rows = pq.read_table(path).to_pylist()  # a damaged page can first fail in to_pylist
    except Exception as e:  # pyarrow raises several types (and UnicodeDecodeError) for corrupt files
        raise TunesmithError(f"{path}: cannot read as Parquet ({type(e).__name__}: {e})") from None
    if not rows:
        raise TunesmithError(f"{path}: no rows")
    return [{**r, "_line": i} for i, r in enumerate(rows, start=1)]
