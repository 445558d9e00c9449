"""Bottleneck adapter layers (Houlsby et al. 2019; Pfeiffer et al. 2020), written here on purpose.

Why our own: no maintained library runs them on transformers 5. `adapters` 1.3.0 requires
transformers ~=4.57.6 (its transformers-5 issue is open), peft has no bottleneck adapter (its PR was
closed) and opendelta no longer imports. The method is small enough to own: a down-projection to
`size`, a non-linearity, an up-projection back, added to its input.

Where they sit (BERT-family layers): right after a sub-layer's output dropout, before the residual
add and LayerNorm: `LayerNorm(x + adapter(dropout(dense(h))))`.
- houlsby: after the attention output and after the feed-forward output; LayerNorms train too.
- pfeiffer: after the feed-forward output only; LayerNorms stay frozen.

The up-projection starts at zero, so the adapted model computes exactly the base model until it
trains. The adapter replaces the `dropout` module by `AdapterAfter(dropout, adapter)`: parameter
names stay those of the base plus `...dropout.adapter.{down,up}.*`, deepcopy/compile/`state_dict`
work as usual. A run saves only what trains (adapters, LayerNorms when they train, the head) in
`model/adapters.safetensors`, with `model/adapter_layers.json` and the base's config beside it.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..errors import TunesmithError

CONFIG_FILE = "adapter_layers.json"
WEIGHTS_FILE = "adapters.safetensors"
PLACES = {"houlsby": ("attention.output", "output"), "pfeiffer": ("output",)}


class BottleneckAdapter(nn.Module):
    """x + up(gelu(down(x))); `up` starts at zero so the adapter is the identity at init.

    Example:
        >>> a = BottleneckAdapter(8, 2); x = torch.randn(1, 3, 8)
        >>> bool(torch.equal(a(x), x))
        True
    """

    def __init__(self, hidden: int, size: int):
        super().__init__()
        self.down = nn.Linear(hidden, size)
        self.up = nn.Linear(size, hidden)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, seq, hidden)
        return x + self.up(nn.functional.gelu(self.down(x)))


class AdapterAfter(nn.Module):
    """The sub-layer's dropout, then the adapter (what replaces `...output.dropout`)."""

    def __init__(self, dropout: nn.Module, adapter: BottleneckAdapter):
        super().__init__()
        self.dropout = dropout
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.dropout(x))


