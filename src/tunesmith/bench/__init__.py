"""Benchmarks: our path and the baseline in one process, same inputs, printing the ratio.

Each module here defines `add_arguments(parser)` and `run(args) -> int`; list it in BENCHES.
"""
BENCHES: dict[str, str] = {
    # name -> one-line description; module tunesmith.bench.<name>
    "serve": "multi-adapter server under load: one base + N adapters vs per-request switching; memory vs a model per task",
}
