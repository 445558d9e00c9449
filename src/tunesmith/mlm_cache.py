"""The built-in encoder ships without an MLM head: train one once, cheaply, and cache it.

`tunesmith fill-mask minilm ...` would otherwise answer from an initialised head (noise such as
"trooper 0.002"). The head is trained on the frozen encoder's features of masked news sentences
(pretrain/heads.py: only transform + output bias train), held-out top-1/top-5 are measured
before/after, and the head's weights (~0.3 MB) are cached beside the dequantised decoder
(gguf_cache.py's cache root), so it is prepared once per machine.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .gguf_cache import cache_root

VERSION = 1  # bump when the recipe below changes: a new cache folder is prepared
RECIPE = {"train_sentences": 3000, "heldout_sentences": 400, "max_length": 48, "rate": 0.15, "epochs": 2,
          "lr": 2e-3, "seed": 0}


def head_dir(name: str) -> Path:
    return cache_root() / f"{name}-mlm-head-v{VERSION}"


def news_sentences(n_train: int, n_heldout: int) -> tuple[list[str], list[str]]:
    """Sentences of the bundled news corpus; held-out ones come from other articles."""
    from .pretrain.corpus import read_news, split_sentences

    docs = read_news()
    cut = len(docs) * 9 // 10
    pick = lambda ds, n: [s for d in ds for s in split_sentences(d) if 5 <= len(s.split()) <= 40][:n]
    return pick(docs[:cut], n_train), pick(docs[cut:], n_heldout)


def prepare_head(model, tokenizer, train: list[str], heldout: list[str], recipe: dict = RECIPE) -> dict:
    """Train `model`'s MLM head in place; returns before/after held-out accuracy and timings."""
    from .pretrain.heads import masked_accuracy, masked_features, train_mlm_head

    start = time.perf_counter()
    kw = dict(rate=recipe["rate"], max_length=recipe["max_length"])
    feats, targets = masked_features(model, tokenizer, train, seed=recipe["seed"], **kw)
    h_feats, h_targets = masked_features(model, tokenizer, heldout, seed=recipe["seed"] + 1, **kw)
    before = masked_accuracy(model, h_feats, h_targets)
    losses = train_mlm_head(model, feats, targets, epochs=recipe["epochs"], lr=recipe["lr"], seed=recipe["seed"])
    after = masked_accuracy(model, h_feats, h_targets)
    return {"before": before, "after": after, "losses": [round(x, 4) for x in losses],
            "train_masks": len(feats), "seconds": round(time.perf_counter() - start, 1), "recipe": recipe}


def ensure_head(name: str, model, tokenizer, sentences=None) -> dict:
    """Load the cached trained head into `model` (a masked LM whose head is new); prepare it first
    if it is not cached. `sentences` = (train, heldout); default: the bundled news corpus."""
    from safetensors.torch import load_file, save_file

    from .pretrain.heads import head_state

    target = head_dir(name)
    if (target / "mlm_head.safetensors").is_file():
        model.load_state_dict(load_file(str(target / "mlm_head.safetensors")), strict=False)
        return json.loads((target / "metrics.json").read_text(encoding="utf-8"))
    print(f"[tunesmith] training an MLM head for the built-in '{name}' once (frozen encoder, head only, "
          f"about a minute); cache: {target}", flush=True)
    train, heldout = sentences or news_sentences(RECIPE["train_sentences"], RECIPE["heldout_sentences"])
    metrics = prepare_head(model, tokenizer, train, heldout)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-mlm-", dir=target.parent))
    try:
        save_file(head_state(model), str(tmp / "mlm_head.safetensors"))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)  # atomic: a half-written cache is never picked up
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return metrics
