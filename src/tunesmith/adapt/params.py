"""Trainable-parameter accounting: the table every method prints and saves."""
from __future__ import annotations


# Substrings that mark weights added by a PEFT method (LoRA/DoRA, IA3, prompt/prefix, adapters).
ADAPTER_MARKERS = ("lora_", "ia3_", "prompt_encoder", "adapter", "vera_", "oft_", "boft_")


def param_table(model) -> dict:
    """Total and trainable parameters, split into backbone / adapter / head.

    Shared (tied) tensors count once; peft's frozen copies of modules_to_save are not counted
    in the total, so the total is the size of the model that runs.
    """
    seen: set[int] = set()
    rows = {"backbone": [0, 0], "adapter": [0, 0], "head": [0, 0]}
    for name, p in model.named_parameters():
        if id(p) in seen or ".original_module." in name:
            continue
        seen.add(id(p))
        group = ("adapter" if any(m in name for m in ADAPTER_MARKERS)
                 else "head" if ("modules_to_save" in name or _is_head(model, name)) else "backbone")
        rows[group][0] += p.numel()
        rows[group][1] += p.numel() if p.requires_grad else 0
    total = sum(r[0] for r in rows.values())
    trainable = sum(r[1] for r in rows.values())
    return {"total": total, "trainable": trainable,
            "trainable_pct": round(100.0 * trainable / total, 4) if total else 0.0,
            "groups": {k: {"total": v[0], "trainable": v[1]} for k, v in rows.items() if v[0]}}


def _is_head(model, name: str) -> bool:
    from .methods import head_module_names
    from .registry import is_peft_model

    if not is_peft_model(model):
        return name.split(".")[0] in set(head_module_names(model))
    # LoRA-style: PeftModel -> LoraModel -> transformers model, names start "base_model.model.";
    # prompt-style: PeftModel -> transformers model, names start "base_model.".
    inner = model.base_model
    if is_peft_model(inner) and hasattr(inner, "model"):  # a tuner layer (LoraModel)
        inner, skip = inner.model, 2
    else:
        skip = 1
    parts = name.split(".")[skip:]
    return bool(parts) and parts[0] in set(head_module_names(inner))


def format_param_table(t: dict, method: str = "") -> str:
    lines = [f"{'parameters' + (f' ({method})' if method else ''):<24}{'total':>14}{'trainable':>14}{'%':>11}"]
    for group, v in t["groups"].items():
        pct = 100.0 * v["trainable"] / v["total"] if v["total"] else 0
        lines.append(f"  {group:<22}{v['total']:>14,}{v['trainable']:>14,}{pct:>10.2f}%")
    lines.append(f"  {'all':<22}{t['total']:>14,}{t['trainable']:>14,}{t['trainable_pct']:>10.4f}%")
    return "\n".join(lines)
