"""Streaming prediction over large files: bounded memory, one output record per input line,
bad lines reported as error records, and resume of a partial output file.

    input line n  ──▶  {"line": n, "text": ..., <result>}         (good line)
                  ──▶  {"line": n, "error": "empty text"}          (bad line: never dropped)

Output record k always belongs to input item k, so a partial output file of k complete lines
says exactly where to continue (`resume`).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..errors import TunesmithError

STREAMED = (".txt", ".jsonl", ".ndjson")


@dataclass
class Item:
    """One input line: its 1-based line number and the text, or why it cannot be predicted."""

    line: int
    text: str | None = None
    error: str | None = None
    index: int = 0  # position among the input items (0-based), set by read_items


def _raw_lines(f, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the newline) — None when the line exceeds max_bytes.

    Reads at most max_bytes + 1 bytes at a time, so a multi-GB line never sits in memory.
    """
    n = 0
    while True:
        chunk = f.readline(max_bytes + 1)
        if not chunk:
            return
        n += 1
        if len(chunk) > max_bytes and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):  # skip the rest of the long line
                chunk = f.readline(1 << 20)
            yield n, None
            continue
        yield n, chunk.rstrip(b"\r\n")


def _text_item(n: int, raw: bytes | None, max_bytes: int) -> Item:
    if raw is None:
        return Item(n, error=f"line longer than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Item(n, error=f"not valid UTF-8 (byte {e.start})")
    if n == 1:
        text = text.lstrip("\ufeff")
    if not text.strip():
        return Item(n, error="empty text")
    return Item(n, text)


def _json_item(n: int, raw: bytes | None, max_bytes: int, column: str | None) -> Item:
    item = _text_item(n, raw, max_bytes)
    if item.error:
        return item
    try:
        rec = json.loads(item.text)
    except json.JSONDecodeError as e:
        return Item(n, error=f"not valid JSON ({e.msg})")
    except RecursionError:  # e.g. 5,000 '[' in a row: the decoder's recursion limit
        return Item(n, error="not valid JSON (nested too deeply to read)")
    except ValueError as e:  # an integer of more than 4,300 digits (Python's int limit)
        return Item(n, error=f"not valid JSON ({str(e).split(';')[0]})")
    if not isinstance(rec, dict):
        return Item(n, error="not a JSON object")
    key = column or next((k for k in rec if k.lower() in _text_names()), None)
    if key is None or key not in rec:
        return Item(n, error=f"no text field ({column or 'text'}) in {sorted(rec)[:8]}")
    return _value_item(n, rec[key], key)


def _value_item(n: int, value, key: str) -> Item:
    """The item for one record's text field: a string, or an error saying what it holds instead."""
    from ..data.readers import describe_value

    if value is None or (isinstance(value, str) and not value.strip()):
        return Item(n, error="empty text")
    if not isinstance(value, str):
        return Item(n, error=f"field '{key}' holds {describe_value(value)}, not text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # JSON may escape a lone surrogate ("\ud800"): not a character
        return Item(n, error=f"field '{key}' holds a lone surrogate escape (\\u{ord(value[e.start]):04x}), "
                             "not valid Unicode text")
    return Item(n, value)


def _text_names() -> tuple[str, ...]:
    from ..data.columns import TEXT_NAMES

    return TEXT_NAMES


def read_items(path: str | Path, text_column: str | None = None, max_bytes: int = 1_000_000) -> Iterator[Item]:
    """Items of an input file, lazily for .txt / .jsonl (other formats are read whole).

    Example:
        >>> [i.error or i.text for i in read_items("texts.txt")]
        ['a fine film', 'empty text', 'dull']
    """
    path = Path(path)
    if not path.is_file():
        raise TunesmithError(f"{path}: input file not found")
    for k, item in enumerate(_items(path, text_column, max_bytes)):
        item.index = k
        yield item


def _items(path: Path, text_column: str | None, max_bytes: int) -> Iterator[Item]:
    suffix = path.suffix.lower()
    if suffix in STREAMED:
        with open(path, "rb") as f:
            for n, raw in _raw_lines(f, max_bytes):
                yield _text_item(n, raw, max_bytes) if suffix == ".txt" else \
                    _json_item(n, raw, max_bytes, text_column)
        return
    yield from _table_items(path, text_column)


def _table_items(path: Path, text_column: str | None) -> Iterator[Item]:
    from ..data.columns import TEXT_NAMES, columns_of, headerless_error, pick_column
    from ..data.readers import read_records

    records = read_records(path)
    try:
        col = pick_column(columns_of(records), text_column, TEXT_NAMES, "text", str(path))
    except TunesmithError as e:
        raise (headerless_error(str(path), records) or e) from None
    for rec in records:
        yield _value_item(rec["_line"], rec.get(col), col)


def count_lines(path: str | Path) -> int | None:
    """Lines in a streamed file (for the progress bar's ETA), counted in 16 MB blocks."""
    path = Path(path)
    if path.suffix.lower() not in STREAMED:
        return None
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def completed_records(output: Path) -> tuple[int, int | None]:
    """(complete records in a partial output, line of the last one); cuts a torn last line off."""
    if not output.exists():
        return 0, None
    count, good_end, last_line = 0, 0, None
    with open(output, "rb") as f:
        for raw in iter(f.readline, b""):
            if not raw.endswith(b"\n"):
                break
            try:
                last_line = json.loads(raw)["line"]
            except (json.JSONDecodeError, KeyError, TypeError):
                break
            count += 1
            good_end = f.tell()
    with open(output, "r+b") as f:
        f.truncate(good_end)  # a torn or corrupt tail is redone, never duplicated
    return count, last_line


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def predict_chunk(records_fn: Callable[[list[str]], list[dict]], chunk: list[Item],
                  raise_if_all_fail: bool = True) -> list[dict]:
    """Output records for one chunk, in input order; only the good items reach the model.

    A chunk whose prediction raises is retried text by text, so the text that breaks the model
    becomes an error record with its line instead of ending the job. When every text fails the
    cause is not a line (a broken model, no memory): with `raise_if_all_fail` that is raised.
    """
    good = [it for it in chunk if it.error is None]
    results = iter(_good_results(records_fn, good, raise_if_all_fail))
    out = []
    for it in chunk:
        res = next(results) if it.error is None else None
        if isinstance(res, Exception):
            it.error = f"prediction failed ({type(res).__name__}: {str(res).splitlines()[0][:200] if str(res) else ''})"
        out.append({"index": it.index, "line": it.line, "error": it.error} if it.error else
                   {"index": it.index, "line": it.line, "text": it.text, **res})
    return out


def _good_results(records_fn, good: list[Item], raise_if_all_fail: bool) -> list:
    """One result dict (or the exception it raised) per good item."""
    if not good:
        return []
    try:
        return records_fn([it.text for it in good])
    except Exception:  # noqa: BLE001 - which text broke it is found below; anything else is re-raised
        one = [_one_result(records_fn, it.text) for it in good]
        if raise_if_all_fail and all(isinstance(r, Exception) for r in one):
            raise
        return one


def _one_result(records_fn, text: str):
    try:
        return records_fn([text])[0]
    except Exception as e:  # noqa: BLE001 - becomes this line's error record
        return e


def stream_predict(records_fn: Callable[[list[str]], list[dict]], input_path: str | Path,
                   output_path: str | Path | None, *, text_column: str | None = None, resume: bool = False,
                   chunk_size: int = 2048, max_bytes: int = 1_000_000, progress: bool = True,
                   total: int | None = None) -> dict:
    """Predict every line of input_path into output_path (JSONL), chunk by chunk.

    `total` is the line count when the caller has it already (the progress bar counts otherwise).

    output_path None writes to stdout. Returns counts: {"written", "errors", "skipped" (records
    already there on resume), "bad_lines" (the first 20 as (line, why))}.

    Example:
        >>> stream_predict(predictor.records, "texts.txt", "preds.jsonl")
        {'written': 3, 'errors': 1, 'skipped': 0, 'bad_lines': [(2, 'empty text')]}
    """
    output = Path(output_path) if output_path else None
    if resume and output is None:
        raise TunesmithError("--resume needs --output FILE (the partial output to continue)")
    done, last_line = completed_records(output) if resume else (0, None)
    items = read_items(input_path, text_column, max_bytes)
    for k in range(done):
        item = next(items, None)
        if item is None:
            raise TunesmithError(f"{output}: has {done} records but {input_path} has only {k} lines; "
                                 "it belongs to another input — remove it or choose another --output")
        if k == done - 1 and item.line != last_line:
            raise TunesmithError(f"{output}: its last record is line {last_line}, but record {done} of "
                                 f"{input_path} is line {item.line}; it belongs to another input")
    if Path(input_path).suffix.lower() not in STREAMED:
        items = iter(list(items))  # read whole anyway: a bad file stops here, before any output exists
    bar = _progress(total if total is not None else count_lines(input_path), done, progress)
    counts: dict = {"written": 0, "errors": 0, "skipped": done, "bad_lines": []}
    out = _open_output(output, resume) if output else sys.stdout
    try:
        for chunk in _chunks(items, chunk_size):
            recs = predict_chunk(records_fn, chunk, raise_if_all_fail=counts["written"] == counts["errors"])
            out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
            out.flush()
            counts["written"] += len(recs)
            bad = [r for r in recs if "error" in r]
            counts["errors"] += len(bad)
            counts["bad_lines"] += [(r["line"], r["error"]) for r in bad][: 20 - len(counts["bad_lines"])]
            bar.update(len(recs))
    except BaseException:
        if out is not sys.stdout:
            out.close()
            _after_failure(output, counts["written"], resume)
        raise
    finally:
        bar.close()
        if out is not sys.stdout:
            out.close()
    return counts


def _open_output(output: Path, resume: bool):
    try:
        return open(output, "a" if resume else "w", encoding="utf-8")
    except OSError as e:
        raise TunesmithError(f"--output {output}: cannot write it ({e.strerror})") from None


def _after_failure(output: Path, written: int, resume: bool) -> None:
    """A failed job never leaves an empty output that looks like a result."""
    if written == 0 and not resume:
        output.unlink(missing_ok=True)
        print(f"predict stopped before any record was written; removed the empty {output}", file=sys.stderr)
    elif written:
        print(f"predict stopped after {written} records; {output} holds them: add --resume to continue",
              file=sys.stderr)


def _progress(total: int | None, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="samples", desc="predict", file=sys.stderr,
                disable=not enabled, mininterval=0.5, dynamic_ncols=True)
