"""Scoring a finished run on labelled data, one function per task (the task records' `evaluate`
entries point here); `tunesmith evaluate` (commands/evaluate.py) is the thin CLI over it.

Classification runs: accuracy, precision, recall, F1, confusion matrix. NER runs: entity-level
precision/recall/F1 per type (seqeval) and token accuracy. Generation runs: perplexity. Each writes
report.json (and plots) into `out` and prints a summary; returns the exit code.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .. import runs
from ..errors import TunesmithError


@dataclass
class EvalRequest:
    """What to evaluate, and where the report goes."""

    run: str  # run directory written by `tunesmith finetune`
    data: str  # labelled file, or a built-in data set name (the run's own test split)
    text_column: str | None = None  # classification: text column (auto-detected)
    label_column: str | None = None  # classification: label column (auto-detected)
    strict: bool = False  # NER: seqeval strict mode (exact IOB2 sequences)
    out: str | None = None  # report directory (default: RUN/eval-<data>-<time>)


def evaluate_run(req: EvalRequest) -> int:
    """Score `req.run` with its task's evaluate function (the task record's `evaluate`).

        >>> evaluate_run(EvalRequest("runs/sentiment", "test.csv"))  # doctest: +SKIP
        0
    """
    info = runs.load_run(req.run)
    from ..tasks.registry import REGISTRY

    handlers = {name: t.evaluate_fn() for name, t in REGISTRY.items() if t.evaluate}
    if info.get("task") not in handlers:
        raise TunesmithError(f"{req.run}: cannot evaluate a '{info.get('task')}' run; "
                             f"tasks: {', '.join(handlers)}")
    return handlers[info["task"]](req, info)


def out_dir(req: EvalRequest) -> Path:
    out = Path(req.out) if req.out else Path(req.run) / f"eval-{Path(req.data).stem}-{time.strftime('%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def classification_rows(req: EvalRequest, info: dict) -> list[dict]:
    from ..data.builtin import LABELLED
    from ..data.labelled import check_known_labels, load_labelled, read_labelled_file

    if req.data in LABELLED:
        return load_labelled(held_out_config(req.run, req.data)).splits["test"]  # the run's own split
    rows, _ = read_labelled_file(req.data, req.text_column, req.label_column,
                                 empty_hint="give them text or remove those rows: evaluate scores every row")
    check_known_labels({Path(req.data).name: rows}, info["labels"])
    return rows


def held_out_config(run, dataset: str):
    """The DataConfig that rebuilds the run's own split of `dataset`: the run's seed, val_size,
    test_size, max_eval and drop_empty (the seed alone gives another test split when they differ)."""
    import yaml

    from ..config import DataConfig

    data = (yaml.safe_load((Path(run) / "config.yaml").read_text()) or {}).get("data") or {}
    keep = ("seed", "val_size", "test_size", "max_eval", "drop_empty", "text_column", "label_column")
    return DataConfig(dataset=dataset, **{k: data[k] for k in keep if k in data})


def evaluate_classification(req: EvalRequest, info: dict) -> int:
    from .metrics import format_confusion
    from .plots import confusion_png
    from ..infer.predictor import Predictor
    from ..tasks.classification import evaluate_rows

    labels = info["labels"]
    rows = classification_rows(req, info)
    m = evaluate_rows(Predictor.load(req.run), rows, labels, "evaluation")
    out = out_dir(req)
    runs.write_json(out / "report.json", {"run": str(req.run), "data": req.data, **m})
    confusion_png(m["confusion_matrix"], labels, out / "confusion_matrix.png", f"{Path(req.data).name} (n={m['n']})")
    print(f"accuracy {m['accuracy']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
          f"F1 {m['f1']:.4f}  (n={m['n']}; F1 {m['average']})")
    print(format_confusion(m["confusion_matrix"], labels))
    print(f"report: {out / 'report.json'}")
    return 0


def evaluate_ner(req: EvalRequest, info: dict) -> int:
    from .ner_metrics import format_ner_table
    from ..tasks.ner import evaluate_file

    m = evaluate_file(req.run, req.data, strict=req.strict)
    out = out_dir(req)
    runs.write_json(out / "report.json", {"run": str(req.run), **m})
    print(f"entity F1 {m['f1']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
          f"token accuracy {m['token_accuracy']:.4f}  ({m['entities']} entities, {m['sentences']} sentences, "
          f"{m['mode']} mode)")
    print("\n".join(format_ner_table(m)))
    print(f"report: {out / 'report.json'}")
    return 0


def evaluate_generation(req: EvalRequest, info: dict) -> int:
    from ..config import FinetuneConfig, load as load_config
    from ..infer.predictor import load_run_model
    from ..models import ModelRef, load_tokenizer
    from ..tasks.generation import encode, perplexity, read_documents

    run = Path(req.run)
    cfg = load_config(FinetuneConfig, str(run / "config.yaml"), {})
    cfg.data.train, cfg.data.dataset = None, req.data  # read it the way the run read its training data
    tokenizer = load_tokenizer(ModelRef(str(run), str(run / "model"), "run", run=run))
    rows, _ = read_documents(cfg)
    m = perplexity(load_run_model(run, info), tokenizer, encode(tokenizer, rows, cfg))
    out = out_dir(req)
    runs.write_json(out / "report.json", {"run": str(run), "data": req.data, **m})
    print(f"perplexity {m['perplexity']:.3f}  (loss {m['loss']:.4f} over {m['tokens']} tokens)")
    print(f"report: {out / 'report.json'}")
    return 0
