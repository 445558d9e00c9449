"""Probe (not a method yet): prompt tuning or p-tuning reading the mean-pooled states (adapt/pooling.py),
BERT's pooler trainable, at the compare budget. Usage: python scripts/prompt_mean_probe.py METHOD (prompt|ptuning) LR SEED DATA OUT"""
import sys
from dataclasses import replace

from tunesmith.adapt import methods, pooling, registry
from tunesmith.cli import main

method, lr, seed, data, out = sys.argv[1:6]
orig = registry.REGISTRY[method].apply


def with_mean(model, cfg, task):
    pooling.append_mean_pooling(model)
    m = orig(model, cfg, task)
    for name, p in m.named_parameters():  # BERT's pooler trains, as with head
        if ".pooler." in name:
            p.requires_grad = True
    return m


registry.REGISTRY[method] = replace(registry.REGISTRY[method], apply=with_mean)
sys.exit(main(["finetune", "--model", "minilm", "--data", data, "--method", method, "--lr", lr, "--train.seed", seed,
               "--data.max_train", "2000", "--epochs", "1", "--max-length", "64", "--batch-size", "32",
               "--train.eval_every=32", "--output", out]))
