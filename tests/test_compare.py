"""compare: a smoke run on a tiny model writes the table, chart and numbers of real runs."""
import csv
import json

import pytest

from tunesmith.cli import main
from tunesmith.errors import TunesmithError
from tunesmith.strategy.compare import parse_sweep


def test_parse_sweep():
    assert parse_sweep(["lr=1e-4,3e-4"]) == {"lr": [1e-4, 3e-4]}
    with pytest.raises(TunesmithError):
        parse_sweep(["epochs=1,2"])


def test_compare_smoke(tiny_bert, tmp_path):
    from conftest import sentiment_rows

    data = tmp_path / "d.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(60))
    out = tmp_path / "cmp"
    argv = ["compare", "--model", str(tiny_bert), "--data", str(data), "--methods", "full,lora",
            "--out", str(out), "--epochs", "1", "--batch-size", "16", "--sweep", "lr=1e-3,5e-3",
            "--train.logging_steps=2"]
    assert main(argv) == 0
    for name in ("compare.md", "compare.json", "compare.png"):
        assert (out / name).stat().st_size > 0
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert len(rows) == 4 and sum(r["best"] for r in rows) == 2
    for r in rows:
        params = json.loads((out / r["run"].split("/")[-1] / "params.json").read_text())
        assert r["trainable"] == params["trainable"]
        assert r["artifact_bytes"] > 0
    by = {(r["method"], r["lr"]): r for r in rows}
    assert by[("lora", 1e-3)]["artifact_bytes"] < by[("full", 1e-3)]["artifact_bytes"]
    for m in ("full", "lora"):
        best = max((r for r in rows if r["method"] == m), key=lambda r: r["val_metric"])
        assert best["best"]
    md = (out / "compare.md").read_text()
    assert "budget:" in md and md.count("| full |") == 3  # best table + both sweep rows
