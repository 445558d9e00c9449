"""Pure collators for pre-training: `list[dict] -> dict[str, Tensor]` with an explicit generator.

Why not transformers' `DataCollatorForLanguageModeling` (5.24)? It was read and measured
(tests/test_collators.py checks that both give the same token-level statistics):
  * it takes an int `seed` and builds its own generator (or uses the global RNG), so a caller
    cannot hand it a `torch.Generator`, and its stream depends on the process it runs in;
  * with `whole_word_mask=True` it forces `mask_replace_prob=1` (no 80/10/10 for whole words,
    unlike BERT's reference `create_pretraining_data.py`) and finds words from character
    offsets, so "France." is one word while BERT's own pre-tokenizer makes it two;
  * its random replacements are drawn from the whole vocabulary, special tokens included.
So the masking below is ~40 lines: token-level or whole-word selection, the configurable
replace split, special and padding tokens never selected, labels -100 off the selected positions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskingSpec:
    """What to select and how to corrupt it (BERT: 15%, then 80% [MASK] / 10% random / 10% kept)."""

    probability: float = 0.15
    mask_replace: float = 0.8
    random_replace: float = 0.1
    whole_word: bool = False


def select_positions(selectable: torch.Tensor, word_ids: torch.Tensor | None, p: float,
                     generator: torch.Generator) -> torch.Tensor:
    """Bernoulli(p) per token, or per word (every piece of a drawn word) when word_ids is given.

    selectable: (batch, seq) bool; word_ids: (batch, seq) long, -1 on special/padding tokens.
    """
    if word_ids is None:
        draw = torch.rand(selectable.shape, generator=generator) < p  # (batch, seq)
        return draw & selectable
    n_words = int(word_ids.max().item()) + 1 if word_ids.numel() else 0
    word_draw = torch.rand((word_ids.shape[0], max(n_words, 1)), generator=generator) < p  # (batch, words)
    chosen = torch.gather(word_draw, 1, word_ids.clamp(min=0))  # (batch, seq): the word's draw
    return chosen & (word_ids >= 0) & selectable


def mask_tokens(input_ids: torch.Tensor, selectable: torch.Tensor, spec: MaskingSpec, mask_id: int,
                random_pool: torch.Tensor, generator: torch.Generator,
                word_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Select and corrupt positions; returns (corrupted inputs, labels with -100 off the selection).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> ids = torch.tensor([[2, 7, 8, 9, 3]]); sel = torch.tensor([[0, 1, 1, 1, 0]]).bool()
        >>> x, y = mask_tokens(ids, sel, MaskingSpec(0.5), 4, torch.arange(5, 10), g)
    """
    selected = select_positions(selectable, word_ids if spec.whole_word else None, spec.probability, generator)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    u = torch.rand(input_ids.shape, generator=generator)  # one draw decides mask / random / keep
    to_mask = selected & (u < spec.mask_replace)
    to_random = selected & (u >= spec.mask_replace) & (u < spec.mask_replace + spec.random_replace)
    random_ids = random_pool[torch.randint(len(random_pool), input_ids.shape, generator=generator)]
    out = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    out = torch.where(to_random, random_ids, out)
    return out, labels


def pad_sequences(rows: list[list[int]], value: int, length: int) -> torch.Tensor:
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r[:length], dtype=torch.long)
    return out


@dataclass
class MLMCollator:
    """Pads a batch (to its longest example, or to `pad_to`), then masks it.

    Features: `input_ids`; optional `word_ids` (-1 on specials; needed for whole-word masking),
    `token_type_ids` and `next_sentence_label` (mlm+nsp) are passed through.

    Example:
        >>> c = MLMCollator.from_tokenizer(tok, MaskingSpec(), torch.Generator().manual_seed(0))
        >>> batch = c([{"input_ids": [101, 2009, 102]}])  # input_ids, attention_mask, labels
    """

    pad_id: int
    mask_id: int
    special_ids: frozenset[int]
    random_pool: torch.Tensor  # ids a random replacement may take (the vocabulary minus specials)
    spec: MaskingSpec
    generator: torch.Generator
    pad_to: int | None = None  # pad every batch to this length (the `pad_to_max_length` baseline)

    @classmethod
    def from_tokenizer(cls, tokenizer, spec: MaskingSpec, generator: torch.Generator,
                       pad_to: int | None = None) -> "MLMCollator":
        if tokenizer.mask_token_id is None:
            from ..errors import TunesmithError

            raise TunesmithError("the tokenizer has no mask token: masked LM needs one (use --objective.name=clm "
                                 "for a causal model)")
        special = frozenset(tokenizer.all_special_ids)
        pool = torch.tensor([i for i in range(len(tokenizer)) if i not in special], dtype=torch.long)
        return cls(tokenizer.pad_token_id, tokenizer.mask_token_id, special, pool, spec, generator, pad_to)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        length = self.pad_to or max(len(f["input_ids"]) for f in features)
        ids = pad_sequences([f["input_ids"] for f in features], self.pad_id, length)  # (batch, seq)
        attention = pad_sequences([[1] * len(f["input_ids"]) for f in features], 0, length)
        special = torch.isin(ids, torch.tensor(sorted(self.special_ids), dtype=torch.long))
        selectable = attention.bool() & ~special  # padding and specials are never selected
        word_ids = None
        if self.spec.whole_word:
            word_ids = pad_sequences([f["word_ids"] for f in features], -1, length)
        inputs, labels = mask_tokens(ids, selectable, self.spec, self.mask_id, self.random_pool,
                                     self.generator, word_ids)
        batch = {"input_ids": inputs, "attention_mask": attention, "labels": labels}
        if "token_type_ids" in features[0]:
            batch["token_type_ids"] = pad_sequences([f["token_type_ids"] for f in features], 0, length)
        if "next_sentence_label" in features[0]:
            batch["next_sentence_label"] = torch.tensor([f["next_sentence_label"] for f in features])
        return batch


def clm_collate(features: list[dict]) -> dict[str, torch.Tensor]:
    """Causal LM batch of equal-length blocks: labels are the inputs (the model shifts them).

    Example:
        >>> clm_collate([{"input_ids": [1, 2, 3]}])["labels"].tolist()
        [[1, 2, 3]]
    """
    ids = torch.tensor([f["input_ids"] for f in features], dtype=torch.long)  # (batch, block)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
