"""Which built-in base encoder (minilm or mpnet) for the situation: by memory and time budget,
citing measured quality from strategy/evidence.py, or "no measurement yet" where there is none.

The candidates are sized from their architecture shapes (no files read: mpnet's weights are an
optional 400 MB download-free package that need not be installed to advise on it).
"""
from __future__ import annotations

from dataclasses import dataclass

from .evidence import EVIDENCE
from .evidence_select import HAND_SET, Cite, model_quality, model_speed
from .formulas import count_method, human_bytes

# Architecture shapes of the built-ins (their config.json files): all-MiniLM-L6-v2 and all-mpnet-base-v2.
SHAPES = {
    "minilm": dict(model_type="bert", vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                   intermediate_size=1536, max_position_embeddings=512),
    "mpnet": dict(model_type="mpnet", vocab_size=30527, hidden_size=768, num_hidden_layers=12,
                  num_attention_heads=12, intermediate_size=3072, max_position_embeddings=514),
}


def shape_config(name: str):
    from transformers import CONFIG_MAPPING

    kw = dict(SHAPES[name])
    return CONFIG_MAPPING[kw.pop("model_type")](**kw)


@dataclass
class ModelOption:
    name: str
    params: int
    memory: int
    fits: bool
    epoch_seconds: float | None
    epochs_fit: float | None
    time_note: str
    quality: str
    cite: Cite
    value: float | None = None  # the measured metric, when there is one
    size: int | None = None  # training examples it was measured with


@dataclass
class ModelChoice:
    options: list[ModelOption]
    choice: str | None
    text: str
    cite: Cite


def choose_model(sit, method: str, timing=None, advised_config=None, evidence=EVIDENCE) -> ModelChoice:
    """Size each candidate for `method`, time it like the main advice, and pick one (see module docstring)."""
    from .advise import MEMORY_MARGIN, epochs_for

    options = [_option(n, sit, method, timing, advised_config, evidence) for n in SHAPES]
    rule = epochs_for(sit.samples)
    ok = [o for o in options if o.fits and (o.epochs_fit is None or o.epochs_fit >= 1)]
    if not ok:
        return ModelChoice(options, None, f"neither fits {MEMORY_MARGIN:.0%} of {human_bytes(sit.memory_bytes)} "
                           "and the budget: lower the batch or the sequence length", Cite(note=HAND_SET))
    measured = [o for o in ok if o.value is not None]
    if len(measured) == len(ok) > 1 and len({o.size for o in measured}) == 1:  # comparable: same data size
        best = max(measured, key=lambda o: o.value)
        return ModelChoice(options, best.name, f"{best.name}: the best measured that fits",
                           Cite(tuple(i for o in measured for i in o.cite.ids)))
    roomy = [o for o in ok if o.epochs_fit is None or o.epochs_fit >= rule] or ok
    best = max(roomy, key=lambda o: o.params)
    unmeasured = [o.name for o in options if o.value is None]
    why = "fits memory" + (f" and the budget allows the {rule} planned epochs" if best.epochs_fit else "")
    return ModelChoice(options, best.name, f"{best.name}: the larger model that {why}",
                       Cite(note=f"{HAND_SET} (quality not compared: no measurement yet for "
                                 f"{', '.join(unmeasured) or 'a common size'})"))


def _option(name, sit, method, timing, advised_config, evidence) -> ModelOption:
    from .advise import MEMORY_MARGIN
    from .memory import estimate

    config = shape_config(name)
    count = count_method(config, method, sit.labels)
    mem = estimate(config, count, sit.batch, sit.seq, sit.precision).total
    step, note = _step(name, config, count, sit, timing, advised_config, method, evidence)
    epoch = None if step is None else -(-sit.samples // sit.batch) * step
    fit = sit.hours * 3600 / epoch if epoch and sit.hours else None
    found = model_quality(name, sit.samples, sit.task, evidence)
    value = size = None
    if found:
        q, i = found
        value, size = q.value, q.train_examples
        quality, cite = f"measured {q.value:.3f} {q.metric} ({q.method}, {q.train_examples:,} examples, {q.data})", \
            Cite((i,))
    else:
        quality, cite = f"no measurement yet near {sit.samples:,} examples", Cite(note="no measurement yet")
    return ModelOption(name, count.base, mem, mem <= MEMORY_MARGIN * sit.memory_bytes, epoch, fit, note,
                       quality, cite, value, size)


def _step(name, config, count, sit, timing, advised_config, method, evidence):
    """Seconds per step: the accelerator estimate, a measured speed row, or the probe scaled by FLOPs."""
    from . import accelerators

    if timing is not None and timing.source == "estimate":
        acc = accelerators.get(sit.accelerator)
        e = accelerators.estimate_step(config, count, sit.batch, sit.seq, sit.precision, acc)
        return e.step_seconds, f"estimate for {acc.name}"
    speed = model_speed(name, evidence)
    if speed and speed[0].batch == sit.batch and speed[0].seq == sit.seq:
        return speed[0].seconds_per_step, f"measured ({speed[1]}, {speed[0].device})"
    if timing is not None and advised_config is not None:
        mine, _ = accelerators.flops_per_token(config, count, sit.seq)
        base, _ = accelerators.flops_per_token(advised_config, count_method(advised_config, method, sit.labels),
                                               sit.seq)
        return timing.step_seconds * mine / base, "estimate: the probe scaled by FLOPs"
    return None, "no time estimate"
