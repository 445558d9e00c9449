"""Hostile input for every data reader: any bytes either parse into records (each with its line)
or raise the project's own TunesmithError naming the file - never another exception, never a hang.

Budgets: FUZZ_EXAMPLES (default 100) generated inputs per property; the `slow` run uses
TUNESMITH_FUZZ_EXAMPLES (e.g. 5000) for the reliability report (docs/reliability.md)."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.errors import TunesmithError

# A reader that hangs fails by pytest-timeout (generous: the 2 test cores are shared), not by a
# wall-time assertion.
pytestmark = pytest.mark.timeout(900)

FUZZ_EXAMPLES = int(os.environ.get("TUNESMITH_FUZZ_EXAMPLES", "100"))  # per property: 300+ per reader
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,  # hangs: pytest-timeout
                derandomize=False, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
TEXT_FORMATS = ("csv", "tsv", "json", "jsonl")
NASTY = ',\t"\'\n\r\x00\ufeff{}[]:\\ \u2028\u0085é漢😀'  # delimiters, quotes, line ends, NUL, BOM, JSON syntax

# Raw bytes, and text biased towards the characters that break parsers, in several encodings.
nasty_text = st.text(alphabet=st.sampled_from(NASTY) | st.characters(), max_size=400)
encoded = st.tuples(nasty_text, st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"])) \
    .map(lambda t: t[0].encode(t[1], errors="replace"))
mixed = st.lists(encoded, min_size=1, max_size=4).map(b"".join)  # mixed encodings in one file
any_bytes = st.binary(max_size=600) | encoded | mixed


def check(path: Path, read) -> list | None:
    """The property: records with a `_line`, or a TunesmithError that names the file. A hang is
    caught by pytest-timeout (the module's timeout mark), not by measuring wall time."""
    try:
        out = read(path)
    except TunesmithError as e:
        assert str(path) in str(e) or path.name in str(e), f"error does not name the file: {e}"
        return None
    assert isinstance(out, list)
    return out


def read_records_checked(path: Path) -> list:
    from tunesmith.data.readers import read_records

    out = read_records(path)
    assert out and all(isinstance(r, dict) and isinstance(r["_line"], int) for r in out)
    return out


def read_labelled_checked(path: Path) -> list:
    """One layer further: column detection and label normalisation on whatever the reader gave."""
    from tunesmith.data.labelled import read_labelled_file

    rows, info = read_labelled_file(str(path), None, None, drop_empty=True)
    assert all(isinstance(r["text"], str) and isinstance(r["label"], str) for r in rows)
    return rows


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@FUZZ
@given(data=any_bytes)
def test_any_bytes(tmp_path, fmt, data):
    path = tmp_path / f"data.{fmt}"
    path.write_bytes(data)
    check(path, read_records_checked)


# Structured inputs get past the first line, where the interesting failures live.
cell = st.one_of(nasty_text, st.integers(-10**30, 10**30).map(str), st.just(""), st.just("label"))


@st.composite
def delimited(draw, sep: str) -> bytes:
    header = draw(st.lists(st.sampled_from(["text", "label", "Text", "sentiment", "", "id", "x y"]) | nasty_text,
                           min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=5), max_size=8))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    buf = io.StringIO()
    quote = draw(st.booleans())
    for row in [header, *rows]:
        buf.write(sep.join(f'"{c}"' if quote else c for c in row) + eol)
    enc = draw(st.sampled_from(["utf-8", "utf-8-sig"]))
    return buf.getvalue().encode(enc, errors="surrogatepass" if enc == "utf-8" else "replace")


json_value = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | nasty_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text | st.sampled_from(["text", "label"]),
                                                                inner, max_size=4),
    max_leaves=20)
record = st.fixed_dictionaries({}, optional={"text": json_value, "label": json_value, "extra": json_value})


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=True)


@st.composite
def jsonl(draw) -> bytes:
    lines = draw(st.lists(record | json_value | nasty_text, max_size=8))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(l if isinstance(l, str) and draw(st.booleans()) else dumps(l) for l in lines)
    return text.encode("utf-8", errors="surrogatepass")


@st.composite
def json_array(draw) -> bytes:
    items = draw(st.lists(record | json_value, max_size=8))
    text = json.dumps(items, ensure_ascii=False, indent=draw(st.sampled_from([None, 2])))
    cut = draw(st.integers(0, len(text)))  # sometimes a truncated file
    return (text if draw(st.booleans()) else text[:cut]).encode("utf-8", errors="surrogatepass")


STRUCTURED = {"csv": delimited(","), "tsv": delimited("\t"), "jsonl": jsonl(), "json": json_array()}


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@FUZZ
@given(data=st.data())
def test_structured(tmp_path, fmt, data):
    path = tmp_path / f"data.{fmt}"
    path.write_bytes(data.draw(STRUCTURED[fmt]))
    check(path, read_records_checked)
    check(path, read_labelled_checked)


