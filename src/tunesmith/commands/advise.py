"""`tunesmith advise`: which method, with which settings, for this data, hardware and tasks - and why."""
from __future__ import annotations

import argparse

from ..errors import TunesmithError

SCENARIOS = {  # the textbook's three situations
    "large": dict(samples=100_000, memory_gb=16, hours=72, tasks=1, accelerator="T4",
                  text="100,000 labelled examples, one 16 GB GPU (a T4: --accelerator changes it), 3 days"),
    "small": dict(samples=500, memory_gb=8, tasks=1, text="500 labelled examples on an 8 GB GPU (overfitting risk)"),
    "multitask": dict(samples=5_000, memory_gb=16, tasks=20, storage_gb=1.0,
                      text="20 tasks, 1 GB of storage for all their models together"),
}

EPILOG = """examples:
  tunesmith advise --scenario large          # the textbook's three scenarios: large, small, multitask
  tunesmith advise minilm --data movie-reviews --tasks 3
  tunesmith advise bert-base-uncased --samples 500 --memory-gb 8 --no-probe
  tunesmith advise --samples 20000 --hours 2 --accelerator A100 --precision mixed

Every decision names the measurement behind it (an evidence id, listed with its numbers, command
and doc section at the end) or says "no measurement" where the rule is hand-set. For a named
accelerator that is not this machine the time per step is an ESTIMATE from FLOPs and memory
bandwidth (strategy/accelerators.py), and nothing is probed here.
"""


def register(sub) -> None:
    p = sub.add_parser("advise", help="recommend a method and settings for your data, memory and tasks, with reasons",
                       description="Recommend an adaptation method and settings from data size, accelerator "
                                   "memory, number of tasks, storage and time, with estimated memory (weights, "
                                   "gradients, optimizer, activations), time per epoch from a short measured probe "
                                   "on this machine, and artifact size per task.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", default=None, help="preset (bert-base-uncased), built-in, model dir or "
                   "config.json [default: bert-base-uncased for scenarios, else minilm]")
    p.add_argument("--scenario", choices=sorted(SCENARIOS), help="one of the textbook's scenarios")
    p.add_argument("--samples", type=int, help="number of labelled training examples")
    p.add_argument("--data", help="a data set (built-in name or file) to count the training examples of")
    p.add_argument("--memory-gb", type=float, help="accelerator memory [default: this machine's GPU, else RAM]")
    p.add_argument("--tasks", type=int, default=None, help="number of tasks to train [default: 1]")
    p.add_argument("--hours", type=float, help="time budget for training")
    p.add_argument("--accelerator", type=_accelerator, help="the accelerator the training runs on (T4, V100, A10, "
                   "L4, A100, A100-80GB, H100, H200): its memory, and when it is not this machine a time estimate "
                   "from FLOPs and bandwidth instead of a probe here")
    p.add_argument("--storage-gb", type=float, help="storage for all tasks' trained models together")
    p.add_argument("--labels", type=int, default=2, help="classes [default: 2]")
    p.add_argument("--batch-size", type=int, default=32, help="[default: 32]")
    p.add_argument("--max-length", type=int, default=128, help="tokens per example [default: 128]")
    p.add_argument("--precision", choices=["fp32", "mixed"], default="fp32", help="[default: fp32]")
    p.add_argument("--no-probe", action="store_true", help="skip the measured probe (no time estimate)")
    p.add_argument("--probe-steps", type=int, default=3, help="timed steps per probed method [default: 3]")
    p.set_defaults(func=run)


def _accelerator(name: str) -> str:
    from ..strategy.accelerators import get

    try:
        return get(name).name
    except TunesmithError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def situation(args, model: str = ""):
    from ..strategy.advise import Situation
    from ..strategy.probe import machine_memory_bytes

    sc = SCENARIOS.get(args.scenario or "", {})
    samples = args.samples or sc.get("samples") or (count_samples(args.data) if args.data else None)
    if not samples:
        raise TunesmithError("say how much data there is: --samples N, --data NAME_OR_FILE, or --scenario")
    accelerator = getattr(args, "accelerator", None) or sc.get("accelerator")
    mem_gb = args.memory_gb or sc.get("memory_gb") or (_accelerator_gb(accelerator) if accelerator else None)
    storage = args.storage_gb or sc.get("storage_gb")
    return Situation(samples=samples, memory_bytes=int(mem_gb * 1e9) if mem_gb else machine_memory_bytes(),
                     tasks=args.tasks or sc.get("tasks", 1), hours=args.hours or sc.get("hours"),
                     storage_bytes=int(storage * 1e9) if storage else None, batch=args.batch_size,
                     seq=args.max_length, labels=args.labels, precision=args.precision,
                     accelerator=accelerator, model=model)


def _accelerator_gb(name: str) -> float:
    from ..strategy.accelerators import get

    return get(name).memory_gb


def count_samples(data: str) -> int:
    from ..config import DataConfig
    from ..data.labelled import load_labelled

    return len(load_labelled(DataConfig(dataset=data)).splits["train"])


def run(args) -> int:
    from ..strategy.advise import recommend
    from ..strategy.configs import load_model_config
    from ..strategy.modelchoice import choose_model

    name = args.model or ("bert-base-uncased" if args.scenario else "minilm")
    config = load_model_config(name)
    sit = situation(args, name)
    advice = recommend(config, sit)
    probes = {} if args.no_probe else _probe(config, sit, advice.method, args.probe_steps)
    if probes:
        advice = recommend(config, sit, probes)
    models = choose_model(sit, advice.method, advice.timing, config)
    print(render(advice, name, sit, SCENARIOS.get(args.scenario or "", {}).get("text"), models))
    return 0


