"""Model configs without weights: presets, built-in models, local dirs or config.json files."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import TunesmithError

# The textbook's model, embedded as a config only (BertConfig's defaults are bert-base-uncased:
# vocabulary 30,522, hidden 768, 12 layers, 12 heads, feed-forward 3,072, 512 positions).
PRESETS = {
    "bert-base-uncased": dict(model_type="bert"),
    "bert-large-uncased": dict(model_type="bert", hidden_size=1024, num_hidden_layers=24,
                               num_attention_heads=16, intermediate_size=4096),
}


def load_model_config(spec: str):
    """A transformers config from a preset name, built-in model, model dir or config.json.

    Example:
        >>> load_model_config("bert-base-uncased").hidden_size
        768
    """
    from transformers import AutoConfig, CONFIG_MAPPING

    if spec in PRESETS:
        kw = dict(PRESETS[spec])
        return CONFIG_MAPPING[kw.pop("model_type")](**kw)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if "model_type" not in data:
            raise TunesmithError(f"{path}: config has no model_type; add e.g. \"model_type\": \"bert\"")
        kind = data.pop("model_type")
        return CONFIG_MAPPING[kind](**data)
    from ..models import resolve

    ref = resolve(spec)
    try:
        return AutoConfig.from_pretrained(ref.path)
    except OSError as e:
        raise TunesmithError(f"cannot read a config for '{spec}': {e}; presets: "
                             f"{', '.join(PRESETS)}, or give a config.json") from None


def meta_model(config, task: str = "backbone", num_labels: int = 2):
    """The model built on the meta device: shapes and parameter names, no memory, no weights."""
    import torch
    import transformers

    auto = {"backbone": transformers.AutoModel,
            "classification": transformers.AutoModelForSequenceClassification,
            "generation": transformers.AutoModelForCausalLM}[task]
    if task == "classification":
        config = config.__class__(**{**config.to_dict(), "num_labels": num_labels})
    with torch.device("meta"):
        return auto.from_config(config)
