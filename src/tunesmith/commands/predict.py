"""`tunesmith predict MODEL [TEXT ...] [--input FILE --output FILE.jsonl]`: run a fine-tuned model.

The task comes from the run (classification, token-classification, fill-mask, generation).
Files are streamed in chunks (bounded memory), with a progress bar; every input line gives one
output line, bad lines as {"line": n, "error": ...}; --resume continues a partial output file.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import TunesmithError


def register(sub) -> None:
    p = sub.add_parser("predict", help="predict with a run or model: texts or a (large) file -> JSONL",
                       description=__doc__,
                       epilog="examples:\n  tunesmith predict runs/RUN \"a gorgeous film\" \"dull\"\n"
                              "  tunesmith predict runs/RUN --input texts.txt --output preds.jsonl\n"
                              "  tunesmith predict runs/RUN --input texts.txt --output preds.jsonl --resume\n"
                              "  tunesmith predict runs/RUN --input big.txt --output p.jsonl --fast int8",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="run directory, built-in model, local model directory or hub id")
    p.add_argument("texts", nargs="*", help="texts to predict")
    p.add_argument("--input", help=".txt (one text per line) or .jsonl (streamed); .csv/.tsv/.json/.parquet "
                                   "with a text column (read whole)")
    p.add_argument("--text-column", help="text column / JSON field of --input (auto-detected)")
    p.add_argument("--output", help="write JSONL here (default: stdout)")
    p.add_argument("--resume", action="store_true", help="continue a partial --output file where it stopped")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--task", help="task for a model that is not a run (default: from its architecture)")
    p.add_argument("--fast", default="auto",
                   help="execution path: auto (bf16 where the CPU (AVX512-BF16/AMX) or GPU (Ampere+) has it "
                        "natively, fp16 on older CUDA GPUs, else fp32 -- the precision `serve` uses by "
                        "default too; compiled for inputs of 100,000+ lines; int8-row-compile from 30,000 "
                        "lines for a run whose held-out check cleared it, see its inference.json), fp32, bf16, "
                        "fp16 (CUDA), int8, int8-row, compile, bf16-compile, fp16-compile, int8-row-compile, "
                        "onnx, onnx-int8 (numbers: tunesmith bench infer)")
    p.add_argument("--device", default="auto",
                   help="cpu, cuda, cuda:N or auto (cuda when a GPU is visible, else cpu) [default: auto]")
    p.add_argument("--threads", type=int, help="CPU threads (default: physical cores, or $TUNESMITH_THREADS)")
    p.add_argument("--max-tokens", type=int, default=2048, help="token budget per batch (count x longest)")
    p.add_argument("--chunk-size", type=int, default=2048, help="lines read and written per step")
    p.add_argument("--max-bytes", type=int, default=1_000_000, help="longer input lines become error records")
    p.add_argument("--all-scores", action="store_true", help="classification: every label's probability")
    p.add_argument("--aggregation", default="simple", help="token-classification: span aggregation")
    p.add_argument("--top-k", type=int, default=5, help="fill-mask: fillers per mask")
    p.add_argument("--max-new-tokens", type=int, default=40, help="generation: tokens to add per prompt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def task_kwargs(task: str, args) -> dict:
    return {"classification": {"all_scores": args.all_scores},
            "token-classification": {"aggregation": args.aggregation},
            "fill-mask": {"top_k": args.top_k},
            "generation": {"max_new_tokens": args.max_new_tokens}}[task]


def check_output(args) -> None:
    from pathlib import Path

    if not args.output:
        if args.resume:
            raise TunesmithError("--resume needs --output FILE (the partial output to continue)")
        return
    out = Path(args.output)
    if out.exists() and out.stat().st_size and not (args.resume or args.overwrite):
        raise TunesmithError(f"{out}: exists; add --resume to continue it or --overwrite to replace it")
    if args.resume and not args.input:
        raise TunesmithError("--resume works with --input FILE")


def run(args) -> int:
    from ..infer.predictor import Predictor
    from ..infer.stream import Item, predict_chunk, stream_predict

    if not args.texts and not args.input:
        raise TunesmithError("nothing to predict: give texts as arguments or --input FILE")
    check_output(args)
    from pathlib import Path

    from ..infer.stream import count_lines

    if args.input and not Path(args.input).is_file():
        raise TunesmithError(f"--input {args.input}: no such file"
                             + (" (it is a directory)" if Path(args.input).is_dir() else ""))

    n_texts = len(args.texts)  # --fast auto compiles for long inputs; the progress bar's total
    if args.input:
        try:
            n_texts = count_lines(args.input)
        except OSError:
            n_texts = None  # unreadable: the streaming reader reports it with its path
    from ..precision import resolve_device

    device = resolve_device(args.device)  # a bad --device fails before the model loads
    predictor = Predictor.load(args.model, task=args.task, max_tokens=args.max_tokens, fast=args.fast,
                               threads=args.threads, n_texts=n_texts, device=str(device))
    if args.input:  # which engine runs a long job, and why
        print(f"execution path: {describe_path(predictor.engine.name, args.fast, n_texts, device)}",
              file=sys.stderr)
    kwargs = task_kwargs(predictor.task, args)
    records_fn = lambda texts: predictor.records(texts, **kwargs)
    if args.input:
        counts = stream_predict(records_fn, args.input, args.output, text_column=args.text_column,
                                resume=args.resume, chunk_size=args.chunk_size, max_bytes=args.max_bytes,
                                progress=not args.no_progress, total=n_texts)
        report(counts, args)
        return 0
    items = [Item(i + 1, t, index=i) if t.strip() else Item(i + 1, error="empty text", index=i)
             for i, t in enumerate(args.texts)]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in predict_chunk(records_fn, items))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(lines)
        print(f"wrote {len(items)} predictions to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return 0


def describe_path(name: str, asked: str, n_texts: int | None, device=None) -> str:
    """The engine name, and under --fast auto why it was chosen (and why that precision here)."""
    import torch

    from ..precision import auto_precision

    device = torch.device(device or "cpu")
    where = f" on {device}"
    if asked != "auto":
        return name + where
    why = "the run's inference.json cleared int8 for it" if name.startswith("int8") else \
        "compiled for a long input" if name.endswith("compile") else "the default for this device"
    precision, reason = auto_precision(device)
    return (f"{name} (--fast auto, {n_texts if n_texts is not None else 'unknown number of'} texts: {why})"
            f"{where}; auto precision {precision}: {reason}")


def report(counts: dict, args) -> None:
    where = args.output or "stdout"
    msg = f"wrote {counts['written']} records to {where}"
    if counts["skipped"]:
        msg += f" (resumed after {counts['skipped']} already there)"
    print(msg, file=sys.stderr)
    if counts["errors"]:
        shown = ", ".join(f"line {n}: {why}" for n, why in counts["bad_lines"])
        more = " ..." if counts["errors"] > len(counts["bad_lines"]) else ""
        print(f"{counts['errors']} bad line(s) written as error records: {shown}{more}", file=sys.stderr)
