"""Recommend an adaptation method and settings from data size, memory, tasks, storage and time; say
why in plain words, and cite for every decision the measurement behind it (strategy/evidence.py)
or say "no measurement" where a rule is hand-set.

The rules, in order:
  1. method by data size: where methods were compared within NEAR_FACTOR of the data size, the best
     measured one (and its measured lr); elsewhere hand-set: below TINY_DATA the head only, else
     full fine-tuning (the old hand-set "LoRA below 2,000 examples" was dropped: at 2,000 examples
     full beat every method at its default lr over 3 seeds, seeds-mr-2000, and full fine-tuning learned
     at 200, augment-200);
  2. from MANY_TASKS tasks on, methods that save one shared base plus a small artifact per task;
  3. the estimated training memory must fit 90% of the accelerator and the artifacts the storage
     limit: the next candidate (measured order, else full -> LoRA -> IA3 -> head -> prompt) otherwise;
  4. epochs by data size (hand-set), never more than the time budget allows by the probe, or by the
     FLOPs estimate for a named accelerator that is not this machine (strategy/accelerators.py);
  5. augmentation only where it was measured to help near this data size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..adapt.registry import LADDER, REGISTRY, default_lr, get
from .evidence import EVIDENCE, Evidence, by_id
from .evidence_select import FORMULA, HAND_SET, NEAR_FACTOR, Cite, Ranking, augmentation, ranking
from .formulas import MethodCount, count_method, human_bytes
from .memory import MemoryEstimate, estimate
from .probe import ProbeResult

SMALL_DATA = 2_000  # hand-set: below it, early stopping and more epochs
TINY_DATA = 100  # hand-set: below it, the head only
MANY_TASKS = 3  # hand-set
MEMORY_MARGIN = 0.9  # hand-set: leave 10% of the accelerator for the allocator and the framework


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
    accelerator: str | None = None  # a name in strategy/accelerators.py ACCELERATORS
    model: str = ""  # the model's name, to prefer evidence measured on it
    task: str = "classification"


@dataclass
class Reason:
    text: str
    cite: Cite


@dataclass
class Timing:
    """Seconds per training step for the advice and where the figure comes from."""

    step_seconds: float
    source: str  # "probe" (measured here) or "estimate" (accelerator not present)
    label: str
    cite: Cite
    lines: list[str] = field(default_factory=list)

    def epoch_seconds(self, samples: int, batch: int) -> float:
        return -(-samples // batch) * self.step_seconds


@dataclass
class Advice:
    method: str
    settings: dict
    reasons: list[Reason]
    changes: list[Reason]
    counts: dict[str, MethodCount]
    memory: dict[str, MemoryEstimate]
    storage: dict[str, int]
    probes: dict[str, ProbeResult] = field(default_factory=dict)
    lines: list[tuple[str, Cite]] = field(default_factory=list)  # one per recommendation, with its basis
    timing: Timing | None = None
    ranking: Ranking | None = None

    def cited(self, evidence: tuple[Evidence, ...] = EVIDENCE) -> list[Evidence]:
        """The evidence records the advice cites, in order of first citation."""
        table = by_id(evidence)
        cites = [r.cite for r in self.reasons + self.changes] + [c for _, c in self.lines]
        ids = [i for c in cites for i in c.ids]
        return [table[i] for i in dict.fromkeys(ids) if i in table]


def storage_need(c: MethodCount, tasks: int) -> int:
    """Bytes to keep `tasks` trained models: whole copies, or one base plus adapters."""
    if c.whole:
        return tasks * 4 * c.total
    return 4 * c.base + tasks * 4 * c.artifact_params()


def epochs_for(samples: int) -> int:
    """Hand-set (no measurement): 3 epochs from 10,000 examples, 5 from SMALL_DATA, else 10."""
    return 3 if samples >= 10_000 else 5 if samples >= SMALL_DATA else 10


def methods_for(task: str) -> list[str]:
    return [m for m, r in REGISTRY.items() if task in r.tasks]


def recommend(config, sit: Situation, probes: dict[str, ProbeResult] | None = None,
              evidence: tuple[Evidence, ...] = EVIDENCE) -> Advice:
    """Pick a method and settings; every decision comes with its reason and what backs it."""
    probes = probes or {}
    counts = {m: count_method(config, m, sit.labels) for m in methods_for(sit.task)}
    memory = {m: estimate(config, counts[m], sit.batch, sit.seq, sit.precision) for m in counts}
    storage = {m: storage_need(counts[m], sit.tasks) for m in counts}
    reasons: list[Reason] = []
    rank = ranking(sit.samples, sit.model, sit.task, evidence)
    order, method_cite = _by_data(sit, rank, reasons)
    order = [m for m in order if m in counts]
    order = _by_tasks(sit, order, counts, storage, reasons)
    choice = _fit(sit, order, memory, storage, reasons)
    timing = timing_for(config, sit, choice, counts, probes)
    lines, settings = _settings(choice, sit, rank, method_cite, timing, reasons, evidence)
    changes = _changes(config, sit, counts, memory, storage, probes, rank, timing)
    return Advice(choice, settings, reasons, changes, counts, memory, storage, probes, lines, timing, rank)


def _by_data(sit: Situation, rank: Ranking | None, reasons: list[Reason]) -> tuple[list[str], Cite]:
    """The candidate methods in order of preference, by data size."""
    if rank:
        where = (f"on {', '.join(rank.models)}" + ("" if rank.same_model else
                 f" (not on {sit.model or 'this model'}: no comparison on it)"))
        reasons.append(Reason(
            f"methods were compared at {rank.size:,} training examples (the measured size nearest to "
            f"{sit.samples:,}, within {NEAR_FACTOR}x) {where}: "
            + ", ".join(s.text() for s in rank.scores) + f" ({rank.scores[0].metric}); the best that fits "
            "the constraints below is advised, with its measured lr.", Cite(rank.ids)))
        order = [s.method for s in rank.scores]
        return order + [m for m in LADDER + ["prompt"] if m not in order], Cite(rank.ids)
    where = f"no method comparison within {NEAR_FACTOR}x of {sit.samples:,} examples"
    if sit.samples < TINY_DATA:
        reasons.append(Reason(f"{sit.samples:,} examples are too few to adapt the encoder itself; training only "
                              f"the task head on frozen features is the safest start ({where}).",
                              Cite(note=HAND_SET)))
        first = "head"
    else:
        reasons.append(Reason(
            f"{sit.samples:,} examples: full fine-tuning of every weight ({where}; at 2,000 examples, each "
            "method at its measured default lr, full beat every other method (0.770, LoRA 0.753, 3 seeds), and "
            "full fine-tuning learned from 200, so the old hand-set 'LoRA below 2,000' is gone).",
            Cite(("seeds-mr-2000", "augment-200"), f"{HAND_SET} at this size")))
        first = "full"
    return LADDER[LADDER.index(first):] + ["prompt"], Cite(note=f"{HAND_SET} ({where})")


def _by_tasks(sit: Situation, order: list[str], counts: dict[str, MethodCount], storage: dict[str, int],
              reasons: list[Reason]) -> list[str]:
    if sit.tasks < MANY_TASKS:
        return order
    shared = [m for m in order if not counts[m].whole]
    if shared:
        m, whole = shared[0], next((w for w in order if counts[w].whole), "full")
        serve = ("adapters switch per request on one loaded base (tunesmith serve)" if get(m).servable else
                 f"tunesmith serve shares one base for LoRA only; {m} runs load as their own model there")
        reasons.append(Reason(
            f"{sit.tasks} tasks: whole copies ({whole}) would take {human_bytes(storage[whole])}, one shared "
            f"base with one {m} artifact per task {human_bytes(storage[m])}; {serve}.",
            Cite(note=f"{HAND_SET} (from {MANY_TASKS} tasks on; the sizes are computed)")))
    return shared or order


def _fit(sit: Situation, order: list[str], memory: dict[str, MemoryEstimate], storage: dict[str, int],
         reasons: list[Reason]) -> str:
    """The first candidate whose estimated memory and storage fit."""
    budget = MEMORY_MARGIN * sit.memory_bytes
    skipped = []
    for m in order:
        if memory[m].total > budget:
            skipped.append(f"{m} needs about {human_bytes(memory[m].total)}, more than {MEMORY_MARGIN:.0%} of "
                           f"{human_bytes(sit.memory_bytes)}")
        elif sit.storage_bytes is not None and storage[m] > sit.storage_bytes:
            skipped.append(f"{sit.tasks} task(s) with {m} take {human_bytes(storage[m])}, over the "
                           f"{human_bytes(sit.storage_bytes)} storage limit")
        else:
            fits = f"{m} needs about {human_bytes(memory[m].total)} at batch {sit.batch} and {sit.seq} tokens, " \
                   f"which fits in {MEMORY_MARGIN:.0%} of {human_bytes(sit.memory_bytes)}"
            if sit.storage_bytes is not None:
                fits += f"; {sit.tasks} task(s) take {human_bytes(storage[m])} of {human_bytes(sit.storage_bytes)}"
            reasons.append(Reason("; ".join(skipped + [fits]) + ".",
                                  Cite(note=f"{FORMULA} (weights, gradients, AdamW, Korthikanti activations); "
                                            f"the {MEMORY_MARGIN:.0%} margin is hand-set")))
            return m
    reasons.append(Reason(f"nothing fits {human_bytes(sit.memory_bytes)} at batch {sit.batch} (and the storage "
                          "limit): lower the batch (with gradient accumulation) or the sequence length, or use a "
                          "smaller base model.", Cite(note=FORMULA)))
    return order[-1]


def timing_for(config, sit: Situation, method: str, counts: dict[str, MethodCount],
               probes: dict[str, ProbeResult]) -> Timing | None:
    """Step time for `method`: estimated for a named accelerator that is not here, else the probe's."""
    from . import accelerators

    if sit.accelerator:
        acc = accelerators.get(sit.accelerator)
        if not accelerators.present(acc):
            e = accelerators.estimate_step(config, counts[method], sit.batch, sit.seq, sit.precision, acc)
            return Timing(e.step_seconds, "estimate",
                          f"ESTIMATE for a {acc.name} (not on this machine; nothing measured on it): "
                          f"{e.step_seconds:.3f} s per step of {sit.batch} x {sit.seq} tokens ({sit.precision})",
                          Cite(note="no measurement: estimate from FLOPs and memory bandwidth "
                                    f"(strategy/accelerators.py; {acc.name} data sheet, assumed utilisation)"),
                          e.lines)
    p = probes.get(method)
    if p is None:
        return None
    return Timing(p.seconds_per_step, "probe",
                  f"measured now on {p.device} by the probe: {p.seconds_per_step:.2f} s per step of {sit.batch}",
                  Cite(note=f"measured now: probe of {method} on {p.device} (this machine)"))


