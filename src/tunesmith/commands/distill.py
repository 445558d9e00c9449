"""`tunesmith distill`: train a small classifier on a big run's soft targets plus the gold labels."""
from __future__ import annotations

import argparse

from ..config import FinetuneConfig
from .finetune import ALIASES as FINETUNE_ALIASES
from .options import add_config_flags, load_config

ALIASES = {**{k: v for k, v in FINETUNE_ALIASES.items() if k not in ("model", "task")},
           "teacher": "distill.teacher", "student": "model.name", "temperature": "distill.temperature",
           "alpha": "distill.alpha", "unlabelled": "distill.unlabelled"}

EPILOG = """how it works:
  The teacher's logits for every training text are computed once (its fast inference path) and cached
  in the teacher's run directory. The student minimises
      alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * cross-entropy(gold)
  and texts without labels (--unlabelled, or augmented copies with --augment) add soft targets;
  unlabelled texts that are validation or test texts of --data are dropped (and counted).
  The result is an ordinary classification run: report, model card naming the teacher, fast
  inference, servable. Use the same --data, split and seed as the teacher so the test split is the
  one the teacher never trained on (distill refuses a teacher trained on another split).

examples:
  tunesmith finetune --model mpnet --data movie-reviews --output runs/teacher
  tunesmith distill --teacher runs/teacher --student minilm --data movie-reviews
  tunesmith distill --teacher runs/teacher --student minilm --data movie-reviews --temperature 4 --alpha 0.9
  tunesmith distill --teacher runs/teacher --data movie-reviews --unlabelled more_reviews.txt
  # soft targets on 3 augmented copies and on 3 built-in sets (their labels dropped):
  tunesmith distill --teacher runs/teacher --data movie-reviews --augment eda --augment.copies 3 --unlabelled amazon-reviews,nyt-editorials,tweets
"""


def register(sub) -> None:
    p = sub.add_parser("distill", help="train a small model on a finished run's soft targets (knowledge distillation)",
                       description="Knowledge distillation: fine-tune a student model (default minilm) on the "
                                   "teacher run's soft targets plus the gold labels. Every finetune option applies.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(p, FinetuneConfig, ALIASES)
    p.set_defaults(func=run, accepts_overrides=True)


def run(args) -> int:
    from ..errors import TunesmithError
    from .finetune import finetune

    cfg = load_config(args, FinetuneConfig)
    if not cfg.distill.teacher:
        raise TunesmithError("distill needs --teacher RUN: a finished classification run "
                             "(e.g. `tunesmith finetune --model mpnet --data movie-reviews --output runs/teacher`)")
    check_teacher_split(cfg)
    finetune(cfg)
    return 0


def check_teacher_split(cfg: FinetuneConfig) -> None:
    """The student's test split must be one the teacher never trained on: same data and split."""
    import json
    from pathlib import Path

    from ..distill import teacher_labels
    from ..errors import TunesmithError

    teacher_labels(cfg.distill.teacher)  # a finished classification run, or a clear error
    resolved = Path(cfg.distill.teacher) / "config.yaml"
    if not resolved.is_file():
        return
    import yaml

    tdata = (yaml.safe_load(resolved.read_text(encoding="utf-8")) or {}).get("data", {})
    mine = {k: getattr(cfg.data, k) for k in ("dataset", "train", "seed", "val_size", "test_size")}
    theirs = {k: tdata.get(k) for k in mine}
    if mine != theirs:
        diff = {k: (theirs[k], mine[k]) for k in mine if mine[k] != theirs[k]}
        raise TunesmithError(f"the teacher {cfg.distill.teacher} was trained on another split "
                             f"(teacher vs student: {json.dumps(diff)}); its soft targets would leak the "
                             "student's test examples. Use the teacher's data settings.")