@st.composite
def mutated(draw, fmt: str) -> bytes:
    """A valid file with a few bytes flipped, inserted or cut."""
    base = bytearray(draw(STRUCTURED[fmt]))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(base)))
        op = draw(st.sampled_from(["flip", "insert", "cut"]))
        if op == "insert":
            base[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "cut":
            del base[pos:pos + draw(st.integers(1, 16))]
        elif pos < len(base):
            base[pos] ^= draw(st.integers(1, 255))
    return bytes(base)


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
@FUZZ
@given(data=st.data())
def test_mutated(tmp_path, fmt, data):
    path = tmp_path / f"data.{fmt}"
    path.write_bytes(data.draw(mutated(fmt)))
    check(path, read_records_checked)


# Valid files must come back exactly: hardening may never reject or alter good data.
plain_text = st.text(alphabet=st.sampled_from(NASTY.replace("\x00", "")) | st.characters(exclude_categories=["Cs"]),
                     max_size=60)


@pytest.mark.parametrize("sep", [",", "\t"])
@FUZZ
@given(header=st.lists(st.text(min_size=1, max_size=8).map(str.strip).filter(lambda h: h and h != "_line"),
                       min_size=1, max_size=4,
                       unique=True),
       rows=st.lists(st.lists(plain_text, min_size=4, max_size=4), min_size=1, max_size=6),
       eol=st.sampled_from(["\n", "\r\n"]), bom=st.booleans())
def test_delimited_roundtrip(tmp_path, sep, header, rows, eol, bom):
    import csv

    rows = [r[:len(header)] for r in rows if any(c.strip() for c in r[:len(header)])]
    buf = io.StringIO()
    # Python's writer leaves a bare "\r" unquoted when the line end is "\n": quote all, as a careful writer would
    w = csv.writer(buf, delimiter=sep, lineterminator=eol, quoting=csv.QUOTE_ALL if eol == "\n" else csv.QUOTE_MINIMAL)
    w.writerow(header)
    w.writerows(rows)
    path = tmp_path / ("data.tsv" if sep == "\t" else "data.csv")
    path.write_bytes(buf.getvalue().encode("utf-8-sig" if bom else "utf-8"))
    if not rows:
        with pytest.raises(TunesmithError, match="no data rows"):
            read_records_checked(path)
        return
    got = read_records_checked(path)
    assert [[r[h] for h in header] for r in got] == rows


clean_json = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | plain_text,
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(plain_text, inner, max_size=4),
                          max_leaves=12)


@FUZZ
@given(records=st.lists(st.dictionaries(plain_text, clean_json, max_size=4).map(lambda d: {k: v for k, v in d.items()
                                                                                            if k != "_line"}),
                        min_size=1, max_size=6),
       eol=st.sampled_from(["\n", "\r\n"]), ascii_only=st.booleans())
def test_jsonl_roundtrip(tmp_path, records, eol, ascii_only):
    path = tmp_path / "data.jsonl"
    path.write_text(eol.join(json.dumps(r, ensure_ascii=ascii_only) for r in records) + eol, encoding="utf-8",
                    newline="")
    got = read_records_checked(path)
    back = [{k: v for k, v in r.items() if k != "_line"} for r in got]
    assert json.dumps(back, sort_keys=True) == json.dumps(records, sort_keys=True)  # NaN-safe equality
    assert [r["_line"] for r in got] == list(range(1, len(records) + 1))


# ------------------------------------------------------------------------------- Parquet

@st.composite
def parquet_bytes(draw) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = draw(st.integers(0, 6))
    cols = draw(st.lists(st.sampled_from(["text", "label", "Text", "score", "tags"]), min_size=1, max_size=3,
                         unique=True))
    kinds = {c: draw(st.sampled_from(["str", "int", "float", "list", "null"])) for c in cols}
    gen = {"str": nasty_text.map(lambda s: s.encode("utf-8", "replace").decode("utf-8")) | st.none(),
           "int": st.integers(-2**63, 2**63 - 1) | st.none(), "float": st.floats() | st.none(),
           "list": st.lists(st.integers(-5, 5), max_size=3) | st.none(), "null": st.none()}
    data = {c: draw(st.lists(gen[kinds[c]], min_size=n, max_size=n)) for c in cols}
    buf = io.BytesIO()
    pq.write_table(pa.table(data), buf)
    raw = buf.getvalue()
    if draw(st.booleans()):  # damage it: truncate or flip a byte
        pos = draw(st.integers(0, len(raw) - 1))
        raw = raw[:pos] if draw(st.booleans()) else raw[:pos] + bytes([raw[pos] ^ 0xFF]) + raw[pos + 1:]
    return raw


