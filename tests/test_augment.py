"""Data augmentation: EDA operations are deterministic under a seed, only the training split is
augmented, the WordNet reader parses the real file format, mixup trains, model hooks explain
what they need."""
import copy
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from tunesmith.config import AugmentConfig
from tunesmith.data import augment as A
from tunesmith.data.labelled import LabelledData
from tunesmith.errors import TunesmithError

SYN = A.table_synonyms({"good": ["fine", "decent"], "film": ["movie", "picture"], "dull": ["boring"]})
ROWS = [{"text": "a good film with a dull ending", "label": "pos", "_line": 2},
        {"text": "the film was good", "label": "pos", "_line": 3},
        {"text": "dull", "label": "neg", "_line": 4}]


def test_operations_deterministic_under_seed():
    cfg = AugmentConfig(ops=["eda"], copies=3)
    a = A.augment_rows(ROWS, cfg, seed=7, synonyms=SYN)
    b = A.augment_rows(ROWS, cfg, seed=7, synonyms=SYN)
    c = A.augment_rows(ROWS, cfg, seed=8, synonyms=SYN)
    assert a == b
    assert a != c
    assert a[:3] == ROWS and all(r["_augmented"] for r in a[3:])
    assert all(r["label"] == next(o["label"] for o in ROWS if o["_line"] == r["_line"]) for r in a)


def test_each_operation():
    words = "a good film with a dull ending".split()
    rng = random.Random(0)
    rep = A.synonym_replacement(words, 2, SYN, rng)
    changed = [(w, r) for w, r in zip(words, rep) if w != r]
    assert len(changed) == 2 and all(r in SYN(w) for w, r in changed)
    assert A.synonym_replacement(["a", "the"], 2, A.table_synonyms({"a": ["x"]}), rng) == ["a", "the"]  # stop words
    ins = A.random_insertion(words, 2, SYN, rng)
    assert len(ins) == len(words) + 2 and Counter(ins) - Counter(words)
    sw = A.random_swap(words, 3, rng)
    assert Counter(sw) == Counter(words)
    assert A.random_deletion(words, 0.0, rng) == words
    assert len(A.random_deletion(words, 0.999, rng)) == 1  # never empty
    with pytest.raises(TunesmithError, match="unknown augmentation"):
        A.expand_ops(["nonsense"])


def test_only_the_training_split_is_augmented():
    data = LabelledData(splits={"train": copy.deepcopy(ROWS),
                                "validation": [{"text": "good film", "label": "pos", "_line": 9}],
                                "test": [{"text": "dull film", "label": "neg", "_line": 10}]},
                        labels=["neg", "pos"])
    before = copy.deepcopy(data.splits)
    cfg = AugmentConfig(ops=["swap", "delete"], copies=2)
    rows = A.augmented_train_rows(data, cfg, seed=1)
    assert data.splits == before  # nothing changed in place, validation/test included
    assert len(rows) > len(ROWS)
    val_test = {r["text"] for s in ("validation", "test") for r in data.splits[s]}
    assert not any(r["text"] in val_test for r in rows[len(ROWS):] if r["text"] not in {x["text"] for x in ROWS})
    assert {r["_line"] for r in rows} <= {r["_line"] for r in ROWS}
    assert A.augmented_train_rows(data, AugmentConfig(), seed=1) == data.splits["train"]


def write_wndb(root: Path) -> Path:
    """A two-synset WordNet database in the real wndb format (byte offsets included)."""
    root.mkdir()
    header = "  1 This software and database is being provided...\n"
    lines = ["{off} 00 a 03 good 0 full(a) 0 estimable 0 000 | having desirable qualities\n",
             "{off} 00 s 02 good 0 beneficial 0 000 | promoting benefit\n"]
    data, offsets = header, []
    for line in lines:
        offsets.append(len(data.encode()))
        data += line.format(off=f"{offsets[-1]:08d}")
    (root / "data.adj").write_text(data)
    (root / "index.adj").write_text(header + f"good a 2 0 2 2 {offsets[0]:08d} {offsets[1]:08d}\n")
    for pos in ("noun", "verb", "adv"):
        (root / f"index.{pos}").write_text(header)
        (root / f"data.{pos}").write_text(header)
    return root


