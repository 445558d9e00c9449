"""Word-level NER tags -> labels per sub-word token, in windows that stride over long sentences.

The convention (as in the transformers NER examples): the first sub-token of each word carries
the word's label, later sub-tokens and special tokens get -100 (ignored by the loss) unless
`label_all` is set, in which case they get the word's label with B- turned into I-.
A sentence longer than the window is not cut: it is split into overlapping windows
(`stride` tokens of overlap), each word labelled in every window that holds its first sub-token.
"""
from __future__ import annotations

IGNORE = -100


def continuation_label(tag: str) -> str:
    """The label for a word's later sub-tokens under label_all: B-X -> I-X."""
    return "I-" + tag[2:] if tag.startswith("B-") else tag


def first_subtokens(word_ids: list[int | None], offsets: list[tuple[int, int]] | None = None) -> list[bool]:
    """True where a token starts a word: its word id differs from the previous token's, except at
    the start of a window that begins mid-word (its character offset inside the word is > 0).

    Example:
        >>> first_subtokens([None, 0, 0, 1, None])
        [False, True, False, True, False]
    """
    out, prev = [], None
    for k, wid in enumerate(word_ids):
        mid_word_start = prev is None and offsets is not None and k > 0 and offsets[k][0] > 0
        out.append(wid is not None and wid != prev and not mid_word_start)
        prev = wid
    return out


def window_labels(word_ids: list[int | None], offsets: list[tuple[int, int]] | None, tags: list[str],
                  label2id: dict[str, int], label_all: bool = False) -> list[int]:
    """Label ids for one window of tokens: the word's label on its first sub-token, -100 elsewhere
    (with label_all: the continuation label on later sub-tokens too).

    Example:
        >>> window_labels([None, 0, 0, 1, None], None, ["B-PER", "O"], {"O": 0, "B-PER": 1, "I-PER": 2})
        [-100, 1, -100, 0, -100]
    """
    firsts = first_subtokens(word_ids, offsets)
    out = []
    for wid, first in zip(word_ids, firsts):
        if wid is None:
            out.append(IGNORE)
        elif first:
            out.append(label2id[tags[wid]])
        else:
            out.append(label2id[continuation_label(tags[wid])] if label_all else IGNORE)
    return out


def encode_words(tokenizer, sentences: list[list[str]], max_length: int, stride: int):
    """Tokenise pre-split sentences into overlapping windows; returns the BatchEncoding with
    `overflow_to_sample_mapping` (window -> sentence) and word ids per window."""
    # the overlap must leave room for new tokens in each window (special tokens take ~2 places)
    stride = max(0, min(stride, (max_length - 2) // 2))
    return tokenizer(sentences, is_split_into_words=True, truncation=True, max_length=max_length,
                     stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True)


def encode_ner(tokenizer, examples: list[dict], label2id: dict[str, int], max_length: int = 128,
               stride: int = 32, label_all: bool = False) -> dict[str, list]:
    """Examples ({tokens, tags}) -> columns input_ids, attention_mask, labels, length, sentence, word_ids.

    Example:
        >>> cols = encode_ner(tok, [{"tokens": ["Jo", "ran"], "tags": ["B-PER", "O"]}], label2id)
        >>> cols["labels"][0]
        [-100, 1, 0, -100]
    """
    enc = encode_words(tokenizer, [ex["tokens"] for ex in examples], max_length, stride)
    cols: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": [], "length": [],
                             "sentence": [], "word_ids": [], "first": []}
    for w, sent in enumerate(enc["overflow_to_sample_mapping"]):
        word_ids = enc.word_ids(w)
        cols["input_ids"].append(enc["input_ids"][w])
        cols["attention_mask"].append(enc["attention_mask"][w])
        cols["labels"].append(window_labels(word_ids, enc["offset_mapping"][w], examples[sent]["tags"],
                                            label2id, label_all))
        cols["length"].append(len(enc["input_ids"][w]))
        cols["sentence"].append(sent)
        cols["word_ids"].append([-1 if x is None else x for x in word_ids])
        cols["first"].append(first_subtokens(word_ids, enc["offset_mapping"][w]))
    return cols


def words_from_windows(cols: dict[str, list], token_preds: list[list], n_sentences: int,
                       n_words: list[int]) -> list[list]:
    """Per-window token predictions -> one prediction per word of each sentence.

    A word seen in several overlapping windows takes the prediction from the window where its
    first sub-token sits farthest from a window edge (the most context on both sides).
    `token_preds[w][k]` is any per-token value (a tag, a probability vector).
    """
    best: list[dict[int, tuple[int, object]]] = [dict() for _ in range(n_sentences)]
    for w, sent in enumerate(cols["sentence"]):
        word_ids, firsts = cols["word_ids"][w], cols["first"][w]
        n = len(word_ids)
        for k, (wid, first) in enumerate(zip(word_ids, firsts)):
            if not first:
                continue
            margin = min(k, n - 1 - k)
            if wid not in best[sent] or margin > best[sent][wid][0]:
                best[sent][wid] = (margin, token_preds[w][k])
    return [[best[s][i][1] if i in best[s] else None for i in range(n_words[s])] for s in range(n_sentences)]
