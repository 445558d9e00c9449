"""`tunesmith fill-mask MODEL "text with [MASK]" ...`: top-k tokens with probabilities per mask."""
from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser("fill-mask", help="predict the words behind [MASK] (several masks per text work)",
                       description=__doc__,
                       epilog="examples:\n  tunesmith fill-mask minilm \"The capital of France is [MASK].\"\n"
                              "  tunesmith fill-mask runs/RUN \"The [MASK] was [MASK] by the police.\" --top-k 3",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="built-in (minilm), pretrain run directory, local path or hub id")
    p.add_argument("texts", nargs="+", help="texts holding one or more [MASK]")
    p.add_argument("--top-k", type=int, default=5, help="predictions per mask [default: 5]")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.set_defaults(func=run)


from ..masked_lm import load_masked_lm  # noqa: E402,F401  (moved to the core: bench/ uses it)


def run(args) -> int:
    from ..infer.fill_mask import fill_mask, format_fill_mask

    model, tok, notes = load_masked_lm(args.model)
    results = fill_mask(model, tok, args.texts, top_k=args.top_k)
    if notes and not args.json:
        print("note: " + "; ".join(notes))
    for text, masks in zip(args.texts, results):
        print(json.dumps({"text": text, "masks": masks}) if args.json else format_fill_mask(text, masks))
    return 0
