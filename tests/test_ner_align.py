"""Sub-token label alignment (exact labels per sub-token), windows over long sentences, seqeval
metrics against hand-computed values, and the four span aggregation strategies."""
from __future__ import annotations

import numpy as np
import pytest

from ner_fixtures import make_ner_bert
from tunesmith.data.ner_align import IGNORE, encode_ner, first_subtokens, window_labels, words_from_windows
from tunesmith.evaluate.ner_metrics import entities, entity_confusion, ner_metrics
from tunesmith.infer.ner_spans import entity_spans, group_units

LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
L2I = {l: i for i, l in enumerate(LABELS)}
O, BL, IL, BP, IP = range(5)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(make_ner_bert(tmp_path_factory.mktemp("nerbert") / "m"))


def test_first_subtoken_labels_exactly(tok):
    ex = [{"tokens": ["dave", "visited", "paris"], "tags": ["B-PER", "O", "B-LOC"]}]
    cols = encode_ner(tok, ex, L2I, max_length=32)
    assert tok.convert_ids_to_tokens(cols["input_ids"][0]) == ["[CLS]", "d", "##a", "##v", "##e", "visited", "paris", "[SEP]"]
    assert cols["labels"][0] == [IGNORE, BP, IGNORE, IGNORE, IGNORE, O, BL, IGNORE]


def test_label_all_subtokens_turns_b_into_i(tok):
    ex = [{"tokens": ["dave", "jo", "visited"], "tags": ["B-PER", "I-PER", "O"]}]
    cols = encode_ner(tok, ex, L2I, max_length=32, label_all=True)
    # d ##a ##v ##e j ##o visited
    assert cols["labels"][0] == [IGNORE, BP, IP, IP, IP, IP, IP, O, IGNORE]


def test_long_sentence_is_strided_not_cut(tok):
    words = ["dave", "jones", "visited", "new", "york", "yesterday"]
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]
    cols = encode_ner(tok, [{"tokens": words, "tags": tags}], L2I, max_length=12, stride=4)
    assert len(cols["input_ids"]) == 3 and all(n <= 12 for n in cols["length"])
    toks = [tok.convert_ids_to_tokens(ids) for ids in cols["input_ids"]]
    # window 2 starts mid-word ("##n ##e ##s" of jones): those sub-tokens carry no label
    assert toks[1][:5] == ["[CLS]", "##n", "##e", "##s", "visited"]
    assert cols["labels"][1][:6] == [IGNORE, IGNORE, IGNORE, IGNORE, O, BL]
    # every word is labelled in at least one window, and merging gives back the gold tags
    preds = [[LABELS[l] if l != IGNORE else None for l in row] for row in cols["labels"]]
    assert words_from_windows(cols, preds, 1, [len(words)]) == [tags]


def test_words_from_windows_prefers_the_most_central_window():
    cols = {"sentence": [0, 0], "word_ids": [[-1, 0, 1, -1], [-1, 1, 2, -1]],
            "first": [[False, True, True, False], [False, True, True, False]]}
    # word 1 sits at the right edge of window 0 (margin 1) and position 1 of window 1 (margin 1):
    # tie -> first seen is kept
    out = words_from_windows(cols, [[None, "a", "b", None], [None, "c", "d", None]], 1, [3])
    assert out == [["a", "b", "d"]]


def test_window_labels_doctest_case():
    assert window_labels([None, 0, 0, 1, None], None, ["B-PER", "O"], {"O": 0, "B-PER": 1, "I-PER": 2}) == \
        [IGNORE, 1, IGNORE, 0, IGNORE]
    assert first_subtokens([None, 3, 3, 4], [(0, 0), (2, 4), (4, 5), (0, 3)]) == [False, False, False, True]


# ----------------------------------------------------------------------------- metrics

