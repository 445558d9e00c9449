"""Load a masked LM for fill-mask (the command, the pre-training benchmark): in the core, so
bench/ does not import commands/."""
from __future__ import annotations


def load_masked_lm(spec: str, prepare: bool = True):
    """(model, tokenizer, notes): a masked LM; a checkpoint without an MLM head gets the same
    initialised head `pretrain` starts from (untrained: say so)."""
    from .models import load_tokenizer, resolve
    from .pretrain.heads import init_mlm_head, load_continued

    ref = resolve(spec)
    model, new = load_continued(ref, "mlm")
    tok = load_tokenizer(ref)
    from .mlm_cache import head_dir

    cached = (head_dir(ref.spec.lower()) / "mlm_head.safetensors").is_file()
    if new and ref.source == "builtin" and (prepare or cached):  # tunesmith trains a head for its own encoder
        from .mlm_cache import ensure_head

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
