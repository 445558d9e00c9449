"""Benchmarks: our path and the baseline in one process, same inputs, printing the ratio.

Each module here defines `add_arguments(parser)` and `run(args) -> int`; list it in BENCHES.
"""
BENCHES: dict[str, str] = {
    # name -> one-line description; module tunesmith.bench.<name>
    "pretrain": "MLM training tokens/s: length-grouped dynamic padding and packing vs run_mlm.py-style pad_to_max_length",
    "infer": "batch prediction samples/s: textbook loop vs transformers.pipeline vs tunesmith fp32 and faster paths",
    "train": "fine-tuning samples/s: run_glue defaults vs Trainer best practice vs tunesmith (lean pass, precision, LoRA); time to an accuracy",
    "serve": "multi-adapter server under load: one base + N adapters vs per-request switching; memory vs a model per task",
    "soak": "long run above capacity against a few adapters: 200/429/5xx/lost, p50/p99, resident memory over time",
}
