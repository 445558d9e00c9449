"""`tunesmith evaluate RUN --data FILE`: score a finished run on labelled data.

Classification runs: accuracy, precision, recall, F1, confusion matrix. NER runs: entity-level
precision/recall/F1 per type (seqeval) and token accuracy. Generation runs: perplexity.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .. import runs
from ..errors import TunesmithError


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a finished run on labelled data (classification, NER, "
                                        "generation)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  tunesmith evaluate runs/sentiment --data test.csv\n"
                              "  tunesmith evaluate runs/sentiment --data movie-reviews   # the run's own test split\n"
                              "  tunesmith evaluate runs/ner --data test.conll --strict\n"
                              "  tunesmith evaluate runs/gen --data held_out.txt")
    p.add_argument("run", help="run directory written by `tunesmith finetune`")
    p.add_argument("--data", required=True, help="labelled file (.csv .tsv .json .jsonl .parquet; .conll for NER; "
                                                 ".txt/.jsonl for generation) or a built-in data set name "
                                                 "(evaluates on the run's own test split)")
    p.add_argument("--text-column", help="classification: text column (auto-detected)")
    p.add_argument("--label-column", help="classification: label column (auto-detected)")
    p.add_argument("--strict", action="store_true", help="NER: seqeval strict mode (exact IOB2 sequences)")
    p.add_argument("--out", help="where to write the report (default: RUN/eval-<data>-<time>)")
    p.set_defaults(func=run)


def out_dir(args) -> Path:
    out = Path(args.out) if args.out else Path(args.run) / f"eval-{Path(args.data).stem}-{time.strftime('%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def run(args) -> int:
    info = runs.load_run(args.run)
    from ..tasks.registry import REGISTRY

    handlers = {name: t.evaluate_fn() for name, t in REGISTRY.items() if t.evaluate}
    if info.get("task") not in handlers:
        raise TunesmithError(f"{args.run}: cannot evaluate a '{info.get('task')}' run; "
                             f"tasks: {', '.join(handlers)}")
    return handlers[info["task"]](args, info)


def classification_rows(args, info: dict) -> list[dict]:
    from ..data.builtin import LABELLED
    from ..data.labelled import check_known_labels, load_labelled, read_labelled_file

    if args.data in LABELLED:
        return load_labelled(held_out_config(args.run, args.data)).splits["test"]  # the run's own split
    rows, _ = read_labelled_file(args.data, args.text_column, args.label_column,
                                 empty_hint="give them text or remove those rows: evaluate scores every row")
    check_known_labels({Path(args.data).name: rows}, info["labels"])
    return rows


def held_out_config(run, dataset: str):
    """The DataConfig that rebuilds the run's own split of `dataset`: the run's seed, val_size,
    test_size, max_eval and drop_empty (the seed alone gives another test split when they differ)."""
    import yaml

    from ..config import DataConfig

    data = (yaml.safe_load((Path(run) / "config.yaml").read_text()) or {}).get("data") or {}
    keep = ("seed", "val_size", "test_size", "max_eval", "drop_empty", "text_column", "label_column")
    return DataConfig(dataset=dataset, **{k: data[k] for k in keep if k in data})


def evaluate_classification(args, info: dict) -> int:
    from ..evaluate.metrics import format_confusion
    from ..evaluate.plots import confusion_png
    from ..infer.predictor import Predictor
    from ..tasks.classification import evaluate_rows

    labels = info["labels"]
    rows = classification_rows(args, info)
    m = evaluate_rows(Predictor.load(args.run), rows, labels, "evaluation")
    out = out_dir(args)
    runs.write_json(out / "report.json", {"run": str(args.run), "data": args.data, **m})
    confusion_png(m["confusion_matrix"], labels, out / "confusion_matrix.png", f"{Path(args.data).name} (n={m['n']})")
    print(f"accuracy {m['accuracy']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
          f"F1 {m['f1']:.4f}  (n={m['n']}; F1 {m['average']})")
    print(format_confusion(m["confusion_matrix"], labels))
    print(f"report: {out / 'report.json'}")
    return 0


def evaluate_ner(args, info: dict) -> int:
    from ..evaluate.ner_metrics import format_ner_table
    from ..tasks.ner import evaluate_file

    m = evaluate_file(args.run, args.data, strict=args.strict)
    out = out_dir(args)
    runs.write_json(out / "report.json", {"run": str(args.run), **m})
    print(f"entity F1 {m['f1']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
          f"token accuracy {m['token_accuracy']:.4f}  ({m['entities']} entities, {m['sentences']} sentences, "
          f"{m['mode']} mode)")
    print("\n".join(format_ner_table(m)))
    print(f"report: {out / 'report.json'}")
    return 0


def evaluate_generation(args, info: dict) -> int:
    from ..config import FinetuneConfig, load as load_config
    from ..infer.predictor import load_run_model
    from ..models import ModelRef, load_tokenizer
    from ..tasks.generation import encode, perplexity, read_documents

    run = Path(args.run)
    cfg = load_config(FinetuneConfig, str(run / "config.yaml"), {})
    cfg.data.train, cfg.data.dataset = None, args.data  # read it the way the run read its training data
    tokenizer = load_tokenizer(ModelRef(str(run), str(run / "model"), "run", run=run))
    rows, _ = read_documents(cfg)
    m = perplexity(load_run_model(run, info), tokenizer, encode(tokenizer, rows, cfg))
    out = out_dir(args)
    runs.write_json(out / "report.json", {"run": str(run), "data": args.data, **m})
    print(f"perplexity {m['perplexity']:.3f}  (loss {m['loss']:.4f} over {m['tokens']} tokens)")
    print(f"report: {out / 'report.json'}")
    return 0
