"""Next-sentence-prediction pairs: 50% the true next sentence, 50% a sentence of another document.

Labels follow transformers' BertForPreTraining: 0 = IsNext (B continues A), 1 = NotNext.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from .corpus import split_sentences

IS_NEXT, NOT_NEXT = 0, 1


@dataclass(frozen=True)
class Pair:
    """Sentence A (document a_doc, sentence a_index), sentence B and where it came from."""

    a: str
    b: str
    label: int
    a_doc: int
    a_index: int
    b_doc: int
    b_index: int


def build_pairs(docs: list[list[str]], per_doc: int, rng: random.Random) -> list[Pair]:
    """Up to `per_doc` pairs from every document of >= 2 sentences; needs >= 2 documents.

    Example:
        >>> docs = [["It rained.", "We stayed in."], ["Cats purr.", "Dogs bark."]]
        >>> pairs = build_pairs(docs, 1, random.Random(0))
        >>> all(p.label in (0, 1) for p in pairs)
        True
    """
    others = [d for d in range(len(docs)) if docs[d]]
    pairs = []
    for d, sents in enumerate(docs):
        if len(sents) < 2 or len(others) < 2:
            continue
        for _ in range(per_doc):
            i = rng.randrange(len(sents) - 1)
            if rng.random() < 0.5:
                pairs.append(Pair(sents[i], sents[i + 1], IS_NEXT, d, i, d, i + 1))
                continue
            k = d
            while k == d:
                k = rng.choice(others)
            j = rng.randrange(len(docs[k]))
            pairs.append(Pair(sents[i], docs[k][j], NOT_NEXT, d, i, k, j))
    return pairs


def document_sentences(docs: list[str]) -> list[list[str]]:
    return [split_sentences(d) for d in docs]


def nsp_examples(tokenizer, pairs: list[Pair], max_length: int) -> list[dict]:
    """Tokenised pairs ([CLS] A [SEP] B [SEP], token types 0/1) with next_sentence_label."""
    enc = tokenizer([p.a for p in pairs], [p.b for p in pairs], truncation="longest_first",
                    max_length=max_length, return_attention_mask=False, return_token_type_ids=True,
                    verbose=False)
    out = []
    for i, p in enumerate(pairs):
        ids = enc["input_ids"][i]
        words = enc.word_ids(i)
        seq = enc.sequence_ids(i)
        # word ids restart in segment B: shift them so A's and B's words never share an id
        shift = 1 + max((w for w, s in zip(words, seq) if s == 0 and w is not None), default=-1)
        wid = [-1 if w is None else (w + shift if s == 1 else w) for w, s in zip(words, seq)]
        out.append({"input_ids": ids, "token_type_ids": enc["token_type_ids"][i], "word_ids": wid,
                    "next_sentence_label": p.label, "length": len(ids)})
    return out
