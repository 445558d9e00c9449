"""The built-in encoder ships without an MLM head: train one once, cheaply, and cache it.

`tunesmith fill-mask minilm ...` would otherwise answer from an initialised head (noise such as
"trooper 0.002"). Version 1 trained the head alone on frozen-encoder features and still answered
"the , ." to everything (held-out top-1 0.067): the sentence-embedding encoder's last states have
lost which word stood where. Version 2 also trains the encoder's top layer(s) (pretrain/top_layers.py):
the frozen lower layers run once per sentence, only the top layer(s) and the head train, on masked
sentences of the bundled news corpus. Held-out masked-token top-1/top-5 (sentences of other
articles) are measured before/after and kept in metrics.json beside the weights; prepared once
per machine in tunesmith's cache (split_asset.cache_root, like smollm2's conversion).

Choices (top_layers, lr, sizes) were made on a dev slice of the articles (80-90%); the reported
held-out numbers come from the last 10% of the articles, used for nothing else.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .split_asset import cache_root

VERSION = 2  # bump when the recipe below changes: a new cache folder is prepared
RECIPE = {"train_sentences": 5000, "heldout_sentences": 1000, "max_length": 48, "rate": 0.15, "epochs": 2,
          "top_layers": None, "lr": 5e-4, "head_lr": 2e-3, "seed": 0}  # top_layers None: every layer
FILE = "mlm.safetensors"


def head_dir(name: str) -> Path:
    return cache_root() / f"{name}-mlm-v{VERSION}"


def news_sentences(n_train: int, n_heldout: int) -> tuple[list[str], list[str]]:
    """Sentences of the bundled news corpus: training from the first 80% of the articles, held-out
    from the last 10% (the 10% between was the dev slice the recipe was chosen on)."""
    from .pretrain.corpus import read_news, split_sentences

    docs = read_news()
    pick = lambda ds, n: [s for d in ds for s in split_sentences(d) if 5 <= len(s.split()) <= 40][:n]
    return pick(docs[:len(docs) * 8 // 10], n_train), pick(docs[len(docs) * 9 // 10:], n_heldout)


def prepare(model, tokenizer, train: list[str], heldout: list[str], recipe: dict = RECIPE) -> dict:
    """Train `model`'s top layers and MLM head in place; before/after held-out accuracy, timings."""
    from .pretrain.top_layers import cached_states, top_accuracy, train_top

    from .pretrain.top_layers import encoder_layers

    start = time.perf_counter()
    k = recipe["top_layers"] or len(encoder_layers(model))
    recipe = {**recipe, "top_layers": k}
    kw = dict(rate=recipe["rate"], max_length=recipe["max_length"])
    batches = cached_states(model, tokenizer, train, k, seed=recipe["seed"], **kw)
    held = cached_states(model, tokenizer, heldout, k, seed=recipe["seed"] + 1, **kw)
    before = top_accuracy(model, held, k)
    losses = train_top(model, batches, k, epochs=recipe["epochs"], lr=recipe["lr"], head_lr=recipe["head_lr"],
                       seed=recipe["seed"], progress=True)
    after = top_accuracy(model, held, k)
    return {"before": before, "after": after, "losses": [round(x, 4) for x in losses],
            "train_masks": sum(len(b["targets"]) for b in batches), "train_sentences": len(train),
            "heldout_sentences": len(heldout), "seconds": round(time.perf_counter() - start, 1), "recipe": recipe}


def ensure_head(name: str, model, tokenizer, sentences=None) -> dict:
    """Load the cached trained top layers + head into `model` (a masked LM whose head is new);
    prepare them first if not cached. `sentences` = (train, heldout); default: the news corpus."""
    from safetensors.torch import load_file, save_file

    from .pretrain.top_layers import trained_state

    target = head_dir(name)
    if (target / FILE).is_file():
        model.load_state_dict(load_file(str(target / FILE)), strict=False)
        return json.loads((target / "metrics.json").read_text(encoding="utf-8"))
    layers = f"top {RECIPE['top_layers']}" if RECIPE["top_layers"] else "transformer"
    print(f"[tunesmith] preparing fill-mask for the built-in '{name}' once: its {layers} layers and an MLM "
          f"head train on {RECIPE['train_sentences']:,} news sentences, the word embeddings stay frozen "
          f"(minutes on 2 cores); cache: {target}", flush=True)
    train, heldout = sentences or news_sentences(RECIPE["train_sentences"], RECIPE["heldout_sentences"])
    metrics = prepare(model, tokenizer, train, heldout)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-mlm-", dir=target.parent))
    try:
        save_file(trained_state(model, metrics["recipe"]["top_layers"]), str(tmp / FILE))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)  # atomic: a half-written cache is never picked up
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"[tunesmith] fill-mask ready ({metrics['seconds']:.0f} s): held-out masked-token top-1 "
          f"{metrics['before']['top1']:.3f} -> {metrics['after']['top1']:.3f}", flush=True)
    return metrics


def load_masked_lm(spec: str, prepare: bool = True, rebuild: bool = False):
    """(model, tokenizer, notes): a masked LM for fill-mask. A built-in encoder without an MLM head
    gets tunesmith's trained top layers + head (prepared once; `rebuild` prepares them again); any
    other checkpoint without one gets the initialised head `pretrain` starts from (untrained: said)."""
    from .models import load_tokenizer, resolve
    from .pretrain.heads import init_mlm_head, load_continued

    ref = resolve(spec)
    model, new = load_continued(ref, "mlm")
    tok = load_tokenizer(ref)
    name = ref.spec.lower()
    if rebuild and head_dir(name).exists():
        shutil.rmtree(head_dir(name))
    cached = (head_dir(name) / FILE).is_file()
    if new and ref.source == "builtin" and (prepare or cached):
        init_mlm_head(model, new)  # the start (and the "before" of its metrics): identity transform
        m = ensure_head(name, model, tok)
        k = m["recipe"]["top_layers"]
        return model, tok, [f"{ref.spec}'s MLM head and top {k} layer(s) were trained by tunesmith on "
                            f"news sentences: held-out masked-token top-1 {m['before']['top1']:.3f} -> "
                            f"{m['after']['top1']:.3f}, top-5 {m['before']['top5']:.3f} -> {m['after']['top5']:.3f}"]
    notes = init_mlm_head(model, new)
    if new:
        notes.insert(0, f"{ref.spec} has no trained MLM head: its head is newly initialised, so these "
                        "predictions are not meaningful (adapt it with `tunesmith pretrain` first)")
    return model, tok, notes
