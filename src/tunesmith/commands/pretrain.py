"""`tunesmith pretrain`: teach a model the language of a corpus (MLM, MLM+NSP or CLM)."""
from __future__ import annotations

import argparse

from ..pretrain.config import PretrainConfig
from .options import add_config_flags, load_config

ALIASES = {"model": "model.name", "corpus": "corpus.source", "objective": "objective.name",
           "init": "model.init", "size": "model.size", "tokenizer": "model.tokenizer",
           "epochs": "train.epochs", "max-steps": "train.max_steps", "lr": "train.learning_rate",
           "batch-size": "train.batch_size", "output": "output.dir", "resume": "output.resume",
           "whole-word": "objective.whole_word", "block-size": "objective.block_size",
           "max-length": "model.max_length", "text-column": "corpus.text_column", "seed": "train.seed"}


def register(sub) -> None:
    p = sub.add_parser(
        "pretrain", help="pre-train (MLM, MLM+NSP, CLM) from scratch or continued, on raw text",
        description="Pre-train a language model on a corpus: masked LM (80/10/10, optional whole-word), "
                    "MLM with next-sentence prediction, or causal LM; from a built-in/run/path or from "
                    "scratch. The run directory's model/ is a whole model: `tunesmith finetune --model RUN`.",
        epilog="examples:\n"
               "  tunesmith pretrain --model minilm --corpus news --objective mlm --max-steps 200\n"
               "  tunesmith pretrain --model minilm --corpus movie-reviews --whole-word   # training split only\n"
               "  tunesmith pretrain --model minilm --corpus news --objective mlm+nsp\n"
               "  tunesmith pretrain --model smollm2 --corpus notes.txt --objective clm --block-size 128\n"
               "  tunesmith pretrain --init scratch --size tiny --tokenizer wordpiece --corpus news\n"
               "  tunesmith pretrain --output runs/x --resume      # continue an interrupted run",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(p, PretrainConfig, ALIASES)
    p.set_defaults(func=run, accepts_overrides=True)


def run(args) -> int:
    from ..pretrain.pipeline import pretrain

    pretrain(load_config(args, PretrainConfig))
    return 0
