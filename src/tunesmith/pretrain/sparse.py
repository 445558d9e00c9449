"""Masked-LM loss that projects to the vocabulary only at the selected positions.

`BertForMaskedLM` computes logits for every position, then ignores 85% of them (labels -100).
For the bundled encoder the vocabulary projection (384 x 30,522) costs more than the six
transformer layers together, so running it on the ~15% selected positions only cuts a training
step's compute by about 40%. Same loss, same gradients (tested against the dense forward).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..trainer import TunesmithTrainer


def sparse_mlm_loss(model, inputs: dict) -> torch.Tensor | None:
    """MLM (+ NSP) loss of a BERT-style model with a `cls.predictions` head; None for other models.

    Example:
        >>> loss = sparse_mlm_loss(model, collator(features))
    """
    head = getattr(getattr(model, "cls", None), "predictions", None)
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if head is None or base is None or "labels" not in inputs:
        return None
    labels, nsp = inputs["labels"], inputs.get("next_sentence_label")
    out = base(**{k: v for k, v in inputs.items() if k not in ("labels", "next_sentence_label")})
    hidden = out[0]  # (batch, seq, hidden)
    selected = labels != -100  # (batch, seq)
    if selected.any():
        loss = F.cross_entropy(head(hidden[selected]), labels[selected])  # head: (selected, vocab)
    else:
        loss = hidden.sum() * 0.0
    if nsp is not None:
        loss = loss + F.cross_entropy(model.cls.seq_relationship(out[1]), nsp.view(-1))
    return loss


class PretrainTrainer(TunesmithTrainer):
    """TunesmithTrainer whose training loss uses the sparse MLM head where the model allows it."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not return_outputs and model.training:
            loss = sparse_mlm_loss(model, inputs)
            if loss is not None:
                return loss
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
