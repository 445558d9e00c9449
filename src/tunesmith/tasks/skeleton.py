"""The fine-tuning skeleton every task pipeline shares, and the run context that carries a run's
state through it (instead of 11-14 positional arguments).

    prepare the run (finetune.py; pretrain/pipeline.py) -> [task: data, tokenizer, model, method,
    trainer]
    -> start (run.json, kept in memory) -> free-space check -> resume (trims the metrics log
    past the checkpoint) -> train -> main-process guard -> [task: save, evaluate the held-out
    split, report] -> finish

The task code supplies only what differs: reading its data, its trainer and its evaluation and
report. Every task gets the shared steps, so they cannot drift apart again (NER and generation
once lacked metric trimming on resume, the free-space check and the main-process guard; so did
pre-training, which runs on the same skeleton with its objective, collator, metrics and report).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import runs
from ..config import FinetuneConfig
from ..pretrain.config import PretrainConfig


def say(msg: str) -> None:
    if runs.is_main_process():  # under `accelerate launch` every process runs this code
        print(msg, flush=True)


@dataclass
class RunContext:
    """One fine-tuning (or pre-training) run's state, filled in as the skeleton goes."""

    cfg: FinetuneConfig | PretrainConfig
    run: Path
    ref: Any = None  # models.ModelRef of the base model
    task: str = ""
    info: dict = field(default_factory=dict)  # run.json, written by start() and finish() from memory
    tokenizer: Any = None
    model: Any = None
    params: dict = field(default_factory=dict)  # adapt.param_table
    trainer: Any = None
    result: Any = None  # Trainer.train's TrainOutput
    seconds: float = 0.0
    steps: int = 0

    def training(self, examples: int, samples_per_second: float | None = None) -> dict:
        """The report's `training` block every task shares."""
        sps = samples_per_second if samples_per_second is not None else \
            self.result.metrics.get("train_samples_per_second", 0.0)
        return {"steps": self.steps, "epochs": float(self.result.metrics.get("epoch", self.cfg.train.epochs)),
                "seconds": round(self.seconds, 2), "train_loss": self.result.training_loss,
                "samples_per_second": round(sps, 2), "examples": examples}


HELD_OUT = ("test", "validation")  # the split a run is judged on: test where there is one


def held_out(splits: dict, default=None):
    """The split (or its metrics) that counts: test, else validation (the one rule, for reports,
    run.json, model cards, compare and the fast-path check)."""
    return next((splits[s] for s in HELD_OUT if splits.get(s)), default)


def held_out_name(splits: dict) -> str | None:
    return next((s for s in HELD_OUT if splits.get(s)), None)


def checkpoint_bytes(model, params: dict, save_total_limit: int) -> int:
    """Rough disk need: kept checkpoints (+1 being written, +1 best) of weights and AdamW state,
    plus the final model; adapters (peft) save only their trainable weights."""
    from ..adapt.registry import is_peft_model

    weights = 4 * (params["trainable"] if is_peft_model(model) else params["total"])
    per_checkpoint = weights + 8 * params["trainable"]
    return (max(save_total_limit or 1, 1) + 2) * per_checkpoint + 2 * 4 * params["total"]


def start(ctx: RunContext, info: dict) -> None:
    """run.json (status running) and the free-space check, once the model is built."""
    method = getattr(ctx.cfg, "method", None)  # pre-training has no adaptation method
    ctx.info = runs.start(ctx.run, {"task": ctx.task, **({"method": method.name} if method else {}), **info})
    runs.check_free_space(ctx.run, checkpoint_bytes(ctx.model, ctx.params, ctx.cfg.train.save_total_limit))


def resume_point(ctx: RunContext) -> str | None:
    """The checkpoint to resume from (None: from step 0); the metrics log loses the lines past it,
    which the resumed run logs again."""
    from ..trainer import last_checkpoint

    if not ctx.cfg.output.resume:
        return None
    resume = last_checkpoint(ctx.run)
    say(f"resuming from {resume}" if resume else "no complete checkpoint yet: starting from step 0")
    runs.trim_metrics(ctx.run, int(resume.rsplit("-", 1)[-1]) if resume else 0)
    return resume


def train(ctx: RunContext) -> bool:
    """Resume where there is a checkpoint, train and time it; True on the main process, the one
    that goes on to save, evaluate and write the run files."""
    resume = resume_point(ctx)
    t0 = time.perf_counter()
    ctx.result = ctx.trainer.train(resume_from_checkpoint=resume)
    ctx.seconds = time.perf_counter() - t0
    ctx.steps = ctx.trainer.state.global_step
    ctx.model = ctx.trainer.model
    return runs.is_main_process()


def other_process(ctx: RunContext) -> dict:
    """What a non-main process returns: it trained its share and writes nothing."""
    return {"task": ctx.task, "process": runs.process_rank(), "steps": ctx.steps}


def finish(ctx: RunContext, extra: dict) -> None:
    """run.json says complete, from the context's copy (no read back)."""
    ctx.info = runs.finish(ctx.run, extra, ctx.info)
