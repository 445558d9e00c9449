"""`tunesmith predict RUN [TEXT ...] [--input FILE --output FILE.jsonl]`: label texts with scores."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import TunesmithError


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict labels (with scores) for texts or a file",
                       description=__doc__,
                       epilog="examples:\n  tunesmith predict runs/RUN \"a gorgeous film\" \"dull\"\n"
                              "  tunesmith predict runs/RUN --input texts.txt --output preds.jsonl",
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("model", help="run directory (or a classification model path / hub id)")
    p.add_argument("texts", nargs="*", help="texts to label")
    p.add_argument("--input", help=".txt (one text per line) or .csv/.tsv/.jsonl/.json/.parquet with a text column")
    p.add_argument("--text-column", help="text column of --input (auto-detected)")
    p.add_argument("--output", help="write JSONL here (default: print JSONL to stdout)")
    p.add_argument("--all-scores", action="store_true", help="include every label's probability")
    p.add_argument("--max-tokens", type=int, default=16384, help="token budget per batch")
    p.set_defaults(func=run)


def read_inputs(path: str, text_column: str | None) -> list[str]:
    from ..data.columns import TEXT_NAMES, columns_of, pick_column
    from ..data.readers import read_records, read_text

    if Path(path).suffix.lower() == ".txt":
        return [line for line in read_text(Path(path)).splitlines()]
    records = read_records(path)
    col = pick_column(columns_of(records), text_column, TEXT_NAMES, "text", path)
    return ["" if r.get(col) is None else str(r.get(col)) for r in records]


def run(args) -> int:
    from ..infer.predictor import Predictor

    texts = list(args.texts)
    if args.input:
        texts += read_inputs(args.input, args.text_column)
    if not texts:
        raise TunesmithError("nothing to predict: give texts as arguments or --input FILE")
    predictor = Predictor.load(args.model, max_tokens=args.max_tokens)
    ok = [i for i, t in enumerate(texts) if t.strip()]
    preds = predictor.classify([texts[i] for i in ok], all_scores=args.all_scores) if ok else []
    results: list[dict] = [{"error": "empty text"} for _ in texts]
    for i, pred in zip(ok, preds):
        results[i] = pred
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    with out if args.output else open(1, "w", closefd=False) as f:
        for i, (text, res) in enumerate(zip(texts, results)):
            f.write(json.dumps({"index": i, "text": text, **res}, ensure_ascii=False) + "\n")
    if args.output:
        print(f"wrote {len(results)} predictions to {args.output}", file=sys.stderr)
    return 0
