"""Distributed batch prediction: 2 CPU processes under `accelerate launch`, each predicting its
shard; the merged output equals one process's `tunesmith predict` output, in input order."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from test_distributed import cpu_env, free_port, write_csv


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, _tiny_bert_master):
    from tunesmith.cli import main

    root = tmp_path_factory.mktemp("dist-predict")
    data = write_csv(root / "reviews.csv", 40)
    assert main(["finetune", "--model", str(_tiny_bert_master), "--data", str(data), "--output", str(root / "run"),
                 "--train.max_steps=2", "--train.batch_size=8"]) == 0
    return root / "run"


def lines(n: int) -> str:
    words = "good bad film plot dull fun great boring the movie".split()
    out = []
    for i in range(n):
        out.append("" if i % 17 == 5 else " ".join(words[(i * k) % len(words)] for k in range(1, 2 + i % 9)))
    return "\n".join(out) + "\n"


def test_shards_and_merge_in_order(tmp_path):
    from tunesmith.infer.distributed import merge_parts, shard_items

    world = 3
    shards = [list(shard_items(iter(range(10)), r, world)) for r in range(world)]
    assert sorted(sum(shards, [])) == list(range(10)) and all(shards)
    parts = []
    for r, shard in enumerate(shards):
        p = tmp_path / f"part{r}"
        p.write_text("".join(json.dumps({"index": i, "line": i + 1}) + "\n" for i in shard))
        parts.append(p)
    assert merge_parts(parts, tmp_path / "out.jsonl") == 10
    assert [json.loads(l)["index"] for l in (tmp_path / "out.jsonl").read_text().splitlines()] == list(range(10))
    assert not any(p.exists() for p in parts)


def test_two_processes_match_one(trained_run, tmp_path):
    from tunesmith.cli import main

    inp = tmp_path / "texts.txt"
    inp.write_text(lines(101))
    assert main(["predict", str(trained_run), "--input", str(inp), "--output", str(tmp_path / "one.jsonl"),
                 "--fast", "fp32", "--no-progress"]) == 0
    out = tmp_path / "two.jsonl"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", "tunesmith.infer.distributed", str(trained_run),
           "--input", str(inp), "--output", str(out), "--fast", "fp32", "--threads", "1", "--chunk-size", "16"]
    proc = subprocess.run(cmd, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "wrote 101 records" in proc.stderr and "2 process(es)" in proc.stderr
    one = [json.loads(l) for l in (tmp_path / "one.jsonl").read_text().splitlines()]
    two = [json.loads(l) for l in out.read_text().splitlines()]
    assert [r["line"] for r in two] == list(range(1, 102))
    assert len(one) == len(two)
    for a, b in zip(one, two):
        assert a.keys() == b.keys() and a.get("label") == b.get("label") and a.get("error") == b.get("error")
        if "score" in a:
            assert b["score"] == pytest.approx(a["score"], abs=1e-5)
    assert not list(tmp_path.glob("two.jsonl.*")), "part files are removed after the merge"


def test_existing_output_is_not_overwritten(trained_run, tmp_path, capsys):
    from tunesmith.infer.distributed import main

    inp, out = tmp_path / "t.txt", tmp_path / "o.jsonl"
    inp.write_text("a good film\n")
    out.write_text("keep me\n")
    assert main([str(trained_run), "--input", str(inp), "--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "keep me\n"
    try:
        assert main([str(trained_run), "--input", str(inp), "--output", str(out), "--overwrite", "--fast", "fp32"]) == 0
    finally:
        from accelerate.state import PartialState

        PartialState._reset_state()  # leave no process state behind for later in-process Trainer runs
    assert json.loads(out.read_text())["line"] == 1