def _settings(choice: str, sit: Situation, rank: Ranking | None, method_cite: Cite, timing: Timing | None,
              reasons: list[Reason], evidence) -> tuple[list[tuple[str, Cite]], dict]:
    """Finetune options (section.key -> value) and one cited line per recommendation."""
    s: dict = {"method.name": choice}
    measured = rank.get(choice) if rank else None
    lines = [(f"method {choice}", method_cite if measured else Cite(note=f"{HAND_SET} (see why)"))]
    if measured and measured.lr is not None:
        s["train.learning_rate"] = measured.lr
        lines.append((f"lr {measured.lr:g}: the lr of {choice}'s best measured row at {rank.size:,} examples",
                      Cite(measured.ids)))
    else:
        s["train.learning_rate"] = default_lr(choice)
        note = f"no measurement of {choice}'s lr near {sit.samples:,} examples: the method's default (adapt/registry.py)"
        ids = ("lora-stalled-3e-4",) if choice in ("lora", "dora") else ()
        extra = "; at 63 steps LoRA barely moved at 3e-4: sweep with tunesmith compare --sweep lr=..." if ids else ""
        lines.append((f"lr {default_lr(choice):g}{extra}", Cite(ids, note)))
    lines += _epochs(sit, timing, s, reasons)
    s.update({"train.batch_size": sit.batch, "model.max_length": sit.seq})
    if choice in ("lora", "dora"):
        s.update({"method.lora_r": 8, "method.lora_alpha": 16})
        lines.append(("LoRA r 8, alpha 16", Cite(note=HAND_SET)))
    if sit.samples < SMALL_DATA:
        s["train.early_stopping_patience"] = 2
        lines.append((f"early stopping, patience 2 (below {SMALL_DATA:,} examples)", Cite(note=HAND_SET)))
    lines.append(_augment(sit, s, evidence))
    return lines, s


