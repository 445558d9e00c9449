"""Readers, column detection, label maps and splits: the data half of the foundation."""
import json

import pytest

from tunesmith.config import DataConfig
from tunesmith.data.columns import pick_column
from tunesmith.data.labelled import label_order, load_labelled, read_labelled_file
from tunesmith.data.readers import read_records
from tunesmith.data.split import stratified_split
from tunesmith.errors import TunesmithError

from conftest import sentiment_rows


def write(tmp_path, name, content, mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def test_csv_tsv_json_jsonl_parquet_read_the_same_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": "good film, really", "label": "pos"}, {"text": 'said "bad"', "label": "neg"}]
    csv = write(tmp_path, "a.csv", 'text,label\n"good film, really",pos\n"said ""bad""",neg\n')
    tsv = write(tmp_path, "a.tsv", "text\tlabel\ngood film, really\tpos\nsaid \"bad\"\tneg\n")
    jsonl = write(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    js = write(tmp_path, "a.json", json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    for path in (csv, tsv, jsonl, js, tmp_path / "a.parquet"):
        got = [{k: v for k, v in r.items() if k != "_line"} for r in read_records(path)]
        assert got == rows, path.name


def test_bom_and_crlf_are_handled(tmp_path):
    p = write(tmp_path, "b.csv", "\ufefftext,label\r\nnice,pos\r\nugly,neg\r\n")
    recs = read_records(p)
    assert [r["text"] for r in recs] == ["nice", "ugly"]
    assert recs[1]["_line"] == 3


def test_non_utf8_bytes_name_the_line(tmp_path):
    p = write(tmp_path, "c.csv", b"text,label\nfine,pos\ncaf\xe9 noir,neg\n", mode="wb")
    with pytest.raises(TunesmithError, match=r"c.csv, line 3: bytes that are not UTF-8"):
        read_records(p)


@pytest.mark.parametrize("content,pattern", [
    ("", "file is empty"),
    ("text,label\n", "no data rows"),
    ("text,label\na,b,c\n", "line 2: 3 fields"),
])
def test_bad_csv_gives_clear_errors(tmp_path, content, pattern):
    with pytest.raises(TunesmithError, match=pattern):
        read_records(write(tmp_path, "d.csv", content))


def test_missing_file_and_bad_json_line(tmp_path):
    with pytest.raises(TunesmithError, match="file not found"):
        read_records(tmp_path / "nope.csv")
    p = write(tmp_path, "e.jsonl", '{"text": "a", "label": 1}\n{"text": oops}\n')
    with pytest.raises(TunesmithError, match="e.jsonl, line 2: not valid JSON"):
        read_records(p)


def test_column_detection_missing_and_ambiguous():
    assert pick_column(["id", "review", "stars"], None, ("text", "review"), "text", "f") == "review"
    with pytest.raises(TunesmithError, match="cannot tell which column holds the text"):
        pick_column(["id", "body2"], None, ("text",), "text", "f")
    with pytest.raises(TunesmithError, match="ambiguous"):
        pick_column(["text", "sentence"], None, ("text", "sentence"), "text", "f")
    with pytest.raises(TunesmithError, match="no column 'x'"):
        pick_column(["text"], "x", ("text",), "text", "f")


def test_empty_texts_are_named_or_dropped(tmp_path):
    p = write(tmp_path, "f.csv", "text,label\nok,a\n ,b\nfine,b\n")
    with pytest.raises(TunesmithError, match=r"1 empty text\(s\) in column 'text' at line\(s\) 3"):
        read_labelled_file(str(p), None, None)
    rows, info = read_labelled_file(str(p), None, None, drop_empty=True)
    assert len(rows) == 2 and info["dropped_empty"] == 1


def test_single_class_is_rejected(tmp_path):
    p = write(tmp_path, "g.csv", "text,label\n" + "".join(f"t{i},same\n" for i in range(30)))
    with pytest.raises(TunesmithError, match="single class"):
        load_labelled(DataConfig(dataset=str(p)))


def test_integer_labels_sort_numerically_and_map_is_kept(tmp_path):
    assert label_order(["10", "2", "-1"]) == ["-1", "2", "10"]
    rows = [{"text": f"text {i}", "stars": (i % 3) * 5} for i in range(60)]
    p = write(tmp_path, "h.jsonl", "\n".join(json.dumps(r) for r in rows))
    data = load_labelled(DataConfig(dataset=str(p), label_column="stars"))
    assert data.labels == ["0", "5", "10"]
    assert data.label2id == {"0": 0, "5": 1, "10": 2}


def test_stratified_split_is_seeded_and_keeps_proportions():
    rows = [{"text": str(i), "label": "a" if i < 300 else "b"} for i in range(400)]
    a = stratified_split(rows, 0.1, 0.2, seed=1)
    b = stratified_split(rows, 0.1, 0.2, seed=1)
    c = stratified_split(rows, 0.1, 0.2, seed=2)
    assert [r["text"] for r in a["test"]] == [r["text"] for r in b["test"]]
    assert [r["text"] for r in a["test"]] != [r["text"] for r in c["test"]]
    assert {k: len(v) for k, v in a.items()} == {"train": 280, "validation": 40, "test": 80}
    assert sum(r["label"] == "a" for r in a["test"]) == 60  # 75% of 80
    ids = [r["text"] for part in a.values() for r in part]
    assert len(ids) == len(set(ids)) == 400


def test_separate_split_files(tmp_path):
    import csv

    for name, n in (("train", 60), ("test", 20)):
        with open(tmp_path / f"{name}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["text", "label"])
            w.writeheader()
            w.writerows(sentiment_rows(n, seed=n))
    data = load_labelled(DataConfig(train=str(tmp_path / "train.csv"), test=str(tmp_path / "test.csv"),
                                    val_size=0.25))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 45, "validation": 15, "test": 20}


def test_unknown_label_in_test_file_names_line(tmp_path):
    write(tmp_path, "tr.csv", "text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(20)))
    write(tmp_path, "te.csv", "text,label\nx,a\ny,c\n")
    with pytest.raises(TunesmithError, match="test split, line 3: label 'c' never occurs"):
        load_labelled(DataConfig(train=str(tmp_path / "tr.csv"), test=str(tmp_path / "te.csv")))
