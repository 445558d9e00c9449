"""Classification metrics as pure functions of label ids."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true, y_pred, labels: list[str]) -> dict:
    """Accuracy, precision, recall, F1 (binary for two classes, else macro), per class, confusion.

    Example:
        >>> classification_metrics([0, 1, 1], [0, 1, 0], ["neg", "pos"])["accuracy"]
        0.6667
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    ids = list(range(len(labels)))
    binary = len(labels) == 2
    p, r, f, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=ids if not binary else None, pos_label=1,
        average="binary" if binary else "macro", zero_division=0)
    pc, rc, fc, sc = precision_recall_fscore_support(y_true, y_pred, labels=ids, average=None, zero_division=0)
    rnd = lambda x: round(float(x), 4)
    return {
        "n": int(len(y_true)),
        "accuracy": rnd(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "precision": rnd(p), "recall": rnd(r), "f1": rnd(f),
        "average": f"binary (positive class: {labels[1]})" if binary else "macro",
        "per_class": {labels[i]: {"precision": rnd(pc[i]), "recall": rnd(rc[i]), "f1": rnd(fc[i]),
                                  "support": int(sc[i])} for i in ids},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": list(labels),
    }


def format_confusion(cm: list[list[int]], labels: list[str]) -> str:
    width = max(8, max(len(l) for l in labels) + 2)
    head = " " * width + "".join(f"{l[:width - 1]:>{width}}" for l in labels) + "   <- predicted"
    rows = [f"{labels[i][:width - 1]:<{width}}" + "".join(f"{v:>{width}}" for v in row) for i, row in enumerate(cm)]
    return "\n".join([head, *rows])