def test_wordnet_reader_parses_wndb(tmp_path):
    syn = A.WordNetSynonyms(str(write_wndb(tmp_path / "dict")))
    assert syn("good") == ["full", "estimable", "beneficial"]
    assert syn("Good") == syn("good") and syn("unknown") == []
    with pytest.raises(TunesmithError, match="wordnet-base"):
        A.WordNetSynonyms(str(tmp_path / "missing"))


@pytest.mark.skipif(not Path("/usr/share/wordnet/index.noun").is_file(), reason="wordnet-base not installed")
def test_real_wordnet_when_installed():
    syn = A.WordNetSynonyms("/usr/share/wordnet")
    assert "movie" in syn("film") and "boring" in syn("dull")


def test_model_hooks_need_a_model():
    data = LabelledData(splits={"train": copy.deepcopy(ROWS)}, labels=["neg", "pos"])
    with pytest.raises(TunesmithError, match="paraphrase_model=PATH"):
        A.augmented_train_rows(data, AugmentConfig(ops=["paraphrase"]), seed=0)
    with pytest.raises(TunesmithError, match="translation_models=TO_PATH,BACK_PATH"):
        A.augmented_train_rows(data, AugmentConfig(ops=["back-translation"]), seed=0)


def test_paraphrase_hook_runs_a_local_causal_lm(tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from conftest import make_tiny_bert

    tok = AutoTokenizer.from_pretrained(make_tiny_bert(tmp_path / "bert"))
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=128,
                               pad_token_id=0)).save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    from tunesmith.data import augment_models

    texts = [r["text"] for r in ROWS]
    out = augment_models.paraphrase(texts, str(tmp_path / "lm"))  # a random model: any strings
    assert len(out) == len(texts) and all(isinstance(t, str) for t in out)


def test_model_variants_are_added_to_training_rows(monkeypatch):
    from tunesmith.data import augment_models

    monkeypatch.setattr(augment_models, "paraphrase", lambda texts, path: [t.upper() for t in texts])
    monkeypatch.setattr(augment_models, "back_translate", lambda texts, a, b: [t[::-1] for t in texts])
    data = LabelledData(splits={"train": copy.deepcopy(ROWS)}, labels=["neg", "pos"])
    cfg = AugmentConfig(ops=["paraphrase", "back-translation"], paraphrase_model="p", translation_models=["a", "b"])
    rows = A.augmented_train_rows(data, cfg, seed=0)
    assert [r["text"] for r in rows[3:6]] == [r["text"].upper() for r in ROWS]
    assert [r["text"] for r in rows[6:]] == [r["text"][::-1] for r in ROWS]
    assert [r["label"] for r in rows[3:6]] == [r["label"] for r in ROWS]


def test_mixup_batch_and_loss():
    from tunesmith.adapt.mixup import mixup_batch

    e = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2)
    m = torch.tensor([[1, 1, 0], [1, 1, 1]])
    mixed, mask = mixup_batch(e, m, 0.25, torch.tensor([1, 0]))
    assert torch.allclose(mixed[0], 0.25 * e[0] + 0.75 * e[1])
    assert mask.tolist() == [[1, 1, 1], [1, 1, 1]]


def test_finetune_with_eda_and_mixup(tiny_bert, sentiment_csv, tmp_path, capsys):
    import json

    from tunesmith.cli import main

    syn_dir = write_wndb(tmp_path / "wn")
    out = tmp_path / "run"
    argv = ["finetune", "--model", str(tiny_bert), "--data", str(sentiment_csv), "--method", "full",
            "--output", str(out), "--epochs", "1", "--batch-size", "16", "--lr", "5e-3",
            "--augment.ops=eda,mixup", "--augment.copies=2", f"--augment.wordnet={syn_dir}"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    n_train = report["data_info"]["sizes"]["train"]
    assert report["training"]["examples"] == n_train  # original size reported; variants are extra
    assert report["evaluation"]["validation"]["n"] == report["data_info"]["sizes"]["validation"]
    out = capsys.readouterr().out
    assert f"augmentation (eda, mixup): {n_train:,} training examples + " in out
    added = int(out.split(f"{n_train:,} training examples + ")[1].split()[0].replace(",", ""))
    assert 0 < added <= 2 * n_train
