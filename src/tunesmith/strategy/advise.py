"""Recommend an adaptation method from data size, memory, number of tasks, storage and time, and
say in plain words why, and what would change the answer.

The rules are deliberately few and visible (the textbook's reasoning, made numeric):
  1. little data overfits a full fine-tune: below SMALL_DATA examples prefer LoRA with early
     stopping and augmentation; below TINY_DATA, train only the head;
  2. the estimated training memory must fit (90% of the accelerator); otherwise step down
     full -> LoRA -> IA3 -> head;
  3. several tasks, or a storage limit, favour one shared base plus a small adapter per task;
  4. the measured time per epoch must leave room for the planned epochs in the time budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..adapt.registry import LADDER, default_lr
from .formulas import MethodCount, count_method, human_bytes
from .memory import MemoryEstimate, estimate
from .probe import ProbeResult

SMALL_DATA = 2_000
TINY_DATA = 100
MANY_TASKS = 3


@dataclass
class Situation:
    samples: int
    memory_bytes: int
    tasks: int = 1
    hours: float | None = None
    storage_bytes: int | None = None  # for all tasks' artifacts together
    batch: int = 32
    seq: int = 128
    labels: int = 2
    precision: str = "fp32"


@dataclass
class Advice:
    method: str
    settings: dict
    reasons: list[str]
    changes: list[str]
    counts: dict[str, MethodCount]
    memory: dict[str, MemoryEstimate]
    storage: dict[str, int]
    probes: dict[str, ProbeResult] = field(default_factory=dict)


def storage_need(c: MethodCount, tasks: int) -> int:
    """Bytes to keep `tasks` trained models: whole copies, or one base plus adapters."""
    if c.method in ("full", "head"):
        return tasks * 4 * c.total
    return 4 * c.base + tasks * 4 * c.artifact_params()


def epochs_for(samples: int) -> int:
    return 3 if samples >= 10_000 else 5 if samples >= SMALL_DATA else 10


def recommend(config, sit: Situation, probes: dict[str, ProbeResult] | None = None) -> Advice:
    """Pick a method and settings; every reason and threshold is returned as plain sentences."""
    probes = probes or {}
    counts = {m: count_method(config, m, sit.labels) for m in LADDER + ["prompt"]}
    memory = {m: estimate(config, counts[m], sit.batch, sit.seq, sit.precision) for m in counts}
    storage = {m: storage_need(counts[m], sit.tasks) for m in counts}
    budget = 0.9 * sit.memory_bytes
    reasons: list[str] = []
    choice = _by_data(sit, reasons)
    choice = _by_tasks(sit, choice, storage, reasons)
    choice = _by_memory(sit, choice, memory, budget, reasons)
    choice = _by_storage(sit, choice, storage, reasons)
    _by_time(sit, choice, probes, reasons)
    settings = _settings(choice, sit)
    changes = _changes(config, sit, choice, counts, memory, storage, probes)
    return Advice(choice, settings, reasons, changes, counts, memory, storage, probes)


def _by_data(sit: Situation, reasons: list[str]) -> str:
    if sit.samples < TINY_DATA:
        reasons.append(f"{sit.samples:,} examples are too few to adapt the encoder itself; training only the "
                       "task head on frozen features is the safest start.")
        return "head"
    if sit.samples < SMALL_DATA:
        reasons.append(f"{sit.samples:,} examples is little data: a full fine-tune of every weight tends to "
                       "overfit. LoRA trains a fraction of a percent of the weights (a built-in regulariser); "
                       "use early stopping on a validation split and augmentation.")
        return "lora"
    reasons.append(f"{sit.samples:,} examples are enough to fine-tune every weight, which usually gives the "
                   "best accuracy.")
    return "full"


def _by_tasks(sit: Situation, choice: str, storage: dict[str, int], reasons: list[str]) -> str:
    if sit.tasks >= MANY_TASKS and choice in ("full", "head"):
        reasons.append(f"{sit.tasks} tasks: full copies would take {human_bytes(storage['full'])}, one shared "
                       f"base with a LoRA adapter per task {human_bytes(storage['lora'])}; adapters also switch "
                       "per request on one loaded base (tunesmith serve).")
        return "lora"
    return choice


def _by_memory(sit: Situation, choice: str, memory: dict[str, MemoryEstimate], budget: float,
               reasons: list[str]) -> str:
    for m in LADDER[LADDER.index(choice):]:
        if memory[m].total <= budget:
            if m != choice:
                reasons.append(f"{choice} needs about {human_bytes(memory[choice].total)} at batch {sit.batch} "
                               f"and {sit.seq} tokens, more than 90% of {human_bytes(sit.memory_bytes)}; "
                               f"{m} needs {human_bytes(memory[m].total)}.")
            else:
                reasons.append(f"{m} needs about {human_bytes(memory[m].total)} at batch {sit.batch} and "
                               f"{sit.seq} tokens, which fits in {human_bytes(sit.memory_bytes)}.")
            return m
    reasons.append(f"nothing fits {human_bytes(sit.memory_bytes)} at batch {sit.batch}: lower the batch "
                   "(with gradient accumulation) or the sequence length.")
    return LADDER[-1]


def _by_storage(sit: Situation, choice: str, storage: dict[str, int], reasons: list[str]) -> str:
    if sit.storage_bytes is None:
        return choice
    for m in LADDER[LADDER.index(choice):] + ["prompt"]:
        need = storage.get(m)
        if need is not None and need <= sit.storage_bytes:
            reasons.append(f"{sit.tasks} task(s) with {m} take {human_bytes(need)}, within the "
                           f"{human_bytes(sit.storage_bytes)} storage limit.")
            return m
    reasons.append(f"even one shared base exceeds the {human_bytes(sit.storage_bytes)} limit; a smaller base "
                   "model is needed.")
    return choice


def _by_time(sit: Situation, choice: str, probes: dict[str, ProbeResult], reasons: list[str]) -> None:
    p = probes.get(choice)
    if not p:
        return
    epoch = p.epoch_seconds(sit.samples, sit.batch)
    text = (f"measured on {p.device}: {p.seconds_per_step:.2f} s per step of {sit.batch}, so one epoch of "
            f"{sit.samples:,} examples takes about {_duration(epoch)}")
    if sit.hours:
        fit = sit.hours * 3600 / epoch
        text += f"; the {sit.hours:g} h budget allows {fit:.1f} epoch(s) on this machine"
        if fit < 1:
            text += " - too few: shorten sequences, subsample, or run on a faster accelerator"
    reasons.append(text + ".")


def _settings(choice: str, sit: Situation) -> dict:
    """Finetune options (section.key -> value) for the recommendation."""
    s = {"method.name": choice, "train.learning_rate": default_lr(choice),
         "train.epochs": epochs_for(sit.samples), "train.batch_size": sit.batch, "model.max_length": sit.seq}
    if choice in ("lora", "dora"):
        s.update({"method.lora_r": 8, "method.lora_alpha": 16})
    if sit.samples < SMALL_DATA:
        s.update({"train.early_stopping_patience": 2, "augment.ops": "eda"})
    return s


def command_line(settings: dict, model: str) -> str:
    """The finetune command that applies the settings."""
    return f"tunesmith finetune --model {model} " + " ".join(f"--{k}={v}" for k, v in settings.items())


def _changes(config, sit, choice, counts, memory, storage, probes) -> list[str]:
    out = []
    full_mem = memory["full"].total
    out.append(f"memory: full fine-tuning needs about {human_bytes(full_mem)} (batch {sit.batch}, {sit.seq} "
               f"tokens), LoRA {human_bytes(memory['lora'].total)}, head-only {human_bytes(memory['head'].total)}; "
               f"below {human_bytes(full_mem / 0.9)} of memory full fine-tuning is out (or halve the batch and "
               "accumulate gradients).")
    out.append(f"data: below {SMALL_DATA:,} examples the advice turns to LoRA + early stopping + augmentation, "
               f"below {TINY_DATA} to head-only; from {SMALL_DATA:,} on, full fine-tuning.")
    per_task_full = 4 * counts["full"].total
    limit = (f", or when storage for the {sit.tasks} tasks is under {human_bytes(storage['full'])}"
             if sit.tasks > 1 else "")
    out.append(f"tasks: each full model is {human_bytes(per_task_full)}, each LoRA adapter + head "
               f"{human_bytes(4 * counts['lora'].artifact_params())}; from {MANY_TASKS} tasks on{limit}, "
               "one shared base with an adapter per task wins.")
    if probes.get("full") and probes.get("lora"):
        f, lo = probes["full"], probes["lora"]
        out.append(f"time: per step full {f.seconds_per_step:.2f} s vs LoRA {lo.seconds_per_step:.2f} s on "
                   f"{f.device} (LoRA saves the weight gradients and optimizer work, not the forward/backward "
                   "through the frozen layers).")
    return out


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
