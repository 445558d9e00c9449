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
    # strict: a quote that never closes, or text after a closing quote, is an error. The lenient
    # default silently glued the following rows into one field up to the next quote character.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise TunesmithError(f"{path}: file is empty") from None
    except csv.Error as e:
        raise TunesmithError(f"{path}, line 1: cannot parse the header: {e}") from None
    header = _check_header(path, [h.strip() for h in header])
    records, start = [], reader.line_num + 1
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                records.append(_row_record(path, header, row, start, reader.line_num, delimiter))
            start = reader.line_num + 1
    except csv.Error as e:
        raise _quote_error(path, text, header, start, reader.line_num, delimiter, e) from None
    if not records:
        raise TunesmithError(f"{path}: has a header but no data rows")
    return records


def _check_header(path: Path, header: list[str]) -> list[str]:
    if not any(header):
        raise TunesmithError(f"{path}, line 1: the header row is empty; the first row must name the columns")
    if LINE in header:
        raise TunesmithError(f"{path}, line 1: a column is named '{LINE}', which tunesmith uses for line numbers; "
                             "rename that column")
    dupes = sorted({h for h in header if header.count(h) > 1 and h})
    if dupes:
        raise TunesmithError(f"{path}, line 1: duplicate column name(s) {dupes}")
    return header


def _row_record(path: Path, header: list[str], row: list[str], start: int, end: int, delimiter: str) -> Record:
    if len(row) != len(header):
        where = f"line {end}" if start == end else \
            f"lines {start}-{end} (one row: a quoted field runs over {end - start + 1} lines; is a quote on " \
            f"line {start} not closed?)"
        raise TunesmithError(f"{path}, {where}: {len(row)} fields, but the header has {len(header)} "
                             f"({', '.join(header)}); quote fields that contain '{delimiter}'")
    return {**dict(zip(header, row)), LINE: start}


def _quote_error(path: Path, text: str, header: list[str], start: int, end: int, delimiter: str,
                 err: csv.Error) -> TunesmithError:
    """Name the line and the field where a quote opened and did not close the way CSV wants."""
    field = _open_quote_field(text, start, header, delimiter)
    fix = ('close the quote, or double each quote that is part of the text ("" inside a quoted field)')
    if "unexpected end of data" in str(err):
        return TunesmithError(f"{path}, line {start}: {field} opens a quote that is never closed (it would run "
                              f"to the end of the file, line {end}); {fix}")
    if end > start:
        return TunesmithError(f"{path}, line {start}: {field} opens a quote that is not closed on this line, so "
                              f"the rows up to line {end} would be read as one text ({err} on line {end}); {fix}")
    return TunesmithError(f"{path}, line {start}: {field}: text after a closing quote ({err}); {fix}")


def _open_quote_field(text: str, n: int, header: list[str], delimiter: str) -> str:
    """'field \'text\'' for the field of physical line n whose quote breaks the CSV rules."""
    line = next((l for k, l in enumerate(io.StringIO(text, newline=""), start=1) if k == n), "")
    k = _bad_quote_index(line.rstrip("\r\n"), delimiter)
    return f"field '{header[k]}'" if k < len(header) and header[k] else f"field {k + 1}"


def _bad_quote_index(line: str, delimiter: str) -> int:
    """Index of the field that is still quoted at the end of `line`, or has text after its
    closing quote (CSV's quoting rules, scanned once: the line may be megabytes long)."""
    k, i, n = 0, 0, len(line)
    while i < n:
        if line[i] != '"':  # an unquoted field: quotes inside it are plain characters
            j = line.find(delimiter, i)
            if j < 0:
                return k
            k, i = k + 1, j + 1
            continue
        i += 1
        while True:  # inside quotes: "" is one quote character, a single " closes
            j = line.find('"', i)
            if j < 0:
                return k  # never closed on this line
            if line[j + 1:j + 2] == '"':
                i = j + 2
                continue
            i = j + 1
            break
        if i < n and line[i] != delimiter:
            return k  # text after the closing quote
        k, i = k + 1, i + 1
    return k


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


def describe_value(value) -> str:
    """What a non-text JSON/Parquet value is, for error messages: 'a number (5)'."""
    kind = ("true/false" if isinstance(value, bool) else "a number" if isinstance(value, (int, float))
            else "a list" if isinstance(value, (list, tuple)) else "an object" if isinstance(value, dict)
            else f"a {type(value).__name__}")
    try:
        shown = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        shown = repr(value)
    return f"{kind} ({shown[:60]}{'...' if len(shown) > 60 else ''})"


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