def _epochs(sit: Situation, timing: Timing | None, s: dict, reasons: list[Reason]) -> list[tuple[str, Cite]]:
    """Epochs by data size, capped to what the time budget allows (never more)."""
    rule = epochs_for(sit.samples)
    s["train.epochs"] = rule
    if not sit.hours:
        return [(f"epochs {rule} (by data size: 3 from 10,000, 5 from {SMALL_DATA:,}, else 10)", Cite(note=HAND_SET))]
    s["train.time_budget"] = f"{sit.hours:g}h"
    budget_line = (f"train.time_budget {sit.hours:g}h: the run plans its steps from its own measured speed to end "
                   "in time", Cite(("demo-mr-full",)))
    if timing is None:
        reasons.append(Reason(f"no time per step (no probe, no accelerator named): the {rule} epochs are not "
                              f"checked against the {sit.hours:g} h budget; train.time_budget enforces it.",
                              Cite(note="no measurement: no time estimate")))
        return [(f"epochs {rule} (by data size), not checked against the budget", Cite(note=HAND_SET)), budget_line]
    epoch = timing.epoch_seconds(sit.samples, sit.batch)
    fit = sit.hours * 3600 / epoch
    text = f"{timing.label}; one epoch of {sit.samples:,} examples takes about {_duration(epoch)}, so the " \
           f"{sit.hours:g} h budget allows {fit:.1f} epoch(s)"
    if fit >= rule:
        reasons.append(Reason(text + f"; the {rule} planned fit.", timing.cite))
        return [(f"epochs {rule} (by data size; {fit:.1f} fit the budget)",
                 Cite(note=f"{HAND_SET}, checked against the budget by the {timing.source}")), budget_line]
    if fit >= 1:
        s["train.epochs"] = math.floor(fit)
        reasons.append(Reason(text + f": {math.floor(fit)} instead of the {rule} the data size would take.",
                              timing.cite))
        return [(f"epochs {math.floor(fit)}: what the budget allows ({fit:.1f}), not the {rule} the data size "
                 "would take", Cite(note=f"{HAND_SET}, capped to the budget by the {timing.source}")), budget_line]
    steps = max(1, math.floor(sit.hours * 3600 / timing.step_seconds))
    s["train.epochs"], s["train.max_steps"] = 1, steps
    reasons.append(Reason(text + f": less than one epoch fits; {steps:,} steps ({fit:.2f} of an epoch). Shorten "
                          "sequences, subsample, or use a faster accelerator.", timing.cite))
    return [(f"max_steps {steps:,} ({fit:.2f} epoch): what the budget allows, not the {rule} epochs the data "
             "size would take", Cite(note=f"{HAND_SET}, capped to the budget by the {timing.source}")), budget_line]


