"""Hostile input for the CoNLL / NER-JSONL readers and the raw-text corpus reader: any bytes parse
or raise a TunesmithError naming the file - never another exception, never a hang."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_fuzz_readers import FUZZ, FUZZ_EXAMPLES, any_bytes, json_value, nasty_text
from tunesmith.errors import TunesmithError

pytestmark = pytest.mark.timeout(900)  # a hang fails here (pytest-timeout), not a wall-time assertion

TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "E-LOC", "S-LOC", "U-MISC", "L-MISC", "B-", "I-per", "X", "-"]


def check(path: Path, read):
    try:
        return read(path)
    except TunesmithError as e:
        assert path.name in str(e), f"error does not name the file: {e}"
        return None


def ner_pipeline(path: Path):
    """Read, then validate/repair the tag scheme, as `finetune --model.task token-classification` does."""
    from tunesmith.data.conll import normalise, read_ner_file

    examples = read_ner_file(path)
    for repair in (False, True):
        try:
            normalise([dict(e) for e in examples], "auto", repair=repair, path=str(path))
        except TunesmithError as e:
            assert path.name in str(e), f"error does not name the file: {e}"
    return examples


token = st.text(min_size=1, max_size=10).filter(lambda t: t.split() == [t])


@st.composite
def conll_bytes(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["pair", "pair", "pair", "blank", "docstart", "junk", "three"]))
        if kind == "pair":
            lines.append(f"{draw(token)}{draw(st.sampled_from([' ', chr(9), '  ']))}{draw(st.sampled_from(TAGS))}")
        elif kind == "three":
            lines.append(f"{draw(token)} NNP {draw(st.sampled_from(TAGS))}")
        elif kind == "docstart":
            lines.append("-DOCSTART- -X- O O")
        elif kind == "junk":
            lines.append(draw(nasty_text))
        else:
            lines.append("")
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return eol.join(lines).encode(draw(st.sampled_from(["utf-8", "utf-8-sig"])), errors="surrogatepass")


ner_record = st.fixed_dictionaries({}, optional={
    "tokens": st.lists(token | json_value, max_size=6), "tags": st.lists(st.sampled_from(TAGS) | json_value, max_size=6),
    "text": nasty_text | json_value,
    "entities": st.lists(st.fixed_dictionaries({"start": st.integers(-3, 30) | json_value, "end": st.integers(-3, 30),
                                                "label": st.sampled_from(["PER", "ORG", ""]) | json_value})
                         | st.lists(json_value, max_size=4), max_size=4)})


@pytest.mark.parametrize("suffix", [".conll", ".txt", ".jsonl"])
@FUZZ
@given(data=any_bytes)
def test_ner_any_bytes(tmp_path, suffix, data):
    path = tmp_path / f"train{suffix}"
    path.write_bytes(data)
    check(path, ner_pipeline)


@FUZZ
@given(data=conll_bytes())
def test_conll_structured(tmp_path, data):
    path = tmp_path / "train.conll"
    path.write_bytes(data)
    check(path, ner_pipeline)


@FUZZ
@given(records=st.lists(ner_record | json_value, max_size=6))
def test_ner_jsonl_structured(tmp_path, records):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=True) for r in records), encoding="utf-8")
    check(path, ner_pipeline)


@FUZZ
@given(sentences=st.lists(st.lists(st.tuples(token, st.sampled_from(["O", "B-PER", "I-PER", "B-ORG"])), min_size=1,
                                   max_size=5), min_size=1, max_size=5))
def test_conll_roundtrip(tmp_path, sentences):
    from tunesmith.data.conll import read_conll

    path = tmp_path / "train.conll"
    path.write_text("\n\n".join("\n".join(f"{t} {g}" for t, g in s) for s in sentences) + "\n", encoding="utf-8")
    got = check(path, read_conll)
    if got is None:  # only a token the line splitter breaks (e.g. U+2028) may be refused
        assert any(len(t.splitlines()) > 1 or t in ("-DOCSTART-",) for s in sentences for t, _ in s)
        return
    assert [e["tokens"] for e in got] == [[t for t, _ in s] for s in sentences] or \
        any(len(t.splitlines()) > 1 or t == "-DOCSTART-" for s in sentences for t, _ in s)


# ----------------------------------------------------------------------------- raw text (pre-training corpus)

@pytest.mark.parametrize("mode", ["blocks", "lines"])
@settings(FUZZ, max_examples=FUZZ_EXAMPLES)
@given(data=any_bytes)
def test_raw_text_any_bytes(tmp_path, mode, data):
    from tunesmith.pretrain.corpus import read_txt

    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    docs = check(path, lambda p: read_txt(p, mode))
    if docs is not None:
        assert all(isinstance(d, str) and d == d.strip() and d for d in docs)


@FUZZ
@given(data=any_bytes)
def test_corpus_source_any_bytes(tmp_path, data):
    from tunesmith.pretrain.config import CorpusConfig
    from tunesmith.pretrain.corpus import read_documents

    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    check(path, lambda p: read_documents(CorpusConfig(source=str(p))))


def test_named_corpus(tmp_path):
    from tunesmith.pretrain.corpus import read_txt

    cases = {"nul.txt": b"a\x00b\n\nc\x00\x00\n", "bom.txt": "\ufeffhello\n\nworld\n".encode(),
             "crlf.txt": b"one\r\n\r\ntwo\r\n", "long.txt": b"word " * 2_000_000,
             "latin1.txt": "caf\xe9\n".encode("latin-1"), "only-bom.txt": b"\xef\xbb\xbf",
             "u2028.txt": "a\u2028b\n\nc\n".encode()}
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        for mode in ("blocks", "lines"):
            check(tmp_path / name, lambda p: read_txt(p, mode))
    for name, raw in {"deep.conll": b"x O\n" * 100_000 + b"y", "nul.conll": b"a\x00 O\n\x00 B-PER\n",
                      "bom.conll": "\ufeffEU B-ORG\nrejects O\n".encode()}.items():
        (tmp_path / name).write_bytes(raw)
        check(tmp_path / name, ner_pipeline)


@pytest.mark.slow
def test_million_line_corpus(tmp_path):
    from tunesmith.pretrain.corpus import read_txt

    path = tmp_path / "big.txt"
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"sentence number {i} of the corpus.\n" for i in range(1_000_000))
    assert len(read_txt(path, "lines")) == 1_000_000
