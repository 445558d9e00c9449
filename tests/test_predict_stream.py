"""Streaming prediction: one record per input line, bad lines as error records, resume in the middle."""
from __future__ import annotations

import json

import pytest

from tunesmith.infer.stream import count_lines, read_items, stream_predict

GOOD = ["great film", "dull plot", "lovely", "boring and bland", "fun fun fun"]


def write_input(path, max_bytes: int = 200):
    """25 lines: good texts with an empty line, a bad UTF-8 line and an over-long line mixed in."""
    lines: list[bytes] = []
    for i in range(25):
        if i == 3:
            lines.append(b"")
        elif i == 7:
            lines.append(b"caf\xe9 au lait")  # latin-1, not UTF-8
        elif i == 11:
            lines.append(b"x" * (max_bytes * 3))
        elif i == 12:
            lines.append(b"   ")
        else:
            lines.append(f"{GOOD[i % 5]} {i}".encode())
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


class Counting:
    """A fake task: records the text length, counts which texts it saw."""

    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, texts: list[str]) -> list[dict]:
        self.seen += texts
        return [{"label": f"len{len(t)}"} for t in texts]


def read_out(path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines()]


def test_every_line_gives_one_record_in_order(tmp_path):
    inp = write_input(tmp_path / "in.txt")
    fn = Counting()
    counts = stream_predict(fn, inp, tmp_path / "out.jsonl", chunk_size=4, max_bytes=200, progress=False)
    out = read_out(tmp_path / "out.jsonl")
    assert [r["line"] for r in out] == list(range(1, 26)) and [r["index"] for r in out] == list(range(25))
    errors = {r["line"]: r["error"] for r in out if "error" in r}
    assert set(errors) == {4, 8, 12, 13}
    assert errors[4] == errors[13] == "empty text" and "UTF-8" in errors[8] and "longer than 200" in errors[12]
    assert counts["errors"] == 4 and counts["written"] == 25 and [n for n, _ in counts["bad_lines"]] == [4, 8, 12, 13]
    good = [r for r in out if "error" not in r]
    assert all(r["label"] == f"len{len(r['text'])}" for r in good)
    assert len(fn.seen) == 21 and count_lines(inp) == 25


@pytest.mark.parametrize("cut", [0, 9, 14, 24, 25])
def test_resume_in_the_middle_neither_duplicates_nor_loses(tmp_path, cut):
    inp = write_input(tmp_path / "in.txt")
    full = tmp_path / "full.jsonl"
    stream_predict(Counting(), inp, full, chunk_size=4, max_bytes=200, progress=False)
    lines = full.read_bytes().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    torn = lines[cut][: len(lines[cut]) // 2] if cut < len(lines) else b""
    part.write_bytes(b"".join(lines[:cut]) + torn)  # killed while writing record cut+1
    fn = Counting()
    counts = stream_predict(fn, inp, part, resume=True, chunk_size=4, max_bytes=200, progress=False)
    assert part.read_bytes() == full.read_bytes()
    assert counts["skipped"] == cut and counts["written"] == 25 - cut
    assert len(fn.seen) == sum("error" not in json.loads(l) for l in lines[cut:])


def test_resume_refuses_an_output_of_another_input(tmp_path):
    from tunesmith.errors import TunesmithError

    inp = write_input(tmp_path / "in.txt")
    other = tmp_path / "other.txt"
    other.write_text("a\nb\n")
    out = tmp_path / "out.jsonl"
    stream_predict(Counting(), inp, out, progress=False, max_bytes=200)
    with pytest.raises(TunesmithError, match="another input"):
        stream_predict(Counting(), other, out, resume=True, progress=False)


def test_jsonl_input_with_bad_records(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"text": "great"}\nnot json\n[1, 2]\n{"review": "dull"}\n{"text": ""}\n{"id": 3}\n')
    out = tmp_path / "out.jsonl"
    stream_predict(Counting(), inp, out, progress=False)
    recs = read_out(out)
    assert [r.get("text") for r in recs] == ["great", None, None, "dull", None, None]
    assert "JSON" in recs[1]["error"] and "object" in recs[2]["error"] and recs[4]["error"] == "empty text"
    assert "no text field" in recs[5]["error"]


def test_long_line_is_skipped_in_pieces(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_bytes(b"ok\n" + b"y" * 5_000_000 + b"\nfine\n")
    items = list(read_items(inp, max_bytes=1000))
    assert [(i.line, i.text, i.error is not None) for i in items] == [(1, "ok", False), (2, None, True),
                                                                     (3, "fine", False)]


def test_predict_command_streams_and_resumes(tmp_path, tiny_bert, capsys):
    """The CLI end to end on a run directory: --output, refusal to overwrite, --resume."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunesmith.cli import main

    run = tmp_path / "run"
    AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=2, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1}).save_pretrained(run / "model")
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(run / "model")
    (run / "run.json").write_text(json.dumps({"status": "complete", "task": "classification", "method": "full",
                                              "labels": ["negative", "positive"], "max_length": 32}))
    inp = write_input(tmp_path / "in.txt", max_bytes=1_000_000)
    out = tmp_path / "preds.jsonl"
    argv = ["predict", str(run), "--input", str(inp), "--output", str(out), "--chunk-size", "5",
            "--no-progress", "--fast", "fp32"]
    assert main(argv) == 0
    full = out.read_bytes()
    recs = read_out(out)
    assert len(recs) == 25 and sum("error" in r for r in recs) == 4
    assert all(r["label"] in ("negative", "positive") and 0.5 <= r["score"] <= 1 for r in recs if "error" not in r)
    assert "4 bad line(s)" in capsys.readouterr().err
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err
    out.write_bytes(b"".join(full.splitlines(keepends=True)[:10]))
    assert main(argv + ["--resume"]) == 0
    assert out.read_bytes() == full
    assert main(["predict", str(run), "great film", "", "--fast", "fp32"]) == 0
    printed = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert printed[0]["label"] in ("negative", "positive") and printed[1]["error"] == "empty text"
    assert main(["predict", str(run), "--input", str(tmp_path / "missing.txt")]) == 2
    assert "--input" in capsys.readouterr().err
