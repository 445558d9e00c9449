"""Batch prediction over large files, split across processes or GPUs with `accelerate`.

Each process predicts every world-th input item (its shard, read by streaming the file) into a
part file; the main process then merges the parts by input position into one JSONL output, the
same records `tunesmith predict --input` writes, in input order.

    accelerate launch --num_processes 4 -m tunesmith.infer.distributed runs/RUN \\
        --input big.txt --output preds.jsonl
    torchrun --nproc_per_node 2 -m tunesmith.infer.distributed runs/RUN --input big.jsonl --output p.jsonl

On GPUs every process uses its own device (accelerate's `PartialState.device`); on CPU the
processes share the machine, so give each a share of the cores (`--threads`).
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
from pathlib import Path
from typing import Iterator

from ..errors import TunesmithError


def shard_items(items: Iterator, rank: int, world: int) -> Iterator:
    """Every world-th item, starting at `rank`: balanced shards from a stream of unknown length.

    Example:
        >>> [i for i in shard_items(iter(range(7)), 1, 3)]
        [1, 4]
    """
    for k, item in enumerate(items):
        if k % world == rank:
            yield item


def part_path(output: Path, rank: int, world: int) -> Path:
    return output.with_name(f"{output.name}.part-{rank}-of-{world}")


def predict_shard(records_fn, input_path: str, part: Path, rank: int, world: int, *,
                  text_column: str | None, chunk_size: int, max_bytes: int) -> int:
    """Write this process's records (with their input `index`) to its part file; returns the count."""
    from .stream import _chunks, predict_chunk, read_items

    n = 0
    with open(part, "w", encoding="utf-8") as out:
        items = shard_items(read_items(input_path, text_column, max_bytes), rank, world)
        for chunk in _chunks(items, chunk_size):
            recs = predict_chunk(records_fn, chunk)
            out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
            n += len(recs)
    return n


def merge_parts(parts: list[Path], output: Path) -> int:
    """Merge sorted part files by input index into `output` (atomically); returns records written."""
    files = [open(p, encoding="utf-8") for p in parts]
    tmp = output.with_name(output.name + ".tmp")
    n = 0
    try:
        streams = [(json.loads(line) for line in f) for f in files]
        with open(tmp, "w", encoding="utf-8") as out:
            for rec in heapq.merge(*streams, key=lambda r: r["index"]):
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
    finally:
        for f in files:
            f.close()
    os.replace(tmp, output)
    for p in parts:
        p.unlink()
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tunesmith.infer.distributed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="run directory, built-in model, local model directory or hub id")
    p.add_argument("--input", required=True, help=".txt / .jsonl (streamed) or .csv/.tsv/.json/.parquet")
    p.add_argument("--output", required=True, help="merged JSONL output, one record per input line")
    p.add_argument("--text-column", help="text column / JSON field of --input (auto-detected)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--task", help="task for a model that is not a run (default: from its architecture)")
    p.add_argument("--fast", default="auto", help="execution path, as in `tunesmith predict --fast`")
    p.add_argument("--threads", type=int, help="CPU threads per process")
    p.add_argument("--max-tokens", type=int, default=2048, help="token budget per batch")
    p.add_argument("--chunk-size", type=int, default=2048, help="items predicted per step")
    p.add_argument("--max-bytes", type=int, default=1_000_000, help="longer input lines become error records")
    p.add_argument("--all-scores", action="store_true", help="classification: every label's probability")
    return p


def run(args) -> int:
    import torch
    from accelerate import PartialState

    from .predictor import Predictor

    output = Path(args.output)
    if output.exists() and output.stat().st_size and not args.overwrite:
        raise TunesmithError(f"{output}: exists; add --overwrite to replace it")
    if not Path(args.input).is_file():
        raise TunesmithError(f"{args.input}: input file not found")
    state = PartialState(cpu=not torch.cuda.is_available())  # gloo on CPU, NCCL on GPUs
    rank, world = state.process_index, state.num_processes
    predictor = Predictor.load(args.model, task=args.task, max_tokens=args.max_tokens, fast=args.fast,
                               threads=args.threads, device=str(state.device))
    kwargs = {"all_scores": args.all_scores} if predictor.task == "classification" else {}
    n = predict_shard(lambda texts: predictor.records(texts, **kwargs), args.input,
                      part_path(output, rank, world), rank, world, text_column=args.text_column,
                      chunk_size=args.chunk_size, max_bytes=args.max_bytes)
    state.wait_for_everyone()  # every part file is complete before the merge
    if state.is_main_process:
        total = merge_parts([part_path(output, r, world) for r in range(world)], output)
        print(f"wrote {total} records to {output} ({world} process(es); this one predicted {n})", file=sys.stderr)
    state.wait_for_everyone()
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..offline import quiet_libraries, set_offline

    set_offline()
    quiet_libraries()
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except TunesmithError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