def _augment(sit: Situation, s: dict, evidence) -> tuple[str, Cite]:
    found = augmentation(sit.samples, sit.task, evidence)
    if found is None:
        return (f"no augmentation (nothing measured within {NEAR_FACTOR}x of {sit.samples:,} examples)",
                Cite(note=f"{HAND_SET}: augment only where measured to help"))
    name, gain = found.best
    measured = ", ".join(f"{c} {d:+.3f}" for c, d in found.changes.items())
    if gain > 0:
        s["augment.ops"] = name
        return (f"augmentation {name}: measured {gain:+.3f} at {found.size:,} examples ({measured})", Cite(found.ids))
    return (f"no augmentation: at {found.size:,} examples every one measured was below no augmentation ({measured})",
            Cite(found.ids))


def command_line(settings: dict, model: str) -> str:
    """The finetune command that applies the settings."""
    return f"tunesmith finetune --model {model} " + " ".join(f"--{k}={v}" for k, v in settings.items())


def _changes(config, sit, counts, memory, storage, probes, rank: Ranking | None,
             timing: Timing | None) -> list[Reason]:
    out = []
    full_mem = memory["full"].total
    out.append(Reason(
        f"memory: full fine-tuning needs about {human_bytes(full_mem)} (batch {sit.batch}, {sit.seq} tokens), LoRA "
        f"{human_bytes(memory['lora'].total)}, head-only {human_bytes(memory['head'].total)}; below "
        f"{human_bytes(full_mem / MEMORY_MARGIN)} of memory full fine-tuning is out (or halve the batch and "
        "accumulate gradients).", Cite(note=FORMULA)))
    sizes = f"measured comparisons at {rank.size:,} examples apply" if rank else \
        f"no method comparison is within {NEAR_FACTOR}x"
    out.append(Reason(
        f"data: {sizes}; within {NEAR_FACTOR}x of a measured size the best measured method is advised, elsewhere "
        f"full fine-tuning (below {TINY_DATA} examples the head only); early stopping below {SMALL_DATA:,}. New "
        "measurements (strategy/evidence.py) change this without code.",
        Cite(rank.ids) if rank else Cite(note=HAND_SET)))
    per_task_full = 4 * counts["full"].total
    limit = (f", or when storage for the {sit.tasks} tasks is under {human_bytes(storage['full'])}"
             if sit.tasks > 1 else "")
    out.append(Reason(
        f"tasks: each full model is {human_bytes(per_task_full)}, each LoRA adapter + head "
        f"{human_bytes(4 * counts['lora'].artifact_params())}; from {MANY_TASKS} tasks on{limit}, one shared base "
        "with an adapter per task wins.", Cite(note=f"{HAND_SET} (the sizes are computed)")))
    if probes.get("full") and probes.get("lora"):
        f, lo = probes["full"], probes["lora"]
        out.append(Reason(
            f"time: per step full {f.seconds_per_step:.2f} s vs LoRA {lo.seconds_per_step:.2f} s on {f.device} "
            "(LoRA saves the weight gradients and optimizer work, not the forward/backward through the frozen "
            "layers; the project's CPU benchmark measured LoRA at 1.35x full's throughput).",
            Cite(("bench-train-cpu",), f"measured now: probe on {f.device}")))
    if timing is not None and timing.source == "estimate":
        out.append(_other_precision(config, sit, counts))
    return out


def _other_precision(config, sit: Situation, counts: dict[str, MethodCount]) -> Reason:
    """The accelerator estimate at the other precision: mixed precision changes the time most."""
    from . import accelerators

    acc = accelerators.get(sit.accelerator)
    other = "mixed" if sit.precision == "fp32" else "fp32"
    full = accelerators.estimate_step(config, counts["full"], sit.batch, sit.seq, other, acc)
    lora = accelerators.estimate_step(config, counts["lora"], sit.batch, sit.seq, other, acc)
    epoch = full.epoch_seconds(sit.samples, sit.batch)
    return Reason(f"precision: with --precision {other} the {acc.name} estimate is {full.step_seconds:.3f} s per "
                  f"step for full fine-tuning ({_duration(epoch)} per epoch), {lora.step_seconds:.3f} s for LoRA "
                  "(frozen weights skip their weight gradients: 4·N instead of 6·N FLOPs per token; the project's "
                  "CPU benchmark measured LoRA at 1.35x full's throughput, not the 1.5x of the FLOPs).",
                  Cite(("bench-train-cpu",), "no measurement on the accelerator: estimate from FLOPs and bandwidth"))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
