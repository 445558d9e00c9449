"""Token-classification predictions -> entity spans with type, score and character offsets.

Aggregation strategies follow the transformers token-classification pipeline:
  simple   every sub-token is labelled on its own; adjacent tokens of one type are grouped
  first    a word takes the label of its first sub-token
  max      a word takes the label of its most confident sub-token
  average  a word takes the argmax of its sub-tokens' averaged probabilities
Grouping reads IOB2 labels: B-X opens an entity, I-X continues an X entity (or opens one after
O or another type), O closes. An entity's score is the mean of its tokens' (words') scores.
"""
from __future__ import annotations

import numpy as np

AGGREGATIONS = ("simple", "first", "max", "average")


def _label_parts(label: str) -> tuple[str, str | None]:
    if label == "O" or "-" not in label:
        return "O", None
    p, _, t = label.partition("-")
    return p, t


def group_units(units: list[tuple[str, float, int, int]], text: str) -> list[dict]:
    """Units (label, score, start, end) in text order -> entity dicts.

    Example:
        >>> group_units([("B-PER", 0.9, 0, 5), ("I-PER", 0.7, 6, 10)], "Steve Jobs")
        [{'entity_group': 'PER', 'score': 0.8, 'word': 'Steve Jobs', 'start': 0, 'end': 10}]
    """
    out, cur = [], None

    def close():
        if cur:
            start, end = cur["start"], cur["end"]
            out.append({"entity_group": cur["type"], "score": round(float(np.mean(cur["scores"])), 6),
                        "word": text[start:end], "start": start, "end": end})

    for label, score, start, end in units:
        p, t = _label_parts(label)
        if p == "O" or p in ("B", "U") or cur is None or cur["type"] != t:
            close()
            cur = None if p == "O" else {"type": t, "scores": [], "start": start, "end": end}
        if cur is not None:
            cur["scores"].append(score)
            cur["end"] = end
    close()
    return out


def entity_spans(text: str, probs: np.ndarray, offsets: list[tuple[int, int]], word_ids: list[int | None],
                 id2label: dict[int, str], aggregation: str = "first") -> list[dict]:
    """Entity spans of one text from per-token probabilities.

    Args:
        text: the original text (offsets index into it).
        probs: (n_tokens, n_labels) softmax probabilities, special tokens included or not.
        offsets: (start, end) character span per token; special tokens have start == end.
        word_ids: word index per token (None for special tokens).
        id2label: label id -> IOB2 label.
        aggregation: simple | first | max | average.

    Example:
        >>> entity_spans("Jo ran", np.array([[.1, .9], [.8, .2]]), [(0, 2), (3, 6)], [0, 1],
        ...              {0: "O", 1: "B-PER"})
        [{'entity_group': 'PER', 'score': 0.9, 'word': 'Jo', 'start': 0, 'end': 2}]
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, not '{aggregation}'")
    keep = [k for k, (s, e) in enumerate(offsets) if e > s and word_ids[k] is not None]
    if aggregation == "simple":
        units = [(id2label[int(probs[k].argmax())], float(probs[k].max()), *offsets[k]) for k in keep]
        return group_units(units, text)
    words: dict[int, list[int]] = {}
    for k in keep:
        words.setdefault(word_ids[k], []).append(k)
    units = []
    for ks in words.values():
        p = probs[ks]  # (sub_tokens, n_labels)
        if aggregation == "first":
            row = p[0]
        elif aggregation == "max":
            row = p[int(p.max(axis=1).argmax())]
        else:
            row = p.mean(axis=0)
        best = int(row.argmax())
        units.append((id2label[best], float(row[best]), offsets[ks[0]][0], offsets[ks[-1]][1]))
    return group_units(units, text)


def _window_probs(model, tokenizer, texts: list[str], max_length: int, stride: int, batch_size: int):
    """Per text: {token (start, end): (margin, probs, word_id)} merged over overlapping windows."""
    import torch

    enc = tokenizer(texts, truncation=True, max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    merged: list[dict] = [dict() for _ in texts]
    device = next(model.parameters()).device
    n_win = len(enc["input_ids"])
    for lo in range(0, n_win, batch_size):
        idx = list(range(lo, min(lo + batch_size, n_win)))
        batch = tokenizer.pad([{"input_ids": enc["input_ids"][w], "attention_mask": enc["attention_mask"][w]}
                               for w in idx], return_tensors="pt")
        with torch.inference_mode():
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits  # (batch, seq, labels)
        probs = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        for row, w in enumerate(idx):
            t = enc["overflow_to_sample_mapping"][w]
            offs, wids = enc["offset_mapping"][w], enc.word_ids(w)
            n = len(offs)
            for k, (off, wid) in enumerate(zip(offs, wids)):
                if wid is None or off[1] <= off[0]:
                    continue
                margin = min(k, n - 1 - k)
                key = tuple(off)
                if key not in merged[t] or margin > merged[t][key][0]:
                    merged[t][key] = (margin, probs[row, k], wid)
    return merged


def predict_entities(model, tokenizer, texts: list[str], aggregation: str = "first", max_length: int = 128,
                     stride: int = 32, batch_size: int = 32) -> list[list[dict]]:
    """Entity spans for each text (texts longer than max_length are read in overlapping windows).

    Example:
        >>> predict_entities(model, tok, ["Apple Inc. was founded by Steve Jobs in Cupertino."])[0][0]
        {'entity_group': 'ORG', 'score': 0.98, 'word': 'Apple Inc.', 'start': 0, 'end': 10}
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, not '{aggregation}'")
    if not texts:
        return []
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    model.eval()
    results = []
    for text, tokens in zip(texts, _window_probs(model, tokenizer, list(texts), max_length, stride, batch_size)):
        if not tokens:
            results.append([])
            continue
        keys = sorted(tokens)
        probs = np.stack([tokens[k][1] for k in keys])
        results.append(entity_spans(text, probs, keys, [tokens[k][2] for k in keys], id2label, aggregation))
    return results
