"""`tunesmith evaluate RUN --data FILE`: score a finished run on labelled data.

Classification runs: accuracy, precision, recall, F1, confusion matrix. NER runs: entity-level
precision/recall/F1 per type (seqeval) and token accuracy. Generation runs: perplexity.
"""
from __future__ import annotations

import argparse


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


def run(args) -> int:
    from ..evaluate.run_eval import EvalRequest, evaluate_run

    return evaluate_run(EvalRequest(args.run, args.data, args.text_column, args.label_column, args.strict, args.out))
