"""Entity-level NER metrics (seqeval), token accuracy, and a confusion matrix of entity types."""
from __future__ import annotations

from ..data.conll import split_tag


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """IOB2 tags -> (type, first, last+1) word spans, the lenient way (an I- after O opens one).

    Example:
        >>> entities(["B-PER", "I-PER", "O", "B-LOC"])
        [('PER', 0, 2), ('LOC', 3, 4)]
    """
    out, cur = [], None
    for i, tag in enumerate(list(tags) + ["O"]):
        p, t = split_tag(tag)
        if cur and (p in ("O", "B", "U", "?") or t != cur[0]):
            out.append((cur[0], cur[1], i))
            cur = None
        if p in ("B", "I", "U", "L") and cur is None:
            cur = (t, i)
    return out


def ner_metrics(y_true: list[list[str]], y_pred: list[list[str]], strict: bool = False) -> dict:
    """Entity precision/recall/F1 (micro) overall and per type with seqeval, plus token accuracy.

    strict=False is seqeval's default (conlleval-compatible) mode; strict=True only counts an
    entity when its exact IOB2 tag sequence is right.

    Example:
        >>> ner_metrics([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])["f1"]
        0.0
    """
    from seqeval.metrics import accuracy_score, classification_report
    from seqeval.scheme import IOB2

    kwargs = {"mode": "strict", "scheme": IOB2} if strict else {}
    rep = classification_report(y_true, y_pred, output_dict=True, zero_division=0, **kwargs)
    per_type = {t: {"precision": float(v["precision"]), "recall": float(v["recall"]),
                    "f1": float(v["f1-score"]), "support": int(v["support"])}
                for t, v in rep.items() if not t.endswith(" avg")}
    micro = rep.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
    return {"precision": float(micro["precision"]), "recall": float(micro["recall"]),
            "f1": float(micro["f1-score"]), "entities": int(micro["support"]),
            "token_accuracy": float(accuracy_score(y_true, y_pred)),
            "mode": "strict" if strict else "default", "per_type": per_type,
            "sentences": len(y_true)}


def entity_confusion(y_true: list[list[str]], y_pred: list[list[str]]) -> tuple[list[list[int]], list[str]]:
    """Confusion of entity types over spans: row = gold type (or O: a predicted span with no gold
    span at the same place), column = predicted type at the gold span's exact place (or O: missed)."""
    types = sorted({e[0] for seq in (*y_true, *y_pred) for e in entities(seq)})
    names = types + ["O"]
    idx = {t: i for i, t in enumerate(names)}
    cm = [[0] * len(names) for _ in names]
    for gold, pred in zip(y_true, y_pred):
        g = {(s, e): t for t, s, e in entities(gold)}
        p = {(s, e): t for t, s, e in entities(pred)}
        for span, t in g.items():
            cm[idx[t]][idx[p.get(span, "O")]] += 1
        for span, t in p.items():
            if span not in g:
                cm[idx["O"]][idx[t]] += 1
    return cm, names


def format_ner_table(m: dict) -> list[str]:
    """Markdown table: one row per entity type and the micro average."""
    lines = ["| type | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for t, v in sorted(m["per_type"].items()):
        lines.append(f"| {t} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |")
    lines.append(f"| **all (micro)** | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['entities']} |")
    return lines
