"""Probe: any method reading the mean of the token states (adapt/pooling.py) instead of [CLS].
The appended mean-pooling layer stays frozen (its weights *are* the pooling); BERT's pooler trains with
the non-peft methods, as with `head`. Everything after OUT goes to `tunesmith finetune` unchanged.
Usage: python scripts/mean_pooling_probe.py METHOD LR SEED DATA OUT [finetune options...]
Default budget: the compare budget (2,000 examples, 1 epoch, max_length 64, batch 32)."""
import sys
from dataclasses import replace

from tunesmith.adapt import pooling, registry
from tunesmith.cli import main

method, lr, seed, data, out = sys.argv[1:6]
extra = sys.argv[6:]
orig = registry.REGISTRY[method].apply


def with_mean(model, cfg, task):
    index = pooling.append_mean_pooling(model)
    m = orig(model, cfg, task)
    for name, p in m.named_parameters():
        if f".layer.{index}." in name:
            p.requires_grad = False  # the pooling itself
        elif ".pooler." in name and not registry.REGISTRY[method].peft:
            p.requires_grad = True  # peft methods would not save it (not in modules_to_save)
    return m


registry.REGISTRY[method] = replace(registry.REGISTRY[method], apply=with_mean)
budget = ["--data.max_train", "2000", "--epochs", "1", "--train.eval_every=32"] if not extra else extra
sys.exit(main(["finetune", "--model", "minilm", "--data", data, "--method", method, "--lr", lr, "--train.seed", seed,
               "--max-length", "64", "--batch-size", "32", "--output", out, *budget]))
