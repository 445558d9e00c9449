"""`tunesmith params`: exact trainable-parameter counts per method, from a model config alone."""
from __future__ import annotations

import argparse

from ..adapt.registry import REGISTRY
from ..strategy.formulas import breakdown, count_method, human_bytes, size_bytes

ALL = list(REGISTRY)  # every registered method

EPILOG = """examples:
  tunesmith params bert-base-uncased                          # the textbook's numbers
  tunesmith params bert-base-uncased --method lora --r 16 --targets query,key,value,attention.output.dense
  tunesmith params minilm --labels 5
  tunesmith params bert-base-uncased --method adapter,prefix --adapter-size 32 --prefix-projection
  tunesmith params path/to/config.json --dtype bf16
"""


def register(sub) -> None:
    p = sub.add_parser("params", help="exact parameter counts per method from a model config (no weights)",
                       description="Count total and trainable parameters for each adaptation method "
                                   "from a model's config alone, with the formula behind each number and "
                                   "the size on disk of each artifact.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default="bert-base-uncased",
                   help="preset (bert-base-uncased, bert-large-uncased), built-in model, model dir or config.json")
    p.add_argument("--method", default=",".join(ALL), help=f"comma-separated methods [default: all: {','.join(ALL)}]")
    p.add_argument("--labels", type=int, default=2, help="classes of the classification head [default: 2]")
    p.add_argument("--r", type=int, default=8, help="LoRA/DoRA rank [default: 8]")
    p.add_argument("--targets", default=None, help="modules LoRA/DoRA/IA3 wrap, comma-separated "
                   "[default by architecture; BERT LoRA: query,value]")
    p.add_argument("--num-virtual-tokens", type=int, default=20,
                   help="prompt/p-tuning/prefix tokens [default: 20]")
    p.add_argument("--prefix-projection", action="store_true", help="prefix: count the reparametrisation MLP")
    p.add_argument("--adapter-type", default="houlsby", choices=["houlsby", "pfeiffer"],
                   help="adapter placement [default: houlsby]")
    p.add_argument("--adapter-size", type=int, default=64, help="adapter bottleneck size [default: 64]")
    p.add_argument("--pooling", default="auto", choices=["auto", "mean", "cls"],
                   help="what the classifier reads: auto (each method's default, `tunesmith methods`: the mean "
                        "on BERT for head, lora and the prompt methods, one appended frozen layer) | mean | cls (the textbook's [CLS] counts) [default: auto]")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="for sizes on disk")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..strategy.configs import load_model_config

    config = load_model_config(args.model)
    options = dict(pooling=args.pooling, prefix_projection=args.prefix_projection, adapter_type=args.adapter_type,
                   adapter_size=args.adapter_size)
    print(report(config, args.model, [m.strip() for m in args.method.split(",") if m.strip()], args.labels,
                 args.r, args.targets.split(",") if args.targets else None, args.num_virtual_tokens, args.dtype,
                 **options))
    return 0


def report(config, name: str, methods: list[str], labels: int = 2, r: int = 8, targets=None,
           tokens: int = 20, dtype: str = "fp32", **options) -> str:
    """The printed report: where the parameters are, then one block per method."""
    lines = [f"model {name} ({config.model_type})"]
    for part, n, formula in breakdown(config):
        lines.append(f"  {part:<14}{n:>14,}  {formula}")
    full = count_method(config, "full", labels)
    lines.append(f"  + classification head ({labels} classes) {full.head:,} -> {full.base:,} with head\n")
    lines.append(f"{'method':<10}{'trainable':>13}{'of which head':>15}{'total':>14}{'trainable %':>13}"
                 f"{'artifact/task':>15}")
    blocks = []
    for m in methods:
        c = count_method(config, m, labels, r=r, targets=targets, num_virtual_tokens=tokens, **options)
        size = human_bytes(size_bytes(c.artifact_params(), dtype))
        lines.append(f"{m:<10}{c.trainable:>13,}{c.head:>15,}{c.total:>14,}{c.pct:>12.4f}%{size:>15}")
        detail = [f"{m}:"] + [f"  {f}" for f in c.formula]
        if c.adapter:
            also = f" and {c.extra_trainable:,} LayerNorm weights" if c.extra_trainable else ""
            detail.append(f"  {c.adapter:,} {m} parameters = {100.0 * c.adapter / c.total:.4f}% of {c.total:,} "
                          f"(backbone + head + {m}); the head's {c.head:,}{also} train as well "
                          f"-> {c.trainable:,} trainable = {c.pct:.4f}%")
        blocks.append("\n".join(detail))
    lines.append(f"\nartifact/task: {dtype} safetensors a run writes per task (full and head runs save the "
                 f"whole model; peft and adapter runs save what trains and share one base of "
                 f"{human_bytes(size_bytes(full.base, dtype))})\n")
    return "\n".join(lines + blocks)
