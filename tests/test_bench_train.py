"""`tunesmith bench train` end to end on the tiny BERT: the arms' table and the repeated
time-to-accuracy phase (seeds), without timing anything."""
from __future__ import annotations


def test_bench_train_arms_and_seeded_time_to_accuracy(tmp_path, tiny_bert, sentiment_csv, capsys):
    from tunesmith.cli import main

    md = tmp_path / "bench.md"
    assert main(["bench", "train", "--model", str(tiny_bert), "--data", str(sentiment_csv), "--arms", "b,c,c-fp32",
                 "--samples", "32", "--rounds", "1", "--max-length", "16", "--to-accuracy", "0.0",
                 "--eval-every", "2", "--seeds", "1,2", "--accuracy-train", "64", "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    arms = [line for line in out.splitlines() if line.startswith("| (")]
    assert any(a.startswith("| (b) Trainer best practice") and "| 1.00 |" in a for a in arms)
    assert any(a.startswith("| (c) tunesmith fp32 | fp32 |") for a in arms)
    assert all(a.count("|") == 10 for a in arms if "samples" not in a and a.split("|")[2].strip() in ("fp32", "bf16"))
    per_seed = [a for a in arms if a.count("|") == 7]
    assert sorted((a.split("|")[1].strip()[:3], a.split("|")[2].strip()) for a in per_seed) == \
        [("(b)", "1"), ("(b)", "2"), ("(c)", "1"), ("(c)", "2")]
    # accuracy 0.0 is reached at the first evaluation, step 2, by every arm and seed
    assert all(a.split("|")[3].strip() == "2" for a in per_seed)
    assert "mean" in out and "sd" in out and "(c) - (b):" in out
    assert "per seed:" in out and md.read_text().count("| (") == len(arms)
