"""Masking statistics of the pre-training collators, over many tokens with a fixed generator."""
from __future__ import annotations

import random

import pytest
import torch

from tunesmith.pretrain.collators import MaskingSpec, MLMCollator, clm_collate, mask_tokens

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 2000


def make_collator(spec: MaskingSpec, seed: int = 0, pad_to: int | None = None) -> MLMCollator:
    pool = torch.arange(5, VOCAB)
    return MLMCollator(PAD, MASK, frozenset({PAD, UNK, CLS, SEP, MASK}), pool, spec,
                       torch.Generator().manual_seed(seed), pad_to)


def features(n: int = 600, seed: int = 1) -> list[dict]:
    """Rows of varying length ([CLS] ... [SEP]); words of 1-3 pieces (word_ids)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ids, words, w, target = [CLS], [-1], 0, rng.randint(20, 140)
        while len(ids) < target:
            for _ in range(rng.randint(1, 3)):
                ids.append(rng.randrange(5, VOCAB))
                words.append(w)
            w += 1
        out.append({"input_ids": ids + [SEP], "word_ids": words + [-1]})
    return out


def outcome(batch: dict, feats: list[dict]) -> dict:
    """Counts of selected tokens and how they were corrupted, from a collated batch."""
    orig = torch.full_like(batch["input_ids"], PAD)
    for i, f in enumerate(feats):
        orig[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
    sel = batch["labels"] != -100
    real = (batch["attention_mask"] == 1) & (orig != CLS) & (orig != SEP)
    x = batch["input_ids"]
    return {"selected": sel, "real": real, "orig": orig,
            "mask": (sel & (x == MASK)).sum().item(), "kept": (sel & (x == orig)).sum().item(),
            "random": (sel & (x != MASK) & (x != orig)).sum().item(), "n_sel": sel.sum().item(),
            "n_real": real.sum().item()}


@pytest.mark.parametrize("whole_word", [False, True])
def test_selected_share_and_80_10_10(whole_word):
    feats = features()
    batch = make_collator(MaskingSpec(whole_word=whole_word))(feats)
    o = outcome(batch, feats)
    assert o["n_real"] > 40_000
    assert abs(o["n_sel"] / o["n_real"] - 0.15) < 0.01
    assert abs(o["mask"] / o["n_sel"] - 0.8) < 0.02
    assert abs(o["random"] / o["n_sel"] - 0.1) < 0.015
    assert abs(o["kept"] / o["n_sel"] - 0.1) < 0.015
    # labels hold the original token exactly where selected, -100 elsewhere
    assert torch.equal(batch["labels"][o["selected"]], o["orig"][o["selected"]])


def test_specials_and_padding_never_selected():
    feats = features(300)
    batch = make_collator(MaskingSpec(probability=0.9), seed=3)(feats)
    o = outcome(batch, feats)
    assert not (o["selected"] & ~o["real"]).any()
    pad = batch["attention_mask"] == 0
    assert pad.any() and (batch["input_ids"][pad] == PAD).all()
    # random replacements never produce special tokens
    x = batch["input_ids"][o["selected"]]
    assert not torch.isin(x, torch.tensor([PAD, UNK, CLS, SEP])).any()


def test_configurable_split():
    feats = features(300)
    batch = make_collator(MaskingSpec(probability=0.3, mask_replace=0.5, random_replace=0.4), seed=5)(feats)
    o = outcome(batch, feats)
    assert abs(o["n_sel"] / o["n_real"] - 0.3) < 0.01
    assert abs(o["mask"] / o["n_sel"] - 0.5) < 0.02
    assert abs(o["random"] / o["n_sel"] - 0.4) < 0.02


def test_whole_words_masked_together():
    feats = features(300)
    batch = make_collator(MaskingSpec(whole_word=True), seed=7)(feats)
    sel = batch["labels"] != -100
    chosen_words, total_words, multi = 0, 0, 0
    for i, f in enumerate(feats):
        by_word: dict[int, set] = {}
        for pos, w in enumerate(f["word_ids"]):
            if w >= 0:
                by_word.setdefault(w, set()).add(bool(sel[i, pos]))
        for w, flags in by_word.items():
            assert len(flags) == 1, f"row {i}: word {w} partly selected"
            total_words += 1
            chosen_words += flags == {True}
        multi += sum(1 for w in by_word if f["word_ids"].count(w) > 1 and sel[i, f["word_ids"].index(w)])
    assert abs(chosen_words / total_words - 0.15) < 0.012
    assert multi > 100  # multi-piece words really were selected (whole)


def test_same_generator_seed_same_masks_and_pad_to():
    feats = features(20)
    a = make_collator(MaskingSpec(), seed=11)(feats)
    b = make_collator(MaskingSpec(), seed=11)(feats)
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
    fixed = make_collator(MaskingSpec(), pad_to=128)(feats)
    assert fixed["input_ids"].shape == (20, 128)


def test_mask_tokens_without_selection_changes_nothing():
    ids = torch.randint(5, 50, (4, 16))
    x, y = mask_tokens(ids, torch.zeros_like(ids, dtype=torch.bool), MaskingSpec(), MASK, torch.arange(5, 50),
                       torch.Generator().manual_seed(0))
    assert torch.equal(x, ids) and (y == -100).all()


def test_nsp_fields_pass_through():
    feats = [{"input_ids": [CLS, 9, SEP, 10, SEP], "token_type_ids": [0, 0, 0, 1, 1], "next_sentence_label": 1},
             {"input_ids": [CLS, 9, SEP, 11, 12, SEP], "token_type_ids": [0, 0, 0, 1, 1, 1], "next_sentence_label": 0}]
    batch = make_collator(MaskingSpec())(feats)
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 1]]
    assert batch["next_sentence_label"].tolist() == [1, 0]


def test_clm_collate_labels_are_inputs():
    batch = clm_collate([{"input_ids": [5, 6, 7]}, {"input_ids": [8, 9, 10]}])
    assert torch.equal(batch["labels"], batch["input_ids"]) and batch["attention_mask"].all()


def test_transformers_collator_measured_same_token_statistics(tiny_bert):
    """transformers' DataCollatorForLanguageModeling (seeded) gives the same token-level statistics:
    our collator differs in the explicit generator, whole-word 80/10/10 and the random pool."""
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    feats = [{"input_ids": f["input_ids"]} for f in features(300)]
    for f in feats:  # keep ids inside the tiny vocabulary
        f["input_ids"] = [CLS] + [5 + (t % (len(tok) - 5)) for t in f["input_ids"][1:-1]] + [SEP]
    hf = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, seed=0)(feats)
    o = outcome(hf, feats)
    assert abs(o["n_sel"] / o["n_real"] - 0.15) < 0.01
    assert abs(o["mask"] / o["n_sel"] - 0.8) < 0.025