def test_seqeval_against_hand_counts():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"]]
    m = ner_metrics(gold, pred)
    # gold entities 4 (PER, LOC, ORG, PER); predicted 3 (PER, ORG@LOC place, ORG); correct 2
    assert m["entities"] == 4
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert m["token_accuracy"] == pytest.approx(5 / 7)
    assert m["per_type"]["PER"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["per_type"]["LOC"]["recall"] == 0.0 and m["per_type"]["ORG"]["precision"] == 0.5


def test_strict_mode_differs_from_default():
    gold = [["B-PER", "I-PER", "O"]]
    pred = [["I-PER", "I-PER", "O"]]  # default (conlleval) mode accepts an entity opened by I-
    assert ner_metrics(gold, pred)["f1"] == 1.0
    assert ner_metrics(gold, pred, strict=True)["f1"] == 0.0


def test_entity_confusion():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "B-ORG", "B-PER"]]
    cm, names = entity_confusion(gold, pred)
    assert names == ["LOC", "ORG", "PER", "O"]
    assert cm[names.index("PER")][names.index("PER")] == 1
    assert cm[names.index("LOC")][names.index("PER")] == 1
    assert cm[names.index("O")][names.index("ORG")] == 1  # spurious
    assert entities(["I-PER", "B-PER", "I-LOC"]) == [("PER", 0, 1), ("PER", 1, 2), ("LOC", 2, 3)]


# ----------------------------------------------------------------------------- spans

TEXT = "Jo Smithson ran"
ID2 = dict(enumerate(LABELS))
OFFS = [(0, 0), (0, 2), (3, 8), (8, 11), (12, 15), (0, 0)]  # [CLS] Jo Smith ##son ran [SEP]
WIDS = [None, 0, 1, 1, 2, None]


def probs(rows):
    return np.array(rows, dtype=np.float32)


P = probs([[1, 0, 0, 0, 0],
           [.1, 0, 0, .9, 0],     # Jo      B-PER .9
           [.2, 0, 0, 0, .8],     # Smith   I-PER .8
           [.3, .7, 0, 0, 0],     # ##son   B-LOC .7
           [.95, 0, 0, .05, 0],   # ran     O
           [1, 0, 0, 0, 0]])


def test_aggregation_simple_labels_subtokens_alone():
    out = entity_spans(TEXT, P, OFFS, WIDS, ID2, "simple")
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in out] == \
        [("PER", "Jo Smith", 0, 8), ("LOC", "son", 8, 11)]
    assert out[0]["score"] == pytest.approx(0.85)


def test_aggregation_first():
    out = entity_spans(TEXT, P, OFFS, WIDS, ID2, "first")
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in out] == [("PER", "Jo Smithson", 0, 11)]
    assert out[0]["score"] == pytest.approx((0.9 + 0.8) / 2)


def test_aggregation_max_takes_the_most_confident_subtoken():
    p = P.copy()
    p[3] = [.05, .95, 0, 0, 0]  # ##son B-LOC .95 beats Smith I-PER .8
    out = entity_spans(TEXT, p, OFFS, WIDS, ID2, "max")
    assert [(e["entity_group"], e["word"]) for e in out] == [("PER", "Jo"), ("LOC", "Smithson")]
    assert out[1]["score"] == pytest.approx(0.95)


def test_aggregation_average():
    out = entity_spans(TEXT, P, OFFS, WIDS, ID2, "average")
    # Smithson averages to O .25, B-LOC .35, I-PER .4 -> I-PER continues Jo's entity
    assert [(e["entity_group"], e["word"]) for e in out] == [("PER", "Jo Smithson")]
    assert out[0]["score"] == pytest.approx((0.9 + 0.4) / 2)


def test_group_units_breaks_on_type_change_and_b():
    units = [("B-PER", .9, 0, 2), ("I-LOC", .8, 3, 5), ("B-LOC", .7, 6, 8), ("O", 1, 9, 10)]
    out = group_units(units, "Jo Li Pa x")
    assert [(e["entity_group"], e["word"]) for e in out] == [("PER", "Jo"), ("LOC", "Li"), ("LOC", "Pa")]
