"""`tunesmith finetune`: adapt a pretrained model to labelled data and report on it."""
from __future__ import annotations

from ..config import FinetuneConfig
from ..finetune import finetune  # noqa: F401  (the core's entry point; tests import it from here too)
from .options import add_config_flags, load_config

ALIASES = {"model": "model.name", "data": "data.dataset", "method": "method.name", "epochs": "train.epochs",
           "lr": "train.learning_rate", "batch-size": "train.batch_size", "output": "output.dir",
           "resume": "output.resume", "merge": "output.merge", "task": "model.task",
           "text-column": "data.text_column", "label-column": "data.label_column", "seed": "train.seed",
           "max-length": "model.max_length", "train-file": "data.train", "validation-file": "data.validation",
           "test-file": "data.test", "augment": "augment.ops", "time-budget": "train.time_budget",
           "precision": "train.precision"}

def register(sub) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a model (full, lora, head) on labelled data and write a run directory",
        description="Fine-tune a pretrained model on labelled data. Everything lands in a run directory: "
                    "resolved config, metrics log, report (JSON, Markdown, PNG), tokenizer, label map, "
                    "model card and the model in formats plain transformers/peft load.",
        epilog="examples:\n  tunesmith finetune --model minilm --data movie-reviews --method lora\n"
               "  tunesmith finetune --data reviews.csv --text-column body --label-column stars\n"
               "  tunesmith finetune --config run.yaml --train.epochs=2\n"
               "  tunesmith finetune --output runs/x --resume     # continue an interrupted run",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    add_config_flags(p, FinetuneConfig, ALIASES)
    p.set_defaults(func=run, accepts_overrides=True)


def run(args) -> int:
    cfg = load_config(args, FinetuneConfig)
    if cfg.model.task == "generation" and not _method_given(args):
        cfg.method.name = "lora"  # a decoder's default: LoRA (full stays available with --method full)
    finetune(cfg)
    return 0


def _method_given(args) -> bool:
    import yaml

    if "method.name" in vars(args) or any(e.startswith("--method.name") for e in args.extra):
        return True
    if args.config:
        loaded = yaml.safe_load(open(args.config, encoding="utf-8")) or {}
        return "name" in (loaded.get("method") or {})
    return False
