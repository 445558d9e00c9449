"""Exact trainable-parameter counts per method, from a model config alone (no weights).

The model is built on the meta device (shapes, no memory) and each method's count comes from a
formula over its linear layers, e.g. LoRA adds r·(d+k) per adapted d×k matrix. Tests check every
formula against what peft actually builds on a tiny model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..adapt.methods import default_targets, head_module_names, pooler_name
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
    whole: bool = False  # a run saves the whole model (full, head)
    extra_trainable: int = 0  # backbone weights that train besides the added ones (Houlsby LayerNorms)
    pooling: int = 0  # the appended fixed mean-pooling layer (adapt/pooling.py): frozen weights

    @property
    def total(self) -> int:
        return self.base + self.adapter + self.pooling

    @property
    def pct(self) -> float:
        return 100.0 * self.trainable / self.total

    def artifact_params(self) -> int:
        """What a run stores per task: the whole model for full/head, else what trains (adapter + head,
        + LayerNorms for Houlsby adapters)."""
        return self.total if self.whole else self.adapter + self.extra_trainable + self.head


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


def prefix_count(config, tokens: int, projection: bool = False, hidden: int | None = None) -> tuple[int, list[str]]:
    """Prefix tuning: a key and a value of `hidden` per virtual token in every layer,
    tokens · layers · 2 · h; with the projection, peft's token embeddings + MLP h -> e -> 2·L·h."""
    h, L = config.hidden_size, config.num_hidden_layers
    if not projection:
        n = tokens * L * 2 * h
        return n, [f"virtual tokens {tokens} x layers {L} x (key + value) 2 x hidden {h} = {n:,}"]
    e = hidden or h
    emb, mlp = tokens * h, (h * e + e) + (e * 2 * L * h + 2 * L * h)
    return emb + mlp, [f"virtual tokens {tokens} x hidden {h} = {emb:,}",
                       f"projection MLP (h·e+e) + (e·2Lh+2Lh), e={e} = {mlp:,} "
                       f"(training only: a saved run keeps the {tokens * L * 2 * h:,} prefix values it yields)"]


def adapter_count(model, config, kind: str, size: int) -> tuple[int, int, list[str]]:
    """Bottleneck adapters: down h·m+m and up m·h+h per adapter; Houlsby puts two in every layer
    (attention and feed-forward output) and trains the LayerNorms, Pfeiffer one (feed-forward)."""
    from ..adapt.bottleneck import PLACES

    h, L = config.hidden_size, config.num_hidden_layers
    per = (h * size + size) + (size * h + h)
    count = L * len(PLACES[kind])
    n = per * count
    norms = sum(p.numel() for name, p in model.named_parameters() if "LayerNorm" in name) \
        if kind == "houlsby" else 0
    base = unique_params(getattr(model, model.base_model_prefix))
    lines = [f"{kind}: {count} adapters ({L} layers x {len(PLACES[kind])}), each down h·m+m + up m·h+h "
             f"= {h}·{size}+{size} + {size}·{h}+{h} = {per:,}",
             f"{n:,} adapter weights = {100.0 * n / base:.2f}% of the encoder's {base:,}"]
    if norms:
        lines.append(f"LayerNorms train too (Houlsby): {norms:,}")
    return n, norms, lines


# ---- the count of each method (registered in adapt/registry.py); `cfg` is a MethodConfig ---------
def count_full(model, config, cfg) -> tuple[int, int, list[str], int]:
    return 0, 0, [f"every weight trains: {unique_params(model):,}"], 0


def count_head(model, config, cfg) -> tuple[int, int, list[str], int]:
    """(0, pooler, lines, 0): the head and the pooler train."""
    lines = [f"task head only: {head_params(model):,}"]
    pooler, extra = _pooler(model)
    if pooler:
        lines.append(f"+ the pooler feeding it ({pooler}): {extra:,}")
    return 0, extra, lines, 0


def _pooler(model) -> tuple[str | None, int]:
    """The backbone's pooler and its weights ((None, 0): none)."""
    pooler = pooler_name(model)
    return pooler, unique_params(model.get_submodule(pooler)) if pooler else 0