@settings(FUZZ, max_examples=max(FUZZ_EXAMPLES // 2, 10))  # each example writes a real Parquet file
@given(data=parquet_bytes() | st.binary(max_size=300))
def test_parquet(tmp_path, data):
    path = tmp_path / "data.parquet"
    path.write_bytes(data)
    check(path, read_records_checked)
    check(path, read_labelled_checked)


# ------------------------------------------------------------------------------- the named corpus

def corpus() -> dict[str, bytes]:
    long_text = "word " * 400_000  # 2 MB in one field (Python's csv module stops at 128 KiB by default)
    return {
        "long.csv": f'text,label\n"{long_text}",pos\nshort,neg\n'.encode(),
        "long.jsonl": (dumps({"text": long_text, "label": "pos"}) + "\n").encode(),
        "deep.json": b"[" * 200_000 + b"]" * 200_000,
        "deep.jsonl": b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b', "label": "a"}\n',
        "bigint.jsonl": b'{"text": "a", "label": ' + b"9" * 5000 + b"}\n",
        "nul.csv": b"text,label\ngood\x00film,pos\n\x00\x00\x00,neg\n",
        "nul.tsv": b"text\tlabel\n\x00\tpos\n",
        "bom.csv": "\ufefftext,label\nfine,pos\n".encode(),
        "bom16.csv": "text,label\nfine,pos\n".encode("utf-16"),
        "crlf.tsv": b"text\tlabel\r\ngood\tpos\r\nbad\tneg\r\n",
        "cr-only.csv": b"text,label\rgood,pos\rbad,neg\r",
        "latin1.csv": "text,label\ncafé,pos\n".encode("latin-1"),
        "mixed.jsonl": '{"text": "café", "label": "a"}\n'.encode() + '{"text": "café", "label": "b"}\n'.encode("latin-1"),
        "unclosed-quote.csv": b'text,label\n"never closed,pos\nbad,neg\n',
        "only-header.csv": b"text,label\n",
        "blank.json": b"   \n\t\n",
        "nan.jsonl": b'{"text": NaN, "label": Infinity}\n',
        "array-of-arrays.json": b"[[1, 2], [3]]",
        "object.json": b'{\n  "text": "a",\n  "label": "b"\n}\n',
        "dup-keys.jsonl": b'{"text": "a", "text": "b", "label": "c"}\n',
        "surrogates.jsonl": b'{"text": "\\ud800\\udfff\\ud800", "label": "x"}\n',
    }


@pytest.mark.parametrize("name", sorted(corpus()))
def test_named_corpus(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(corpus()[name])
    check(path, read_records_checked)
    check(path, read_labelled_checked)


def test_long_field_is_read_not_rejected(tmp_path):
    path = tmp_path / "long.csv"
    path.write_bytes(corpus()["long.csv"])
    assert len(read_records_checked(path)[0]["text"]) == 2_000_000


def test_errors_name_the_line(tmp_path):
    from tunesmith.data.readers import read_records

    cases = {"bad.jsonl": b'{"text": "a"}\n{"text": \n', "bad.csv": b"text,label\na,b\na,b,c\n",
             "bad.tsv": b"text\tlabel\nok\tfine\n\xff\xfe\tx\n", "big.jsonl": b'{"a": 1}\n{"a": ' + b"1" * 5000 + b"}\n"}
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(TunesmithError, match=rf"{name}, line (2|3)"):
            read_records(tmp_path / name)


def test_reserved_line_column_is_an_error(tmp_path):
    from tunesmith.data.readers import read_records

    for name, raw in {"a.csv": b"text,_line\nx,1\n", "a.jsonl": b'{"text": "x"}\n{"_line": 3}\n',
                      "a.json": b'[{"text": "x", "_line": 1}]'}.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(TunesmithError, match=rf"{name}, (line \d|item 1).*'_line'"):
            read_records(tmp_path / name)


def million_lines(path: Path, fmt: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        if fmt == "csv":
            f.write("text,label\n")
            f.writelines(f"review number {i} was fine,{'pos' if i % 2 else 'neg'}\n" for i in range(1_000_000))
        else:
            f.writelines(f'{{"text": "review number {i}", "label": "{i % 2}"}}\n' for i in range(1_000_000))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_million_line_file(tmp_path, fmt):
    path = tmp_path / f"big.{fmt}"
    million_lines(path, fmt)
    out = check(path, read_records_checked)
    assert out is not None and len(out) == 1_000_000 and out[-1]["_line"] == (1_000_001 if fmt == "csv" else 1_000_000)


def test_million_line_file_with_a_bad_last_line(tmp_path):
    """A bad line at the very end of a million-line file is found and named, in bounded time."""
    from tunesmith.data.readers import read_records

    path = tmp_path / "big.jsonl"
    million_lines(path, "jsonl")
    with open(path, "ab") as f:
        f.write(b'{"text": "cut sho')
    with pytest.raises(TunesmithError, match=r"big.jsonl, line 1000001"):
        read_records(path)
