"""PNG plots for reports (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def confusion_png(cm: list[list[int]], labels: list[str], path: Path, title: str = "Confusion matrix") -> None:
    n = len(labels)
    fig, ax = plt.subplots(figsize=(2.2 + 0.7 * n, 1.8 + 0.7 * n))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max(max(r) for r in cm) or 1
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i][j]), ha="center", va="center",
                    color="white" if cm[i][j] > peak / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def learning_curve_png(events: list[dict], path: Path, metric: str) -> None:
    """Training loss and the validation metric over steps."""
    train = [(e["step"], e["loss"]) for e in events if e.get("kind") == "train" and "loss" in e]
    evals = [(e["step"], e[metric]) for e in events if e.get("kind") == "eval" and metric in e]
    evloss = [(e["step"], e["loss"]) for e in events if e.get("kind") == "eval" and "loss" in e]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), label="training loss", color="tab:blue")
    if evloss:
        ax.plot(*zip(*evloss), "o--", label="validation loss", color="tab:cyan")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    if evals:
        ax2 = ax.twinx()
        ax2.plot(*zip(*evals), "s-", color="tab:orange", label=f"validation {metric}")
        ax2.set_ylabel(f"validation {metric}")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right")
    elif train:
        ax.legend()
    ax.set_title("Learning curve")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
