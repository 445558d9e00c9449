"""Mixup for classification (Zhang et al. 2018; on embeddings as in Guo et al. 2019): within a
training batch, interpolate the input embeddings of two examples and their labels with
lambda ~ Beta(alpha, alpha). Evaluation batches are untouched."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def mixup_batch(embeds: torch.Tensor, mask: torch.Tensor, lam: float, perm: torch.Tensor):
    """Mixed embeddings (batch, seq, hidden) and the union of both attention masks (batch, seq)."""
    mixed = lam * embeds + (1.0 - lam) * embeds[perm]  # (batch, seq, hidden)
    return mixed, torch.maximum(mask, mask[perm])


def mixup_loss(model, inputs: dict, lam: float, perm: torch.Tensor, return_outputs: bool = False):
    """Cross-entropy against both labels, weighted lam / 1-lam."""
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    ids = inputs.pop("input_ids")
    embeds = model.get_input_embeddings()(ids)  # (batch, seq, hidden)
    mixed, mask = mixup_batch(embeds, inputs.pop("attention_mask"), lam, perm)
    out = model(inputs_embeds=mixed, attention_mask=mask, **inputs)
    logits = out.logits  # (batch, num_labels)
    loss = lam * F.cross_entropy(logits, labels) + (1.0 - lam) * F.cross_entropy(logits, labels[perm])
    return (loss, out) if return_outputs else loss


def enable_mixup(trainer, alpha: float, seed: int):
    """Make `trainer` train with mixup (alpha > 0); lambda and partners come from its own seeded
    generators, so a run is reproducible. alpha <= 0 leaves the trainer as it is.

    Example:
        >>> enable_mixup(trainer, alpha=0.4, seed=42)   # doctest: +SKIP
    """
    if alpha <= 0:
        return trainer
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    plain = trainer.compute_loss

    def compute_loss(model, inputs, return_outputs=False, **kwargs):
        if not model.training or "labels" not in inputs:
            return plain(model, inputs, return_outputs=return_outputs, **kwargs)
        lam = float(rng.beta(alpha, alpha))
        perm = torch.randperm(inputs["labels"].shape[0], generator=gen).to(inputs["labels"].device)
        return mixup_loss(model, inputs, lam, perm, return_outputs)

    trainer.compute_loss = compute_loss
    return trainer
