"""The registry of adaptation methods."""
from __future__ import annotations

from typing import Callable

from ..config import LORA_DEFAULT_TARGETS, MethodConfig
from ..errors import TunesmithError

PEFT_TASK = {"classification": "SEQ_CLS", "token-classification": "TOKEN_CLS", "generation": "CAUSAL_LM"}


def head_module_names(model) -> list[str]:
    """Top-level modules outside the backbone that hold weights: the task head (e.g. classifier)."""
    prefix = getattr(model, "base_model_prefix", "")
    return [name for name, mod in model.named_children()
            if name != prefix and any(True for _ in mod.parameters())
            and name not in ("lm_head",)]  # a causal LM's head is tied to the embeddings


def full(model, cfg: MethodConfig, task: str):
    """Every weight trains."""
    for p in model.parameters():
        p.requires_grad = True
    return model


def head(model, cfg: MethodConfig, task: str):
    """Frozen backbone (features), only the task head trains."""
    heads = head_module_names(model)
    if not heads:
        raise TunesmithError("method 'head' needs a task head, but this model has none outside its backbone")
    for name, p in model.named_parameters():
        p.requires_grad = name.split(".")[0] in heads
    return model


def default_targets(model) -> list[str]:
    mtype = getattr(model.config, "model_type", "")
    if mtype in LORA_DEFAULT_TARGETS:
        return LORA_DEFAULT_TARGETS[mtype]
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    for pair in (["query", "value"], ["q_proj", "v_proj"], ["q_lin", "v_lin"]):
        if set(pair) <= names:
            return pair
    raise TunesmithError(f"no default LoRA target modules for model type '{mtype}'; "
                         "name them with --method.target_modules=a,b")


def lora(model, cfg: MethodConfig, task: str):
    """LoRA adapters on the target modules (peft); the new task head trains and is saved too."""
    from peft import LoraConfig, get_peft_model

    targets = cfg.target_modules or default_targets(model)
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        raise TunesmithError(f"LoRA target module(s) {missing} not found in this model; "
                             f"linear layers include e.g. {sorted(names)[:20]}")
    # The task head is new and must train and be saved with the adapter (a classic PEFT pitfall:
    # without modules_to_save the reloaded model has a random head).
    to_save = head_module_names(model) if task != "generation" else None
    config = LoraConfig(task_type=PEFT_TASK[task], r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                        lora_dropout=cfg.lora_dropout, target_modules=list(targets),
                        modules_to_save=to_save)
    return get_peft_model(model, config)


METHODS: dict[str, Callable] = {"full": full, "lora": lora, "head": head}

DESCRIPTIONS = {
    "full": "every parameter trains (default lr 2e-5)",
    "lora": "low-rank adapters on attention (peft); backbone frozen; head trains (default lr 3e-4)",
    "head": "backbone frozen as a feature extractor; only the task head trains (default lr 1e-3)",
}


def apply_method(model, cfg: MethodConfig, task: str):
    try:
        fn = METHODS[cfg.name]
    except KeyError:
        raise TunesmithError(f"unknown method '{cfg.name}'; methods: {', '.join(METHODS)}") from None
    return fn(model, cfg, task)