def _probe(config, sit, method: str, steps: int) -> dict:
    """Probe here, unless the situation names an accelerator this machine is not (then: estimate)."""
    from ..strategy import accelerators
    from ..strategy.probe import probe

    if sit.accelerator and not accelerators.present(accelerators.get(sit.accelerator)):
        print(f"not probing: the situation's {sit.accelerator} is not this machine; its time per step is "
              "estimated from FLOPs and memory bandwidth instead", flush=True)
        return {}
    probes = {}
    for m in dict.fromkeys([method, "full", "lora"]):
        print(f"probing {m}: {steps} training steps of batch {sit.batch} x {sit.seq} tokens ...", flush=True)
        probes[m] = probe(config, m, sit.batch, sit.seq, steps=steps)
    return probes


def render(advice, name: str, sit, scenario: str | None = None, models=None) -> str:
    """The advice as text: recommendation (each line with its evidence), why, the numbers, what would
    change it, and the evidence cited."""
    from ..strategy.advise import command_line
    from ..strategy.formulas import human_bytes

    lines = [f"situation: {scenario}" if scenario else "",
             f"model {name}; {sit.samples:,} examples; memory {human_bytes(sit.memory_bytes)}; {sit.tasks} task(s)"
             + (f"; {sit.hours:g} h" if sit.hours else "")
             + (f"; storage {human_bytes(sit.storage_bytes)}" if sit.storage_bytes else "")
             + (f"; accelerator {sit.accelerator}" if sit.accelerator else ""),
             f"\nrecommendation: {advice.method}",
             "  " + command_line(advice.settings, name)]
    lines += [f"  - {text}  [{cite.label()}]" for text, cite in advice.lines]
    lines.append("\nwhy:")
    lines += [f"  - {r.text}  [{r.cite.label()}]" for r in advice.reasons]
    if advice.timing and advice.timing.source == "estimate":
        lines.append(f"\ntime per step: {advice.timing.label}")
        lines += [f"  {x}" for x in advice.timing.lines]
    lines += _memory_table(advice, sit)
    if advice.probes:
        lines.append("\nmeasured probe (this machine; peak memory = what building the model and a few training "
                     "steps added, each method in a fresh process on the CPU, the allocator's peak on a GPU):")
        for m, p in advice.probes.items():
            lines.append(f"  {m:<8} {p.seconds_per_step:.3f} s/step, {p.samples_per_second:.1f} samples/s, "
                         f"epoch of {sit.samples:,} ~ {p.epoch_seconds(sit.samples, sit.batch) / 60:.1f} min, "
                         f"peak memory {human_bytes(p.peak_bytes)} ({p.device})")
    if models is not None:
        lines += _models(models, advice.method)
    lines.append("\nwhat would change the advice:")
    lines += [f"  - {c.text}  [{c.cite.label()}]" for c in advice.changes]
    lines.append("\nevidence cited (strategy/evidence.py):")
    lines += [f"  - {e.cite()}\n      command: {e.command}" for e in _cited(advice, models)]
    return "\n".join(l for l in lines if l != "")


def _memory_table(advice, sit) -> list[str]:
    from ..strategy.formulas import human_bytes

    lines = [f"\nestimated training memory (batch {sit.batch}, {sit.seq} tokens, {sit.precision}; formula, "
             "not measured):"]
    lines.append(f"  {'':<20}" + "".join(f"{m:>12}" for m in advice.memory))
    for i, (label, _) in enumerate(next(iter(advice.memory.values())).rows()):
        lines.append(f"  {label:<20}" + "".join(f"{human_bytes(e.rows()[i][1]):>12}" for e in advice.memory.values()))
    lines.append(f"  {'trainable params':<20}" + "".join(f"{c.trainable:>12,}" for c in advice.counts.values()))
    lines.append(f"  {'artifact per task':<20}" + "".join(f"{human_bytes(4 * c.artifact_params()):>12}"
                                                          for c in advice.counts.values()))
    lines.append(f"  {'storage, all tasks':<20}" + "".join(f"{human_bytes(s):>12}" for s in advice.storage.values()))
    return lines


def _models(models, method: str) -> list[str]:
    from ..strategy.formulas import human_bytes

    lines = [f"\nbase model (built-in encoders, with {method}):"]
    for o in models.options:
        epoch = f"epoch ~ {o.epoch_seconds / 60:.1f} min ({o.time_note})" if o.epoch_seconds else o.time_note
        fit = f", {o.epochs_fit:.1f} epochs fit the budget" if o.epochs_fit is not None else ""
        lines.append(f"  - {o.name}: {o.params / 1e6:.1f}M params, memory {human_bytes(o.memory)} "
                     f"({'fits' if o.fits else 'does not fit'}), {epoch}{fit}; {o.quality}  [{o.cite.label()}]")
    lines.append(f"  - choice: {models.text}  [{models.cite.label()}]")
    return lines


def _cited(advice, models) -> list:
    from ..strategy.evidence import by_id

    table = by_id()
    seen = [e.id for e in advice.cited()]
    if models is not None:
        seen += [i for o in models.options for i in o.cite.ids] + list(models.cite.ids)
    return [table[i] for i in dict.fromkeys(seen) if i in table]
