"""`tunesmith evaluate RUN --data FILE`: score a finished run on labelled data."""
from __future__ import annotations

import time
from pathlib import Path

from .. import runs
from ..data.labelled import check_known_labels, read_labelled_file
from ..data.builtin import LABELLED
from ..errors import TunesmithError


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a run on labelled data (accuracy, P/R/F1, confusion)",
                       description=__doc__)
    p.add_argument("run", help="run directory written by `tunesmith finetune`")
    p.add_argument("--data", required=True, help="labelled file (.csv .tsv .json .jsonl .parquet) or a "
                                                 "built-in data set name (evaluates on its test split)")
    p.add_argument("--text-column")
    p.add_argument("--label-column")
    p.add_argument("--out", help="where to write the report (default: RUN/eval-<data>-<time>)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import DataConfig
    from ..evaluate.metrics import format_confusion
    from ..evaluate.plots import confusion_png
    from ..infer.predictor import Predictor
    from ..tasks.classification import evaluate_rows

    info = runs.load_run(args.run, task="classification")
    labels = info["labels"]
    if args.data in LABELLED:
        from ..data.labelled import load_labelled

        import yaml

        seed = yaml.safe_load((Path(args.run) / "config.yaml").read_text())["data"]["seed"]
        rows = load_labelled(DataConfig(dataset=args.data, seed=seed)).splits["test"]  # the run's own split
    else:
        rows, _ = read_labelled_file(args.data, args.text_column, args.label_column)
        check_known_labels({Path(args.data).name: rows}, labels)
    predictor = Predictor.load(args.run)
    m = evaluate_rows(predictor, rows, labels, "evaluation")
    out = Path(args.out) if args.out else Path(args.run) / f"eval-{Path(args.data).stem}-{time.strftime('%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    runs.write_json(out / "report.json", {"run": str(args.run), "data": args.data, **m})
    confusion_png(m["confusion_matrix"], labels, out / "confusion_matrix.png", f"{Path(args.data).name} (n={m['n']})")
    print(f"accuracy {m['accuracy']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
          f"F1 {m['f1']:.4f}  (n={m['n']}; F1 {m['average']})")
    print(format_confusion(m["confusion_matrix"], labels))
    print(f"report: {out / 'report.json'}")
    if m["n"] == 0:
        raise TunesmithError(f"{args.data}: no rows to evaluate")
    return 0
