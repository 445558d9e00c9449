"""Run several adaptation methods on the same split, budget and seed; one table and one chart.

Each method is an ordinary `finetune` run (its own run directory under the comparison folder),
so every number in the table can be traced to a run's report.json.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import FinetuneConfig
from ..errors import TunesmithError
from ..tasks.skeleton import held_out
from .formulas import human_bytes
from .memwatch import PeakMemory


@dataclass
class Row:
    method: str
    lr: float
    val_metric: float  # the config's metric (accuracy or f1) on validation: what the sweep ranks
    accuracy: float  # on test (validation when there is no test split)
    f1: float
    trainable: int
    total: int
    seconds: float
    samples_per_s: float
    peak_bytes: int
    artifact_bytes: int
    run: str
    best: bool = False
    infer_per_s: float = 0.0  # `tunesmith predict`'s default path (--fast auto) on the held-out texts
    infer_path: str = ""


def parse_sweep(items: list[str]) -> dict[str, list[float]]:
    """['lr=1e-4,3e-4'] -> {'lr': [1e-4, 3e-4]}; only the learning rate can be swept."""
    out: dict[str, list[float]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or key.strip() not in ("lr", "learning_rate"):
            raise TunesmithError(f"--sweep '{item}': write lr=VALUE,VALUE (e.g. lr=1e-4,3e-4,1e-3)")
        try:
            out["lr"] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise TunesmithError(f"--sweep '{item}': learning rates must be numbers") from None
    return out


def artifact_bytes(run: Path) -> int:
    """Bytes of the trained weights a run keeps (model or adapter + head), tokenizer excluded."""
    model = run / "model"
    return sum(p.stat().st_size for p in model.glob("*") if p.suffix in (".safetensors", ".bin"))


def heldout_texts(cfg: FinetuneConfig) -> list[str]:
    """The texts inference speed is measured on: the test split (validation when there is none)."""
    from ..data.labelled import load_labelled

    splits = load_labelled(cfg.data).splits
    rows = held_out(splits, [])
    return [r["text"] for r in rows]


def inference_rate(run: Path, texts: list[str], repeats: int = 3) -> tuple[float, str]:
    """(samples/s, engine) of `tunesmith predict`'s default path (Predictor.load with --fast auto):
    the best of `repeats` passes after a warm-up, since the machine may be shared."""
    import time

    from ..infer.predictor import Predictor

    if not texts:
        return 0.0, ""
    p = Predictor.load(str(run), fast="auto", n_texts=len(texts))
    p.records(texts[:16])  # warm-up: first-call allocations, oneDNN primitive creation
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        p.records(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best, p.engine.name


def run_one(cfg: FinetuneConfig, texts: list[str] | None = None) -> Row:
    """Fine-tune once and read the numbers back from its report; with `texts`, measure inference."""
    from ..finetune import finetune

    with PeakMemory() as mem:
        run, report = finetune(cfg)
    ev = report["evaluation"]
    main = held_out(ev)
    val = ev.get("validation", main)
    return Row(method=cfg.method.name, lr=report["learning_rate"], val_metric=val[cfg.train.metric],
               accuracy=main.get("accuracy", main.get("token_accuracy")),  # NER reports token accuracy
               f1=main["f1"], trainable=report["params"]["trainable"],
               total=report["params"]["total"], seconds=report["training"]["seconds"],
               samples_per_s=report["training"]["samples_per_second"], peak_bytes=mem.peak,
               artifact_bytes=artifact_bytes(Path(run)), run=str(run),
               **_inference(Path(run), texts))


def _inference(run: Path, texts: list[str] | None) -> dict:
    if not texts:
        return {}
    rate, path = inference_rate(run, texts)
    return {"infer_per_s": rate, "infer_path": path}


def compare(cfg: FinetuneConfig, methods: list[str], out: Path, lrs: list[float] | None = None,
            on_row=None, measure_inference: bool = True) -> list[Row]:
    """One run per method (per learning rate with a sweep); marks each method's best by validation.
    `on_row(rows)` is called after every run, so an interrupted comparison keeps its table."""
    rows: list[Row] = []
    texts = heldout_texts(cfg) if measure_inference and cfg.model.task == "classification" else None
    for method in methods:
        for lr in lrs or [None]:
            c = copy.deepcopy(cfg)
            c.method.name = method
            c.train.learning_rate = lr if lr is not None else cfg.train.learning_rate
            c.output.dir = str(out / (method if lr is None else f"{method}-lr{lr:g}"))
            c.output.overwrite = True
            rows.append(run_one(c, texts))
            mark_best(rows)
            if on_row:
                on_row(rows)
    return rows


def mark_best(rows: list[Row]) -> None:
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        for r in mine:
            r.best = False
        max(mine, key=lambda r: r.val_metric).best = True


def budget_line(cfg: FinetuneConfig, n_train: int | None = None) -> str:
    t = cfg.train
    steps = f"max {t.max_steps} steps" if t.max_steps > 0 else f"{t.epochs:g} epoch(s)"
    data = cfg.data.train or cfg.data.dataset
    n = f"{n_train:,} training examples" if n_train else (
        f"at most {cfg.data.max_train:,} training examples" if cfg.data.max_train else "all training examples")
    stop = f", early stopping patience {t.early_stopping_patience}" if t.early_stopping_patience else ""
    return (f"budget: {data}, {n}, {steps}, batch {t.batch_size}, max_length {cfg.model.max_length}, "
            f"seed {t.seed}, model {cfg.model.name}{stop}; same split for every method")


def table_md(rows: list[Row], metric: str, split: str, only_best: bool = True) -> str:
    """The comparison as a Markdown table (best learning rate per method when swept)."""
    shown = [r for r in rows if r.best] if only_best else rows
    head = (f"| method | lr | val {metric} | {split} accuracy | {split} F1 | trainable params | trainable % "
            f"| train time (s) | train samples/s | peak memory | artifact | inference samples/s (path) "
            f"| inference vs full |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    full = next((r.infer_per_s for r in shown if r.method == "full" and r.infer_per_s), None)
    for r in shown:
        infer = f"{r.infer_per_s:.1f} ({r.infer_path})" if r.infer_per_s else "-"
        rel = f"{r.infer_per_s / full:.2f}x" if full and r.infer_per_s else "-"
        lines.append(f"| {r.method} | {r.lr:g} | {r.val_metric:.4f} | {r.accuracy:.4f} | {r.f1:.4f} | "
                     f"{r.trainable:,} | {100.0 * r.trainable / r.total:.3f}% | {r.seconds:.1f} | "
                     f"{r.samples_per_s:.1f} | {human_bytes(r.peak_bytes)} | {human_bytes(r.artifact_bytes)} | "
                     f"{infer} | {rel} |")
    return "\n".join(lines)


def chart_png(rows: list[Row], path: Path) -> None:
    """Four panels per method: accuracy, trainable parameters (log), training time, artifact size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = [r for r in rows if r.best]
    names = [r.method for r in best]
    panels = [("test accuracy", [r.accuracy for r in best], False),
              ("trainable parameters", [r.trainable for r in best], True),
              ("training time (s)", [r.seconds for r in best], False),
              ("artifact size (MB)", [r.artifact_bytes / 1e6 for r in best], True)]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, (title, values, log) in zip(axes, panels):
        ax.bar(names, values, color="#4C72B0")
        ax.set_title(title)
        if log:
            ax.set_yscale("log")
        ax.tick_params(axis="x", rotation=45)
    if best:
        lo = min(r.accuracy for r in best)
        axes[0].set_ylim(max(0.0, lo - 0.1), 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(rows: list[Row], cfg: FinetuneConfig, out: Path, swept: bool) -> str:
    """compare.md, compare.json and compare.png in `out`; returns the Markdown."""
    split = "test" if cfg.data.test_size > 0 or cfg.data.test else "validation"
    md = [f"# Method comparison\n\n{budget_line(cfg)}\n", table_md(rows, cfg.train.metric, split)]
    if swept:
        md += ["\nAll runs of the learning-rate sweep (best per method by validation "
               f"{cfg.train.metric} is in the table above):\n", table_md(rows, cfg.train.metric, split, False)]
    md.append("\npeak memory: CUDA allocator peak on a GPU; on CPU the peak resident memory the run added "
              "(sampled every 20 ms). artifact: weights the run keeps per task (adapter + head for peft). "
               "inference: `tunesmith predict`'s default path (--fast auto) on the held-out texts, best of 3 "
               "passes, relative to the full run; merged LoRA runs as a plain model, prefix and adapter "
               "layers cannot be merged and run their extra keys/values or layers.")
    text = "\n".join(md) + "\n"
    (out / "compare.md").write_text(text, encoding="utf-8")
    (out / "compare.json").write_text(json.dumps({"budget": budget_line(cfg), "rows": [asdict(r) for r in rows]},
                                                 indent=2), encoding="utf-8")
    chart_png(rows, out / "compare.png")
    return text
