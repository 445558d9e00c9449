"""The real embedded assets, on small subsets: the bundled encoder and the movie reviews."""
import json

import pytest

from tunesmith.cli import main

pytestmark = pytest.mark.integration


def test_builtin_data_sets_load_with_documented_counts():
    from tunesmith.data.builtin import movie_reviews, sms_spam

    rows, info = movie_reviews()
    assert info["dropped_neutral"] == 37
    assert len(rows) == 10568
    assert sum(r["label"] == "positive" for r in rows) == 5242
    spam, _ = sms_spam()
    # The packaged file holds 4,837 messages (ids 0..4836), not the 5,572 of the original UCI set.
    assert len(spam) == 4837 and sum(r["label"] == "spam" for r in spam) == 638


def test_minilm_facts(capsys):
    assert main(["info", "minilm", "--text", "Transfer learning is fun", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert (facts["vocab_size"], facts["layers"], facts["heads"], facts["hidden_size"]) == (30522, 6, 12, 384)
    assert facts["parameters"] == 22713216
    assert facts["texts"][0]["tokens"] == ["[CLS]", "transfer", "learning", "is", "fun", "[SEP]"]


def test_lora_on_minilm_and_movie_reviews_small(tmp_path):
    out = tmp_path / "run"
    assert main(["finetune", "--model", "minilm", "--data", "movie-reviews", "--method", "lora",
                 "--data.max_train=256", "--data.max_eval=128", "--train.max_steps=12", "--batch-size", "16",
                 "--max-length", "64", "--output", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["labels"] == ["negative", "positive"]
    assert report["params"]["groups"]["adapter"]["total"] == 6 * 2 * 8 * (384 + 384)
    assert report["evaluation"]["test"]["n"] == 128
    assert report["data_info"]["dataset"]["dropped_neutral"] == 37
