"""Exact trainable-parameter counts per method, from a model config alone (no weights).

The model is built on the meta device (shapes, no memory) and each method's count comes from a
formula over its linear layers, e.g. LoRA adds r·(d+k) per adapted d×k matrix. Tests check every
formula against what peft actually builds on a tiny model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..adapt.methods import default_targets, head_module_names
from ..errors import TunesmithError

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


@dataclass
class MethodCount:
    """Parameters of one method: what trains (adapter + head) out of the model that runs."""

    method: str
    base: int  # backbone + head, as loaded
    adapter: int  # parameters the method adds
    head: int  # task-head parameters (train with every method but `full` counts them anyway)
    trainable: int
    formula: list[str] = field(default_factory=list)
    adapted_weights: int = 0  # weights of the matrices an adapter wraps (LoRA family)

    @property
    def total(self) -> int:
        return self.base + self.adapter

    @property
    def pct(self) -> float:
        return 100.0 * self.trainable / self.total

    def artifact_params(self) -> int:
        """What a run stores per task: the whole model for full/head, adapter + head for peft."""
        return self.total if self.method in ("full", "head") else self.adapter + self.head


def unique_params(module) -> int:
    """Parameter count with tied tensors counted once.

    Example:
        >>> import torch; unique_params(torch.nn.Linear(3, 2))
        8
    """
    seen, n = set(), 0
    for p in module.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def linear_layers(model, targets: list[str]) -> list[tuple[str, int, int]]:
    """(name, in_features, out_features) of linear layers matching peft's suffix rule."""
    import torch

    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and any(name == t or name.endswith("." + t) for t in targets):
            out.append((name, mod.in_features, mod.out_features))
    if not out:
        raise TunesmithError(f"no linear layer matches target module(s) {targets}")
    return out


def head_params(model) -> int:
    return sum(unique_params(getattr(model, n)) for n in head_module_names(model))


def lora_count(model, r: int, targets: list[str] | None, dora: bool = False) -> tuple[int, int, list[str]]:
    """LoRA adds A (r×k) and B (d×r) per adapted d×k matrix: r·(d+k); DoRA adds a magnitude (d)."""
    targets = targets or default_targets(model)
    layers = linear_layers(model, targets)
    shapes: dict[tuple[int, int], int] = {}
    for _, k, d in layers:
        shapes[(d, k)] = shapes.get((d, k), 0) + 1
    lines, n = [], 0
    for (d, k), count in shapes.items():
        per = r * (d + k) + (d if dora else 0)
        n += per * count
        extra = f" + magnitude {d}" if dora else ""
        lines.append(f"{count} matrices {d}x{k}: r·(d+k){extra} = {r}·({d}+{k}){extra} = {per:,} each")
    weights = sum(d * k for _, k, d in layers)
    lines.append(f"targets {','.join(targets)}: {n:,} = {100.0 * n / weights:.2f}% of their "
                 f"{weights:,} weights")
    return n, weights, lines


def ia3_count(model, targets: list[str] | None, feedforward: list[str] | None) -> tuple[int, list[str]]:
    """IA3 learns one vector per target: output size, or input size for feed-forward layers."""
    from peft.utils.constants import (TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FF,
                                      TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TG)

    mtype = model.config.model_type
    targets = targets or TG.get(mtype)
    if not targets:
        raise TunesmithError(f"no default IA3 targets for model type '{mtype}'; name them")
    ff = feedforward if feedforward is not None else (FF.get(mtype, []) if targets == TG.get(mtype) else [])
    n = 0
    for name, k, d in linear_layers(model, targets):
        n += k if any(name == f or name.endswith("." + f) for f in ff) else d
    return n, [f"IA3 vectors on {','.join(targets)} (feed-forward, scaled on input: {','.join(ff) or '-'}) = {n:,}"]


def prompt_count(config, tokens: int, encoder: bool) -> tuple[int, list[str]]:
    """Prompt tuning: tokens × hidden; P-tuning adds peft's MLP encoder (h→h→h→h, with biases)."""
    h = config.hidden_size
    n = tokens * h
    lines = [f"virtual tokens {tokens} x hidden {h} = {n:,}"]
    if encoder:
        mlp = 3 * (h * h + h)
        n += mlp
        lines.append(f"prompt encoder MLP 3·(h·h+h) = {mlp:,}")
    return n, lines


def count_method(config, method: str, num_labels: int = 2, r: int = 8, targets: list[str] | None = None,
                 num_virtual_tokens: int = 20, ia3_feedforward: list[str] | None = None) -> MethodCount:
    """Exact parameter counts for one method on a classification model built from `config`.

    Example:
        >>> from transformers import BertConfig
        >>> count_method(BertConfig(), "lora", r=8).adapter
        294912
    """
    model = _classifier(config, num_labels)
    base, head = unique_params(model), head_params(model)
    if method == "full":
        return MethodCount(method, base, 0, head, base, [f"every weight trains: {base:,}"])
    if method == "head":
        return MethodCount(method, base, 0, head, head, [f"task head only: {head:,}"])
    if method in ("lora", "dora"):
        n, weights, lines = lora_count(model, r, targets, dora=method == "dora")
        return MethodCount(method, base, n, head, n + head, lines, adapted_weights=weights)
    if method == "ia3":
        n, lines = ia3_count(model, targets, ia3_feedforward)
    elif method in ("prompt", "ptuning"):
        n, lines = prompt_count(config, num_virtual_tokens, encoder=method == "ptuning")
    else:
        raise TunesmithError(f"no parameter formula for method '{method}'")
    return MethodCount(method, base, n, head, n + head, lines)


def _classifier(config, num_labels: int):
    from .configs import meta_model

    return meta_model(config, "classification", num_labels)


def breakdown(config) -> list[tuple[str, int, str]]:
    """Where a BERT-family encoder's parameters are: (part, count, formula)."""
    from .configs import meta_model

    model = meta_model(config, "backbone")
    rows = []
    for name, child in model.named_children():
        n = unique_params(child)
        if n:
            rows.append((name, n, _describe(name, child, config)))
    rows.append(("encoder total", unique_params(model), ""))
    return rows


def _describe(name: str, child, config) -> str:
    h = config.hidden_size
    if name == "embeddings" and hasattr(config, "type_vocab_size"):
        v, p, t = config.vocab_size, config.max_position_embeddings, config.type_vocab_size
        return f"({v:,} words + {p} positions + {t} types) x {h} + LayerNorm 2x{h}"
    if name == "encoder" and hasattr(config, "intermediate_size"):
        L, i = config.num_hidden_layers, config.intermediate_size
        per = unique_params(child) // L
        return (f"{L} layers x {per:,} (attention 4·({h}·{h}+{h}), feed-forward {h}·{i}+{i}+{i}·{h}+{h}, "
                f"2 LayerNorms 4·{h})")
    if name == "pooler":
        return f"{h}·{h}+{h}"
    return ""


def size_bytes(n_params: int, dtype: str = "fp32") -> int:
    return n_params * BYTES[dtype]


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n} B"
