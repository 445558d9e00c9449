"""Fill-mask: the top-k tokens, with probabilities, for every mask in a sentence.

Works with any masked LM and its tokenizer; several masks in one sentence are each predicted
from the same forward pass (every mask sees the others as masks), like transformers' pipeline.
"""
from __future__ import annotations

import torch

from ..precision import model_device, to_device

GENERIC_MASK = "[MASK]"


def _mask_logits(out) -> torch.Tensor:
    return out.prediction_logits if hasattr(out, "prediction_logits") else out.logits


@torch.no_grad()
def fill_mask(model, tokenizer, texts: str | list[str], top_k: int = 5) -> list[list[list[dict]]]:
    """For each text, for each mask in it, the top_k {token, score, id} (scores are softmax probs).

    `[MASK]` in the text is read as the tokenizer's own mask token (e.g. `<mask>` for RoBERTa).

    Example:
        >>> fill_mask(model, tok, "The capital of France is [MASK].", top_k=2)
        [[[{'token': 'paris', 'score': 0.61, 'id': 3000}, {'token': 'lyon', 'score': 0.05, 'id': 9}]]]
    """
    if tokenizer.mask_token is None:
        from ..errors import TunesmithError

        raise TunesmithError("this model's tokenizer has no mask token: fill-mask needs a masked LM (e.g. minilm)")
    texts = [texts] if isinstance(texts, str) else list(texts)
    texts = [t.replace(GENERIC_MASK, tokenizer.mask_token) for t in texts]
    was_training = model.training
    model.eval()
    enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True)
    # the model may sit on a GPU (after Trainer, in the Predictor or the server): inputs go there
    logits = _mask_logits(model(**to_device(dict(enc), model_device(model))))  # (batch, seq, vocab)
    model.train(was_training)
    results = []
    for i, ids in enumerate(enc["input_ids"]):
        positions = (ids == tokenizer.mask_token_id).nonzero().flatten().tolist()
        per_mask = []
        for pos in positions:
            probs = logits[i, pos].float().softmax(-1)  # fp32 softmax also under bf16/fp16 weights
            top = probs.topk(top_k)
            per_mask.append([{"token": tokenizer.convert_ids_to_tokens(int(t)), "score": float(s), "id": int(t)}
                             for s, t in zip(top.values.tolist(), top.indices.tolist())])
        results.append(per_mask)
    return results


def format_fill_mask(text: str, masks: list[list[dict]]) -> str:
    """Human-readable lines: one block per mask, `token  probability`."""
    if not masks:
        return f"{text}\n  (no mask token found: write [MASK] where a word should be predicted)"
    lines = [text]
    for m, preds in enumerate(masks, start=1):
        lines.append(f"  mask {m}: " + "  ".join(f"{p['token']} {p['score']:.3f}" for p in preds))
    return "\n".join(lines)