def count_lora(model, config, cfg, dora: bool = False) -> tuple[int, int, list[str], int]:
    n, weights, lines = lora_count(model, cfg.lora_r, cfg.target_modules, dora=dora)
    return n, 0, lines, weights


def count_dora(model, config, cfg) -> tuple[int, int, list[str], int]:
    return count_lora(model, config, cfg, dora=True)


def count_ia3(model, config, cfg) -> tuple[int, int, list[str], int]:
    n, lines = ia3_count(model, cfg.target_modules, cfg.ia3_feedforward_modules)
    return n, 0, lines, 0


def _pooler_on_mean(model, cfg) -> tuple[int, list[str]]:
    """Prompt methods reading the mean train BERT's pooler with the head (adapt/methods.py)."""
    pooler, extra = _pooler(model)
    if not pooler or not _pooling_layer(model, cfg):
        return 0, []
    return extra, [f"+ the pooler between the mean and the head ({pooler}): {extra:,}"]


def count_prompt(model, config, cfg, encoder: bool = False) -> tuple[int, int, list[str], int]:
    n, lines = prompt_count(config, cfg.num_virtual_tokens, encoder=encoder)
    extra, more = _pooler_on_mean(model, cfg)
    return n, extra, lines + more, 0


def count_ptuning(model, config, cfg) -> tuple[int, int, list[str], int]:
    return count_prompt(model, config, cfg, encoder=True)


def count_prefix(model, config, cfg) -> tuple[int, int, list[str], int]:
    if _pooling_layer(model, cfg):  # peft prefixes every layer, the appended pooling layer too
        import copy

        config = copy.copy(config)
        config.num_hidden_layers += 1
    n, lines = prefix_count(config, cfg.num_virtual_tokens, cfg.prefix_projection, cfg.prefix_hidden_size)
    extra, more = _pooler_on_mean(model, cfg)
    return n, extra, lines + more, 0


def count_adapter(model, config, cfg) -> tuple[int, int, list[str], int]:
    n, norms, lines = adapter_count(model, config, cfg.adapter_type, cfg.adapter_size)
    return n, norms, lines, 0


def count_method(config, method: str, num_labels: int = 2, r: int = 8, targets: list[str] | None = None,
                 num_virtual_tokens: int = 20, ia3_feedforward: list[str] | None = None, **options) -> MethodCount:
    """Exact parameter counts for one method on a classification model built from `config`;
    `options` are further MethodConfig fields (prefix_projection, adapter_type, adapter_size...).

    Each method's formula is its record's `count` (adapt/registry.py): it returns the parameters
    the method adds, backbone weights that train besides them (Houlsby LayerNorms), the formula
    lines and the weights of the matrices it adapts (LoRA family).

    Example:
        >>> from transformers import BertConfig
        >>> count_method(BertConfig(), "lora", r=8).adapter
        294912
    """
    from ..adapt.registry import get
    from ..config import MethodConfig

    record = get(method)
    cfg = MethodConfig(name=method, lora_r=r, target_modules=targets, num_virtual_tokens=num_virtual_tokens,
                       ia3_feedforward_modules=ia3_feedforward, **options)
    model = _classifier(config, num_labels)
    base, head = unique_params(model), head_params(model)
    n, extra, lines, weights = record.count(model, config, cfg)
    trainable = base if record.backbone_trains else n + extra + head
    pooled = _pooling_layer(model, cfg)
    if pooled:
        lines.append(f"reads the mean of the token states through one appended fixed layer "
                     f"(adapt/pooling.py): {pooled:,} frozen weights, not trained")
    return MethodCount(method, base, n, head, trainable, lines, adapted_weights=weights,
                       whole=record.artifact == "whole", extra_trainable=extra, pooling=pooled)


def _pooling_layer(model, cfg) -> int:
    """Weights of the mean-pooling layer this config appends to `model` (0: it reads [CLS])."""
    from ..adapt import pooling
    from ..adapt.registry import pooling_of

    if pooling_of(cfg, "classification") != "mean" or pooling.problem(model) is not None:
        return 0
    return unique_params(model.base_model.encoder.layer[-1])


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
