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


def load_masked_lm(spec: str, prepare: bool = True):
    """(model, tokenizer, notes): a masked LM; a checkpoint without an MLM head gets the same
    initialised head `pretrain` starts from (untrained: say so)."""
    from ..models import load_tokenizer, resolve
    from ..pretrain.heads import init_mlm_head, load_continued

    ref = resolve(spec)
    model, new = load_continued(ref, "mlm")
    tok = load_tokenizer(ref)
    from ..mlm_cache import head_dir

    cached = (head_dir(ref.spec.lower()) / "mlm_head.safetensors").is_file()
    if new and ref.source == "builtin" and (prepare or cached):  # tunesmith trains a head for its own encoder
        from ..mlm_cache import ensure_head

        init_mlm_head(model, new)  # the start (and the "before" of its metrics): identity transform
        m = ensure_head(ref.spec.lower(), model, tok)
        return model, tok, [f"{ref.spec}'s MLM head was trained by tunesmith on news sentences (encoder "
                            f"frozen): held-out masked-token top-1 {m['before']['top1']:.3f} -> "
                            f"{m['after']['top1']:.3f}, top-5 {m['before']['top5']:.3f} -> {m['after']['top5']:.3f}"]
    notes = init_mlm_head(model, new)
    if new:
        notes.insert(0, f"{ref.spec} has no trained MLM head: its head is newly initialised, so these "
                        "predictions are not meaningful (adapt it with `tunesmith pretrain` first)")
    return model, tok, notes


def run(args) -> int:
    from ..infer.fill_mask import fill_mask, format_fill_mask

    model, tok, notes = load_masked_lm(args.model)
    results = fill_mask(model, tok, args.texts, top_k=args.top_k)
    if notes and not args.json:
        print("note: " + "; ".join(notes))
    for text, masks in zip(args.texts, results):
        print(json.dumps({"text": text, "masks": masks}) if args.json else format_fill_mask(text, masks))
    return 0
