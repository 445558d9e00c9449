"""NER readers (CoNLL, token JSONL, span JSONL), tag schemes, and the errors on bad input."""
from __future__ import annotations

import json

import pytest

from tunesmith.data.conll import detect_scheme, label_list, normalise, read_conll, read_ner_file
from tunesmith.errors import TunesmithError


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def jsonl(tmp_path, name, rows):
    return write(tmp_path, name, "\n".join(json.dumps(r) for r in rows) + "\n")


def test_conll_reads_sentences_and_skips_docstart(tmp_path):
    p = write(tmp_path, "a.conll", "-DOCSTART- -X- -X- O\n\nSteve NNP B-PER\nJobs NNP I-PER\nspoke VBD O\n\n\n"
                                   "Paris NNP B-LOC\n")
    ex = read_conll(p)
    assert [e["tokens"] for e in ex] == [["Steve", "Jobs", "spoke"], ["Paris"]]
    assert ex[0]["tags"] == ["B-PER", "I-PER", "O"]  # the tag is the last column
    assert ex[0]["_lines"] == [3, 4, 5] and ex[1]["_line"] == 8


def test_conll_malformed_line_names_file_and_line(tmp_path):
    p = write(tmp_path, "bad.conll", "Steve B-PER\nJobs\n")
    with pytest.raises(TunesmithError, match=r"bad\.conll, line 2: expected a token and a tag"):
        read_conll(p)


def test_token_jsonl_and_errors(tmp_path):
    p = jsonl(tmp_path, "t.jsonl", [{"tokens": ["Jo", "ran"], "tags": ["B-PER", "O"]}])
    assert read_ner_file(p)[0]["tags"] == ["B-PER", "O"]
    bad = jsonl(tmp_path, "b.jsonl", [{"tokens": ["Jo"], "tags": ["O"]}, {"tokens": ["Jo", "x"], "tags": ["O"]}])
    with pytest.raises(TunesmithError, match=r"b\.jsonl, line 2: 2 tokens but 1 tags"):
        read_ner_file(bad)
    empty = jsonl(tmp_path, "e.jsonl", [{"tokens": [], "tags": []}])
    with pytest.raises(TunesmithError, match=r"e\.jsonl, line 1: empty sentence"):
        read_ner_file(empty)


def test_span_jsonl_to_tags_with_offsets(tmp_path):
    text = "Apple Inc. was founded by Steve Jobs in Cupertino, California."
    ents = [{"start": 0, "end": 10, "label": "ORG"}, [26, 36, "PER"], {"start": 40, "end": 49, "label": "LOC"},
            {"start": 51, "end": 61, "label": "LOC"}]
    ex = read_ner_file(jsonl(tmp_path, "s.jsonl", [{"text": text, "entities": ents}]))[0]
    pairs = list(zip(ex["tokens"], ex["tags"]))
    assert pairs == [("Apple", "B-ORG"), ("Inc", "I-ORG"), (".", "I-ORG"), ("was", "O"), ("founded", "O"), ("by", "O"),
                     ("Steve", "B-PER"), ("Jobs", "I-PER"), ("in", "O"), ("Cupertino", "B-LOC"), (",", "O"),
                     ("California", "B-LOC"), (".", "O")]
    assert all(text[a:b] == t for t, (a, b) in zip(ex["tokens"], ex["offsets"]))


def test_span_inside_a_word_splits_the_token(tmp_path):
    ex = read_ner_file(jsonl(tmp_path, "s.jsonl", [{"text": "preBerlinpost", "entities": [[3, 9, "LOC"]]}]))[0]
    assert list(zip(ex["tokens"], ex["tags"])) == [("pre", "O"), ("Berlin", "B-LOC"), ("post", "O")]


@pytest.mark.parametrize("row, message", [
    ({"text": "Jo ran", "entities": [[0, 9, "PER"]]}, "lies outside the text"),
    ({"text": "Jo ran", "entities": [[-1, 2, "PER"]]}, "lies outside the text"),
    ({"text": "Jo Li ran", "entities": [[0, 5, "PER"], [3, 9, "ORG"]]}, "overlap"),
    ({"text": "   ", "entities": []}, "empty sentence"),
    ({"text": "Jo ran", "entities": [{"start": 0, "label": "PER"}]}, "integer start/end"),
])
def test_bad_spans_name_file_and_line(tmp_path, row, message):
    p = jsonl(tmp_path, "s.jsonl", [{"text": "fine", "entities": []}, row])
    with pytest.raises(TunesmithError, match=rf"s\.jsonl, line 2: .*{message}"):
        read_ner_file(p)


def ex(tags, first_line=1):
    return {"tokens": ["w"] * len(tags), "tags": list(tags), "_line": first_line,
            "_lines": list(range(first_line, first_line + len(tags)))}


def test_iob1_is_converted_to_iob2():
    data = [ex(["I-PER", "I-PER", "B-PER", "O", "I-LOC"])]
    assert detect_scheme(data) == "iob1"
    assert normalise(data, "auto") == {"scheme": "iob1", "repaired": 0}
    assert data[0]["tags"] == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]


def test_iob2_break_is_reported_or_repaired():
    with pytest.raises(TunesmithError, match=r"f\.conll, line 12: tag sequence breaks IOB2: 'I-LOC' follows 'O'"):
        normalise([ex(["B-PER", "O", "I-LOC"], 10)], "iob2", path="f.conll")
    data = [ex(["B-PER", "O", "I-LOC", "I-LOC", "B-PER", "I-LOC"])]
    assert normalise(data, "bio", repair=True) == {"scheme": "iob2", "repaired": 2}
    assert data[0]["tags"] == ["B-PER", "O", "B-LOC", "I-LOC", "B-PER", "B-LOC"]


def test_bilou_and_iobes_become_iob2():
    data = [ex(["U-PER", "O", "B-ORG", "I-ORG", "L-ORG", "S-LOC", "B-LOC", "E-LOC"])]
    assert normalise(data, "auto")["scheme"] == "bilou"
    assert data[0]["tags"] == ["B-PER", "O", "B-ORG", "I-ORG", "I-ORG", "B-LOC", "B-LOC", "I-LOC"]


def test_bilou_breaks():
    with pytest.raises(TunesmithError, match="line 1: .*'B-ORG' is not followed by I-/L-ORG"):
        normalise([ex(["B-ORG", "O"])], "bilou")
    with pytest.raises(TunesmithError, match="line 2: .*'L-ORG' does not continue"):
        normalise([ex(["O", "L-ORG"])], "bilou")
    data = [ex(["O", "L-ORG", "B-PER"])]
    assert normalise(data, "bilou", repair=True)["repaired"] == 2
    assert data[0]["tags"] == ["O", "B-ORG", "B-PER"]


@pytest.mark.parametrize("tag", ["X-PER", "PER", "B-", "L-PER"])
def test_invalid_tags_in_iob2(tag):
    with pytest.raises(TunesmithError, match=rf"line 2: tag '{tag}' is not valid in scheme IOB2"):
        normalise([ex(["O", tag])], "iob2", repair=True)  # repair never invents a tag


def test_label_list_order():
    assert label_list([ex(["B-PER", "O", "B-LOC", "I-LOC"])]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
