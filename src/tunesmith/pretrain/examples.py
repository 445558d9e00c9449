"""Turn documents into training examples: MLM pieces (or packed blocks) and CLM blocks.

No example carries padding: MLM pieces are padded per batch by the collator (and batches are
grouped by length), packed MLM blocks and CLM blocks are all exactly full.
"""
from __future__ import annotations

from itertools import chain


def _word_ids(enc, i: int) -> list[int]:
    return [-1 if w is None else w for w in enc.word_ids(i)]


def mlm_examples(tokenizer, docs: list[str], max_length: int, group: bool = False,
                 chunk: int = 500) -> list[dict]:
    """One example per piece of at most max_length tokens ([CLS] ... [SEP]); with group=True the
    documents are concatenated and cut into full max_length blocks (run_mlm.py's default).

    Example:
        >>> ex = mlm_examples(tok, ["A short text.", "Another one."], 128)
        >>> sorted(ex[0])
        ['input_ids', 'length', 'word_ids']
    """
    out: list[dict] = []
    for start in range(0, len(docs), chunk):
        enc = tokenizer(docs[start:start + chunk], truncation=True, max_length=max_length,
                        return_overflowing_tokens=True, return_attention_mask=False,
                        return_token_type_ids=False, verbose=False)
        for i, ids in enumerate(enc["input_ids"]):
            out.append({"input_ids": ids, "word_ids": _word_ids(enc, i), "length": len(ids)})
    return pack_blocks(out, max_length) if group else out


def pack_blocks(examples: list[dict], size: int) -> list[dict]:
    """Concatenate examples and cut into blocks of exactly `size` (the remainder is dropped);
    word ids are offset so that words of different examples never share an id."""
    ids, words, offset = [], [], 0
    for ex in examples:
        ids.extend(ex["input_ids"])
        words.extend(w + offset if w >= 0 else -1 for w in ex["word_ids"])
        offset += max(ex["word_ids"], default=-1) + 1
    n = len(ids) // size
    return [{"input_ids": ids[i * size:(i + 1) * size], "word_ids": _renumber(words[i * size:(i + 1) * size]),
             "length": size} for i in range(n)]


def _renumber(words: list[int]) -> list[int]:
    """Word ids 0..k-1 within a block (keeps the per-batch word table small)."""
    table: dict[int, int] = {}
    return [-1 if w < 0 else table.setdefault(w, len(table)) for w in words]


def clm_blocks(tokenizer, docs: list[str], block_size: int, chunk: int = 500) -> list[dict]:
    """Documents joined with the EOS token and cut into blocks of exactly block_size tokens
    (run_clm.py's `group_texts`): no padding anywhere.

    Example:
        >>> blocks = clm_blocks(tok, docs, 128)
        >>> {len(b["input_ids"]) for b in blocks}
        {128}
    """
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    pieces: list[list[int]] = []
    for start in range(0, len(docs), chunk):
        enc = tokenizer(docs[start:start + chunk], add_special_tokens=False, return_attention_mask=False,
                        verbose=False)
        pieces.extend(ids + eos for ids in enc["input_ids"])
    flat = list(chain.from_iterable(pieces))
    n = len(flat) // block_size
    return [{"input_ids": flat[i * block_size:(i + 1) * block_size], "length": block_size} for i in range(n)]
