"""The complete text-classification pipeline: data -> split -> token statistics -> training ->
evaluation -> artifacts and report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import distill, lean_train, runs
from ..adapt import apply_method, format_param_table, param_table
from ..adapt.registry import reads_mean
from ..config import FinetuneConfig
from ..adapt.mixup import enable_mixup
from ..data.augment import augmented_train_rows
from ..data.labelled import LabelledData, load_labelled
from ..data.stats import format_stats, length_stats, token_lengths
from ..evaluate.metrics import classification_metrics, format_confusion
from ..evaluate.report import model_card, write_report
from ..infer.predictor import Predictor
from ..models import base_path, load_for_task, load_tokenizer, resolve
from ..trainer import RunLogCallback, TunesmithTrainer, announce_precision, quiet_trainer, training_args
from .skeleton import RunContext, finish, held_out as held_out_metrics, held_out_name, other_process, say, start, train


def to_dataset(rows: list[dict], tokenizer, label2id: dict[str, int], max_length: int):
    """Tokenised datasets.Dataset with a `length` column for length-grouped batches (no padding)."""
    from datasets import Dataset

    enc = tokenizer([r["text"] for r in rows], truncation=True, max_length=max_length)
    data = {k: enc[k] for k in enc.keys()}
    data["labels"] = [label2id[r["label"]] if r["label"] is not None else -100 for r in rows]  # -100: unlabelled
    data["length"] = [len(x) for x in enc["input_ids"]]
    if rows and distill.COLUMN in rows[0]:  # soft targets of a teacher (distillation)
        data[distill.COLUMN] = [r[distill.COLUMN] for r in rows]
    return Dataset.from_dict(data)


def compute_metrics_fn(labels: list[str]):
    def compute(pred) -> dict:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        m = classification_metrics(pred.label_ids, np.argmax(logits, axis=-1), labels)
        return {k: m[k] for k in ("accuracy", "precision", "recall", "f1")}
    return compute


def predicted_ids(predictor: Predictor, rows: list[dict]) -> list[int]:
    return predictor.logits([r["text"] for r in rows]).argmax(-1).tolist()


def gold_ids(rows: list[dict], labels: list[str]) -> list[int]:
    label2id = {l: i for i, l in enumerate(labels)}
    return [label2id[r["label"]] for r in rows]


def split_metrics(pred: list[int], rows: list[dict], labels: list[str], split: str) -> dict:
    return {"split": split, **classification_metrics(gold_ids(rows, labels), np.asarray(pred), labels)}


def evaluate_rows(predictor: Predictor, rows: list[dict], labels: list[str], split: str) -> dict:
    return split_metrics(predicted_ids(predictor, rows), rows, labels, split)


def token_statistics(tokenizer, data: LabelledData, max_length: int) -> dict:
    stats = {s: length_stats(token_lengths(tokenizer, [r["text"] for r in rows]), max_length)
             for s, rows in data.splits.items()}
    for name, s in stats.items():
        say("  " + format_stats(name, s))
    return stats


def finetune_classification(cfg: FinetuneConfig, run: Path) -> dict:
    """Fine-tune, evaluate and write a complete run directory; returns the report."""
    torch.manual_seed(cfg.train.seed)
    ctx = RunContext(cfg, run, resolve(cfg.model.name), "classification")
    data = load_labelled(cfg.data)
    say(f"data: {cfg.data.dataset if not cfg.data.train else cfg.data.train} -> "
        + ", ".join(f"{k} {v}" for k, v in data.info["sizes"].items()) + f"; labels {data.labels}")
    if data.info.get("dataset", {}).get("dropped_neutral"):
        say(f"  dropped {data.info['dataset']['dropped_neutral']} neutral (rating 0) examples")
    ctx.tokenizer = tokenizer = load_tokenizer(ctx.ref)
    say(f"token lengths (max_length {cfg.model.max_length}):")
    stats = token_statistics(tokenizer, data, cfg.model.max_length)
    runs.write_json(run / "token_stats.json", stats)

    model, new_weights = load_for_task(ctx.ref, "classification", data.labels)
    if new_weights:
        say(f"newly initialised: {', '.join(new_weights)}")
    ctx.model = model = apply_method(model, cfg.method, "classification")
    lean = install_lean(model, cfg)
    ctx.params = param_table(model)
    say(format_param_table(ctx.params, cfg.method.name))
    runs.write_json(run / "params.json", ctx.params)
    runs.write_json(run / "labels.json", dict(enumerate(data.labels)))
    precision = announce_precision(cfg.train, say)
    start(ctx, {**run_info(cfg, ctx.ref, data), "pooling": "mean" if reads_mean(model) else "cls",
                "precision": precision, "lean_training": lean})

    train_rows = augmented_train_rows(data, cfg.augment, cfg.train.seed)  # training split only
    if cfg.distill.teacher:
        held_out = [r["text"] for split in ("validation", "test") for r in data.splits.get(split) or []]
        train_rows = distill.training_rows(train_rows, cfg, data.labels, say, held_out)
    train_ds = to_dataset(train_rows, tokenizer, data.label2id, cfg.model.max_length)
    val_ds = to_dataset(data.splits["validation"], tokenizer, data.label2id, cfg.model.max_length) \
        if data.splits.get("validation") else None
    ctx.trainer = trainer = build_trainer(cfg, run, model, tokenizer, train_ds, val_ds, data.labels)
    if "mixup" in cfg.augment.ops:
        enable_mixup(trainer, cfg.augment.mixup_alpha, cfg.train.seed)
    if cfg.distill.teacher:
        distill.enable_distillation(trainer, cfg.distill.temperature, cfg.distill.alpha)
    plan = fit_budget(cfg, run, trainer, data, train_ds, val_ds)
    main = train(ctx)
    lean_train.uninstall(ctx.model)  # saved, served and exported with the class's own forward
    ctx.result.metrics["time_budget_plan"] = plan
    if not main:  # the main process evaluates and writes the run files
        return other_process(ctx)
    return finish_classification(ctx, data, stats, new_weights)


def install_lean(model, cfg: FinetuneConfig) -> dict:
    """The lean training pass (lean_train.py) where it applies; what happened, for run.json."""
    if not cfg.train.lean:
        say("lean training pass: off (train.lean=false)")
        return {"used": False, "why": "train.lean=false"}
    used, why = lean_train.install(model)
    say("lean training pass: on (last layer for [CLS] only; same loss and gradients)" if used
        else f"lean training pass: not used ({why}); plain forward")
    return {"used": used, "why": why}


def int8_check_seconds(n_texts: int) -> float:
    """What finetune's int8-row-compile check costs: compiling (~5 s with inductor's cache warm,
    ~35 s cold, measured) plus a pass over the held-out split; 0 where the check does not run
    (no VNNI/AMX, or too few texts: infer/fast_check.py), so a budget does not keep 45 s for it."""
    import tempfile

    from ..infer.fast_check import skip_reason
    from ..infer.verify import CHECKED

    if all(skip_reason(path, n_texts) is not None for path in CHECKED):
        return 0.0
    cache = Path(tempfile.gettempdir()) / f"torchinductor_{__import__('getpass').getuser()}"
    warm = cache.is_dir() and any(cache.iterdir())
    return (8.0 if warm else 40.0) + n_texts / 200


def fit_budget(cfg: FinetuneConfig, run: Path, trainer, data: LabelledData, train_ds, val_ds):
    """With train.time_budget: measure and plan the schedule (budget.py); None otherwise."""
    if not cfg.train.time_budget:
        return None
    from .. import budget

    held_out = sum(len(data.splits.get(s) or []) for s in ("validation", "test"))
    return budget.maybe_fit(trainer, run, cfg.train, len(train_ds), len(val_ds or []), held_out,
                            cfg.output.resume, say, extra_after_s=int8_check_seconds(len(data.splits.get("test") or [])))


def build_trainer(cfg, run, model, tokenizer, train_ds, val_ds, labels):
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback

    args = training_args(cfg.train, run, cfg.learning_rate(), len(train_ds), val_ds is not None)
    callbacks = [RunLogCallback(run, cfg.train.metric)]
    if cfg.train.early_stopping_patience and val_ds is not None:
        callbacks.append(EarlyStoppingCallback(cfg.train.early_stopping_patience))
    trainer = TunesmithTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                               data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                               compute_metrics=compute_metrics_fn(labels), callbacks=callbacks)
    trainer.layer_lr_decay = cfg.train.layer_lr_decay
    trainer.head_lr = cfg.head_learning_rate()
    # Sequence classifiers take **kwargs but ignore num_items_in_batch, yet Trainer then scales
    # the loss by the number of processes (transformers 5.24): 2 processes trained with 2x the
    # gradient of one. Classification batches are equal-sized, so the plain DDP mean is right.
    trainer.model_accepts_loss_kwargs = False
    return quiet_trainer(trainer)


def run_info(cfg: FinetuneConfig, ref, data: LabelledData) -> dict:
    extra = {"distillation": {"teacher": str(Path(cfg.distill.teacher).resolve()), "temperature": cfg.distill.temperature,
                              "alpha": cfg.distill.alpha, "unlabelled": cfg.distill.unlabelled}} \
        if cfg.distill.teacher else {}
    return {**extra, "base_model": cfg.model.name,
            "base_model_path": base_path(ref), "base_model_source": ref.source,
            "data": cfg.data.train or cfg.data.dataset, "labels": data.labels,
            "max_length": cfg.model.max_length}


def finish_classification(ctx: RunContext, data: LabelledData, stats: dict, new_weights: list[str]) -> dict:
    cfg, run, info = ctx.cfg, ctx.run, ctx.info
    merged = runs.save_artifacts(run, ctx.model, ctx.tokenizer, cfg.method.name, cfg.output.merge)
    predictor = Predictor(merged, ctx.tokenizer, "classification", cfg.model.max_length)
    preds = {s: predicted_ids(predictor, data.splits[s]) for s in ("validation", "test") if data.splits.get(s)}
    evaluation = {s: split_metrics(p, data.splits[s], data.labels, s) for s, p in preds.items()}
    held_out = held_out_name(preds)  # what the int8 check runs on
    plan = ctx.result.metrics.get("time_budget_plan")
    if plan is not None and budget_left(plan) < int8_check_seconds(len(data.splits[held_out])):
        fast_paths = skip_fast_paths(run, f"not checked: the time budget leaves {budget_left(plan):.0f} s")
    else:
        fast_paths = check_fast_paths(run, cfg, data, merged, ctx.tokenizer, held_out, preds.get(held_out))
    n_train = len(data.splits["train"])
    sps = ctx.steps * cfg.train.batch_size * cfg.train.grad_accum * runs.world_size() / max(ctx.seconds, 1e-9)
    report = {
        "task": "classification", "model": cfg.model.name, "data": cfg.data.train or cfg.data.dataset,
        "method": cfg.method.name, "labels": data.labels, "data_info": data.info,
        "learning_rate": cfg.learning_rate(), "params": ctx.params, "token_stats": stats,
        "newly_initialised": new_weights, "evaluation": evaluation, "fast_paths": fast_paths,
        "training": {**ctx.training(n_train, sps), "precision": info.get("precision", {}).get("precision"),
                     "lean": info.get("lean_training", {}).get("used", False)},
    }
    if plan is not None:
        from dataclasses import asdict

        report["training"]["time_budget"] = {**asdict(plan), "actual_s": round(budget_elapsed(), 1)}
    write_report(run, report, cfg.train.metric)
    model_card(run, info, report)
    finish(ctx, {"test": evaluation.get("test", {}).get("accuracy")})
    for split, m in evaluation.items():
        say(f"{split}: accuracy {m['accuracy']:.4f}  precision {m['precision']:.4f}  "
            f"recall {m['recall']:.4f}  F1 {m['f1']:.4f}  (n={m['n']})")
    main = held_out_metrics(evaluation)
    if main:
        say(f"confusion matrix ({main['split']}):\n" + format_confusion(main["confusion_matrix"], main["labels"]))
    say_fast_paths(fast_paths, held_out)
    if plan is not None:
        say(f"time budget {plan.budget_s:.0f} s: planned {plan.planned_s:.0f} s, actual {budget_elapsed():.0f} s")
    return report


def budget_elapsed() -> float:
    from ..budget import elapsed

    return elapsed()


def budget_left(plan) -> float:
    return plan.budget_s - budget_elapsed()


def skip_fast_paths(run: Path, why: str) -> dict:
    from ..infer.verify import CHECKED, write_record

    checks = {p: {"default_ok": False, "why": why} for p in CHECKED}
    write_record(run, checks, why)
    return checks


def check_fast_paths(run, cfg, data, model, tokenizer, split: str, ref: list[int] | None) -> dict:
    """Run the inexact fast paths (int8-row-compile) on the held-out `split`, whose fp32 labels are
    `ref`, and record whether `--fast auto` may use them for this run (infer/verify.py)."""
    from ..infer.fast_check import check_paths
    from ..infer.verify import write_record

    if not ref or not runs.is_main_process():
        return {}
    rows = data.splits[split]
    checks = check_paths(model, tokenizer, [r["text"] for r in rows], gold_ids(rows, data.labels), ref,
                         cfg.model.max_length)
    write_record(run, checks, f"{split} split ({len(rows)} texts)")
    return checks


def say_fast_paths(checks: dict, split: str) -> None:
    for path, c in checks.items():
        if "labels_changed_pct" in c:
            say(f"fast path {path}: {c['labels_changed_pct']:.2f}% of {split} labels changed vs fp32, "
                f"accuracy {c['accuracy']:.2f}% vs {c['fp32_accuracy']:.2f}% -> "
                + ("--fast auto uses it for long inputs" if c["default_ok"] else f"opt-in only ({c['why']})"))
        else:
            say(f"fast path {path}: not checked ({c['why']})")