def encoder_layers(model) -> list[nn.Module]:
    """The transformer layers of a BERT-family model (bare, with a head, or inside peft)."""
    base = getattr(model, getattr(model, "base_model_prefix", "") or "", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise TunesmithError(f"adapter layers need a BERT-family encoder (encoder.layer[i].output); "
                             f"{type(model).__name__} has another structure: use --method lora or full")
    return list(layers)


def _sublayer(layer: nn.Module, place: str) -> nn.Module:
    mod = layer.get_submodule(place)
    if isinstance(getattr(mod, "dropout", None), AdapterAfter):
        raise TunesmithError("this model already has adapter layers")
    if not isinstance(getattr(mod, "dropout", None), nn.Dropout) or not hasattr(mod, "LayerNorm"):
        raise TunesmithError(f"adapter layers: {type(layer).__name__}.{place} has no dropout + LayerNorm "
                             "(not a BERT-style layer); use --method lora or full")
    return mod


def places(model, kind: str) -> list[str]:
    """The sub-layers whose dropout gets an adapter, named as in this architecture.

    BERT's attention output is `attention.output` (dense, dropout, LayerNorm); MPNet's attention
    applies its own dropout and LayerNorm after `attn.o`, so there the place is `attention`.
    """
    if kind not in PLACES:
        raise TunesmithError(f"unknown adapter type '{kind}'; choose {' or '.join(PLACES)}")
    first = encoder_layers(model)[0]
    named = {n for n, _ in first.named_modules()}
    out = []
    for place in PLACES[kind]:
        if place == "attention.output" and place not in named and "attention.LayerNorm" in named:
            place = "attention"
        out.append(place)
    return out


def add_adapters(model, kind: str = "houlsby", size: int = 64) -> list[BottleneckAdapter]:
    """Insert adapters into every layer of `model` (in place); returns them, in order."""
    where = places(model, kind)
    hidden = model.config.hidden_size
    added = []
    for layer in encoder_layers(model):
        for place in where:
            mod = _sublayer(layer, place)
            adapter = BottleneckAdapter(hidden, size)
            mod.dropout = AdapterAfter(mod.dropout, adapter)
            added.append(adapter)
    return added


def has_adapters(model) -> bool:
    """True when `model` runs bottleneck adapters (fast paths that re-implement layers must not run it)."""
    return any(isinstance(m, BottleneckAdapter) for m in model.modules())


def layer_norm_names(model, kind: str) -> list[str]:
    """Parameter names of the LayerNorms that train with this adapter type (houlsby: all of them)."""
    if kind != "houlsby":
        return []
    return [n for n, _ in model.named_parameters() if "LayerNorm" in n]


def trainable_state(model) -> dict[str, torch.Tensor]:
    """What a run saves: every parameter that trains (adapters, LayerNorms for houlsby, the head)."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save(model, directory: Path, kind: str, size: int, base: str) -> None:
    """adapters.safetensors + adapter_layers.json + the base config (labels) in `directory`."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model), str(directory / WEIGHTS_FILE))
    (directory / CONFIG_FILE).write_text(json.dumps({"type": kind, "size": size, "base_model": base,
                                                     "places": places(model, kind)},
                                                    indent=2) + "\n", encoding="utf-8")
    model.config.save_pretrained(directory)


def is_adapter_dir(directory: Path) -> bool:
    return (Path(directory) / CONFIG_FILE).is_file()


def load(auto, base: str, directory: Path, **kwargs):
    """Base model from `base` + adapters and trained weights from `directory` (a run's model/)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    model = auto.from_pretrained(base, **kwargs)
    add_adapters(model, cfg["type"], cfg["size"])
    weights = load_file(str(directory / WEIGHTS_FILE))
    result = model.load_state_dict(weights, strict=False)
    if result.unexpected_keys:
        raise TunesmithError(f"{directory}: {WEIGHTS_FILE} holds weights this model lacks: "
                             f"{result.unexpected_keys[:3]}")
    missing = [n for n, _ in model.named_parameters() if ".adapter." in n and n not in weights]
    if missing:
        raise TunesmithError(f"{directory}: adapter weights missing for {missing[:3]}")
    return model.eval()


# What the model card shows: the same adapter in plain torch, for loading a run without tunesmith.
PLAIN_CODE = '''import json, torch
from safetensors.torch import load_file
from transformers import AutoConfig, {auto}

class Adapter(torch.nn.Module):  # x + up(gelu(down(x))), after the sub-layer's dropout
    def __init__(self, dropout, hidden, size):
        super().__init__()
        self.dropout = dropout
        self.adapter = torch.nn.Module()
        self.adapter.down = torch.nn.Linear(hidden, size)
        self.adapter.up = torch.nn.Linear(size, hidden)
    def forward(self, x):
        x = self.dropout(x)
        return x + self.adapter.up(torch.nn.functional.gelu(self.adapter.down(x)))

run = "{model_dir}"
cfg = json.load(open(f"{{run}}/adapter_layers.json"))
model = {auto}.from_pretrained("{base}", config=AutoConfig.from_pretrained(run))  # labels
for layer in model.base_model.encoder.layer:
    for place in cfg["places"]:  # e.g. attention.output and output (BERT houlsby)
        sub = layer.get_submodule(place)
        sub.dropout = Adapter(sub.dropout, model.config.hidden_size, cfg["size"])
model.load_state_dict(load_file(f"{{run}}/adapters.safetensors"), strict=False)
model.eval()'''


def plain_code(auto: str, base: str, model_dir: str) -> str:
    """The model card's loading code (tests execute it and compare logits with tunesmith's load)."""
    return PLAIN_CODE.format(auto=auto, base=base, model_dir=model_dir)
