"""`tunesmith methods`: the adaptation methods tunesmith knows, from their records."""
from ..adapt.registry import REGISTRY


def register(sub) -> None:
    p = sub.add_parser("methods", help="list adaptation methods (full, lora, head, prefix, adapter, ...)",
                       description="Adaptation methods: each one decides which parameters train. Choose one "
                                   "with `tunesmith finetune --method NAME`; `tunesmith params` counts them "
                                   "exactly and `tunesmith compare` measures them side by side.")
    p.set_defaults(func=run)


def table() -> list[str]:
    """One line per registered method: name, default lr, the head's own lr, what a classifier reads,
    what a run saves, mergeable, servable, description."""
    lines = [f"{'method':<9}{'lr':>7} {'head lr':>8}  {'reads':<6}{'saves':<15}{'merge':<6}{'serve':<6}description"]
    for r in REGISTRY.values():
        saves = {"whole": "whole model", "peft": "peft adapter", "adapter-layers": "adapter layers"}[r.artifact]
        head = f"{r.head_lr:g}" if r.head_lr else "-"
        reads = "mean" if r.pooling == "mean" else "[CLS]"
        lines.append(f"{r.name:<9}{r.lr:>7g} {head:>8}  {reads:<6}{saves:<15}{'yes' if r.mergeable else '-':<6}"
                     f"{'yes' if r.servable else '-':<6}{r.description}")
    return lines


def run(args) -> int:
    print("\n".join(table()))
    print("\nlr: default learning rate; head lr: the classifier's own default (train.head_lr; '-': the same lr); "
          "reads: what a BERT-family classifier reads (--method.pooling auto; mean: the mean of the token "
          "states); merge: folded into the base weights for inference; serve: shares one base on the "
          "multi-adapter server (others load as their own model)")
    return 0
