"""Held-out metrics of a language model: masked-token top-1/top-5 accuracy and loss, pseudo-
perplexity (MLM), NSP accuracy, perplexity (CLM). The masks come from a fixed-seed generator,
so "before" and "after" score exactly the same masked positions.

Batches are built on the CPU (collators, tokenizer ids) and moved to the model's device: "after"
runs on the model Trainer trained, which sits on the GPU when there is one."""
from __future__ import annotations

import math

import torch

from ..precision import model_device, to_device
from .collators import MaskingSpec, MLMCollator, clm_collate


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _mlm_logits(out) -> torch.Tensor:
    return out.prediction_logits if hasattr(out, "prediction_logits") else out.logits


@torch.no_grad()
def mlm_metrics(model, tokenizer, examples: list[dict], spec: MaskingSpec, seed: int = 0,
                batch_size: int = 32) -> dict:
    """Masked-token loss, top-1 / top-5 accuracy (and NSP accuracy when the examples carry labels).

    Example:
        >>> mlm_metrics(model, tok, examples, MaskingSpec())["top1"]
        0.41
    """
    model.eval()
    device = model_device(model)
    # the masks come from a CPU generator, so they are the same whatever device the model is on
    collate = MLMCollator.from_tokenizer(tokenizer, spec, torch.Generator().manual_seed(seed))
    nll, top1, top5, n, nsp_right, nsp_n = 0.0, 0, 0, 0, 0, 0
    for chunk in _batches(examples, batch_size):
        batch = to_device(collate([{k: v for k, v in ex.items() if k != "length"} for ex in chunk]), device)
        nsp = batch.pop("next_sentence_label", None)
        labels = batch.pop("labels")
        out = model(**batch)
        logits = _mlm_logits(out)[labels != -100].float()  # (selected, vocab)
        gold = labels[labels != -100]
        nll += torch.nn.functional.cross_entropy(logits, gold, reduction="sum").item()
        best = logits.topk(5, dim=-1).indices  # (selected, 5)
        top1 += (best[:, 0] == gold).sum().item()
        top5 += (best == gold[:, None]).any(-1).sum().item()
        n += len(gold)
        if nsp is not None and hasattr(out, "seq_relationship_logits"):
            nsp_right += (out.seq_relationship_logits.argmax(-1) == nsp).sum().item()
            nsp_n += len(nsp)
    res = {"masked_tokens": n, "loss": nll / max(n, 1), "top1": top1 / max(n, 1), "top5": top5 / max(n, 1)}
    res["perplexity"] = math.exp(min(res["loss"], 50))
    if nsp_n:
        res["nsp_accuracy"] = nsp_right / nsp_n
        res["nsp_examples"] = nsp_n
    return res


@torch.no_grad()
def pseudo_perplexity(model, tokenizer, examples: list[dict], max_tokens: int = 64, batch_size: int = 64) -> dict:
    """exp(mean -log p(token | the rest)) with each token masked in turn (Salazar et al., 2020).

    Costs one forward pass per token, so each example is cut to its first `max_tokens` tokens.
    """
    model.eval()
    device = model_device(model)
    special = torch.tensor(sorted(tokenizer.all_special_ids))
    total, n = 0.0, 0
    for ex in examples:
        ids = torch.tensor(ex["input_ids"][:max_tokens])  # (seq,)
        positions = (~torch.isin(ids, special)).nonzero().flatten()
        for chunk in _batches(positions.tolist(), batch_size):
            rows = ids.repeat(len(chunk), 1)  # (k, seq): row r masks position chunk[r]
            idx = torch.arange(len(chunk))
            rows[idx, chunk] = tokenizer.mask_token_id
            inputs = {"input_ids": rows, "attention_mask": torch.ones_like(rows)}
            if "token_type_ids" in ex:
                inputs["token_type_ids"] = torch.tensor(ex["token_type_ids"][:max_tokens]).repeat(len(chunk), 1)
            logits = _mlm_logits(model(**to_device(inputs, device)))  # (k, seq, vocab)
            logp = logits[idx.to(device), chunk].float().log_softmax(-1)  # (k, vocab)
            total -= logp[idx.to(device), ids[chunk].to(device)].sum().item()
            n += len(chunk)
    return {"pseudo_perplexity": math.exp(min(total / max(n, 1), 50)), "scored_tokens": n,
            "examples": len(examples)}


@torch.no_grad()
def clm_metrics(model, blocks: list[dict], batch_size: int = 8) -> dict:
    """Token-level loss and perplexity over full blocks (every target token counts once)."""
    model.eval()
    device = model_device(model)
    nll, n = 0.0, 0
    for chunk in _batches(blocks, batch_size):
        batch = to_device(clm_collate(chunk), device)
        out = model(**batch)
        tokens = batch["input_ids"].shape[0] * (batch["input_ids"].shape[1] - 1)  # shifted targets
        nll += out.loss.item() * tokens
        n += tokens
    loss = nll / max(n, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50)), "tokens": n, "blocks": len(blocks)}
