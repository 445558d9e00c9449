"""Probe (not a method yet): prompt tuning or p-tuning reading the mean-pooled states (adapt/pooling.py),
BERT's pooler trainable, at the compare budget.
Usage: python scripts/prompt_mean_probe.py METHOD (prompt|ptuning) LR SEED DATA OUT [SCALE]
SCALE (prompt only): the virtual-token embeddings are stored divided by SCALE and multiplied back in
the forward, so AdamW moves them SCALE times faster than the pooler and head (one lr, two rates).
With SCALE the saved artifact holds the stored (divided) table: a probe, not a run to ship."""
import sys
from dataclasses import replace

from tunesmith.adapt import methods, pooling, registry
from tunesmith.cli import main

method, lr, seed, data, out = sys.argv[1:6]
scale = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
orig = registry.REGISTRY[method].apply


def with_mean(model, cfg, task):
    pooling.append_mean_pooling(model)
    m = orig(model, cfg, task)
    for name, p in m.named_parameters():  # BERT's pooler trains, as with head
        if ".pooler." in name:
            p.requires_grad = True
    if scale != 1.0:
        import torch

        emb = m.prompt_encoder["default"].embedding
        with torch.no_grad():
            emb.weight.div_(scale)
        emb.register_forward_hook(lambda mod, inp, out: out * scale)
    return m


registry.REGISTRY[method] = replace(registry.REGISTRY[method], apply=with_mean)
sys.exit(main(["finetune", "--model", "minilm", "--data", data, "--method", method, "--lr", lr, "--train.seed", seed,
               "--data.max_train", "2000", "--epochs", "1", "--max-length", "64", "--batch-size", "32",
               "--train.eval_every=32", "--output", out]))
