"""Shared fixtures: tiny random models built from a config and small data written by the tests.

Nothing here downloads. The tiny BERT has a real WordPiece tokenizer over a small vocabulary,
so every code path (tokenise, pad, train, save, reload) runs as it does on a real model.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

POS = "good great wonderful superb lovely brilliant moving charming delightful fun".split()
NEG = "bad awful boring dull terrible tedious weak clumsy bland lifeless".split()
FILLER = ("the a film movie story plot acting was is and but very quite it this so really its "
          "cast script ending music scenes director of with to in an at for").split()
WORDS = POS + NEG + FILLER


def write_vocab(path: Path, extra: list[str] = ()) -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()")
    words = sorted(set(WORDS) | set(extra))
    vocab = specials + words + [c for c in letters if c not in words] + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    path.write_text("\n".join(vocab) + "\n")
    return vocab


def make_tiny_bert(directory: Path, seed: int = 0, extra_words: list[str] = ()) -> Path:
    """A 2-layer, hidden-32 BERT (no head, like the bundled encoder) plus its tokenizer."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = write_vocab(directory / "vocab.txt", extra_words)
    # transformers 5 ignores vocab_file= here (silently: a 5-token vocabulary); pass the mapping.
    tok = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    tok.model_max_length = 128
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=37, max_position_embeddings=128, pad_token_id=0)
    BertModel(cfg).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


# Hypothesis keeps no example database and writes its caches (unicode tables) into a temporary
# directory, not .hypothesis/ in the working directory.
try:
    import tempfile

    from hypothesis import settings as _hypothesis_settings
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="tunesmith-hypothesis-"))
    _hypothesis_settings.register_profile("tunesmith", database=None)
    _hypothesis_settings.load_profile("tunesmith")
except ImportError:  # the dev extra is not installed: the fuzz modules skip themselves
    pass

# What pytest itself writes into the working directory; tests write nothing there (tmp_path).
PYTEST_OWN = {".pytest_cache", "__pycache__"}


@pytest.fixture(autouse=True)
def _nothing_written_to_the_working_directory():
    """Fail the test that leaves a new file or folder in the directory pytest was started from
    (e.g. a fine-tuning run without --output writes runs/ there)."""
    cwd = Path.cwd()
    before = set(os.listdir(cwd))
    yield
    new = set(os.listdir(cwd)) - before - PYTEST_OWN
    assert not new, f"the test wrote {sorted(new)} into the working directory {cwd}; use tmp_path"


@pytest.fixture(scope="session")
def _tiny_bert_master(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert-master") / "model")


@pytest.fixture
def tiny_bert(_tiny_bert_master, tmp_path) -> Path:
    """A fresh copy per test (tests may write into it)."""
    dst = tmp_path / "tiny-bert"
    shutil.copytree(_tiny_bert_master, dst)
    return dst


@pytest.fixture
def tok(tiny_bert):
    """The tiny BERT's tokenizer."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


def tiny_classifier(tiny_bert: Path, **cfg):
    """A 3-label sequence classifier on the tiny BERT, seeded head, eval mode."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(tiny_bert, num_labels=3, **cfg)
    torch.manual_seed(1)
    return AutoModelForSequenceClassification.from_pretrained(tiny_bert, config=config).eval()


def sentiment_rows(n: int, seed: int = 0) -> list[dict]:
    """Separable toy sentiment: positive rows use POS words, negative rows NEG words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        words = rng.sample(FILLER, 4) + rng.sample(POS if label == "positive" else NEG, 2)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_csv(path: Path, rows: list[dict], fields=("text", "label")) -> Path:
    """rows as a CSV file with a header (the tests' labelled data)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def sentiment_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(120))


def crash_training_at_step(monkeypatch, step: int):
    """Make TunesmithTrainer's training step `step` (counted from this call) raise KeyboardInterrupt, as
    a kill would; returns the function that puts the real step back."""
    from tunesmith.trainer import TunesmithTrainer

    original, calls = TunesmithTrainer.training_step, {"n": 0}

    def crashing(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt
        return original(self, *a, **kw)

    monkeypatch.setattr(TunesmithTrainer, "training_step", crashing)
    return lambda: monkeypatch.setattr(TunesmithTrainer, "training_step", original)
