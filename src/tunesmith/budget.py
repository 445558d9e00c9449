"""`--time-budget`: a run plans its own schedule from its measured speed, so that training,
evaluation and saving end within the budget.

Before training starts, the run times a few real training steps (data loading, forward,
backward, clipping and an AdamW step at lr 0, which leaves the weights as they are), one
evaluation batch and one checkpoint write. From those and the time already spent (loading data
and the model) it sets the number of optimizer steps, the warm-up (a share of them) and the
evaluation cadence, and the learning-rate schedule then spans exactly those steps: it is never
cut off mid-schedule: after the first steps and after every evaluation the run re-plans from the
times it measured, and the rest of the schedule is re-anchored to end at zero on the new last step.
Only if the machine slows down so much that the end would not fit does a guard stop training in
time, and it says so. `train.epochs` stays the upper bound. The plan is written to
`<run>/budget.json`; a resumed run keeps it.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import TrainerCallback

from . import runs
from .errors import TunesmithError

_CLOCK = {"t0": None}
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([hms]?)")
MARGIN = 0.04  # share of the budget kept free for what the estimates miss
MAX_EVALS = 5  # default train.budget_evals: evaluations over a budgeted run (each a validation pass and a checkpoint)


def start_clock() -> None:
    """Mark the start of a run (the budget counts from here)."""
    _CLOCK["t0"] = time.perf_counter()


def elapsed() -> float:
    """Seconds since `start_clock()` (0 if it was never called)."""
    return 0.0 if _CLOCK["t0"] is None else time.perf_counter() - _CLOCK["t0"]


def parse_duration(text: str | float | int) -> float:
    """'5m' -> 300.0; also '90s', '1h30m', '1.5h', '300' (seconds).

    Example:
        >>> parse_duration("1h30m")
        5400.0
    """
    s = str(text).strip().lower().replace(" ", "")
    parts = _PART.findall(s)
    if not s or "".join(n + u for n, u in parts) != s or (len(parts) > 1 and any(u == "" for _, u in parts)):
        raise ValueError(f"time_budget {text!r}: write it like 300s, 5m, 1h30m or 1.5h")
    seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"time_budget {text!r} must be positive: write it like 300s, 5m, 1h30m or 1.5h")
    return seconds


@dataclass
class Plan:
    budget_s: float
    spent_before_s: float  # loading data and model, tokenising, measuring
    step_s: float  # one optimizer step (grad_accum micro-batches)
    eval_s: float  # one validation pass plus its checkpoint
    after_s: float  # after training: best model reload, final save, held-out evaluation, report
    steps: int
    eval_every: int
    evals: int
    epochs: float
    capped_by_epochs: bool
    planned_s: float  # spent_before + training + evaluations + after
    cap_steps: int = 0  # train.epochs' worth of steps: the most a re-plan may give
    max_evals: int = MAX_EVALS  # train.budget_evals: evaluations spread over the run

    def describe(self) -> str:
        cap = " (capped by train.epochs)" if self.capped_by_epochs else ""
        return (f"time budget {self.budget_s:.0f} s: {self.steps} steps{cap} = {self.epochs:.2f} epochs at "
                f"{self.step_s:.3f} s/step, {self.evals} evaluations every {self.eval_every} steps at "
                f"{self.eval_s:.1f} s each, {self.spent_before_s:.0f} s already spent, {self.after_s:.0f} s "
                f"reserved for the end -> planned {self.planned_s:.0f} s")


def measure_steps(trainer, n: int = 6) -> float:
    """Seconds per optimizer step: real batches through forward, backward, clipping and an AdamW
    step at lr 0 (weights unchanged), the first micro-batch untimed (warm-up)."""
    model, args = trainer.model, trainer.args
    params = [p for p in model.parameters() if p.requires_grad]
    # fused, as the Trainer's optimizer (trainer.py): the unfused one is ~0.08 s/step slower on minilm
    opt = torch.optim.AdamW(params, lr=0.0, weight_decay=0.0, fused=True)
    model.train()
    times: list[float] = []
    loader = iter(trainer.get_train_dataloader())
    t = time.perf_counter()
    for i in range(n + 1):
        try:
            batch = trainer._prepare_inputs(next(loader))
        except StopIteration:
            break
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        now = time.perf_counter()
        if i:
            times.append(now - t)
        t = now
    model.zero_grad(set_to_none=True)
    del opt
    if not times:
        raise TunesmithError("time budget: the training split is too small to measure a step")
    times.sort()
    return times[len(times) // 2] * args.gradient_accumulation_steps  # median micro-batch x accumulation


@torch.no_grad()
def measure_eval(trainer, n_examples: int) -> float:
    """Seconds for a validation pass over `n_examples`, from two timed evaluation batches.

    The pass runs longest first (trainer.longest_first), so those batches are the widest: the
    estimate scales their time per padded token to the whole pass's padded tokens."""
    if not n_examples or trainer.eval_dataset is None:
        return 0.0
    model = trainer.model
    model.eval()
    seen, cells, spent = 0, 0, 0.0
    loader = trainer.get_eval_dataloader()
    for i, batch in enumerate(loader):
        t = time.perf_counter()
        model(**trainer._prepare_inputs(batch))
        if i:
            spent += time.perf_counter() - t
            seen += len(batch["input_ids"])
            cells += batch["input_ids"].numel()
        if i >= 2:
            break
    model.train()
    if not seen:
        return 0.0
    total = padded_cells(loader.dataset, trainer.args.eval_batch_size)
    return spent / cells * total * n_examples / len(loader.dataset) if total else spent / seen * n_examples


def padded_cells(ds, batch_size: int) -> int:
    """Tokens a pass over `ds` in order, batches padded to their longest, feeds the model (0: unknown)."""
    names = getattr(ds, "column_names", None) or []
    if "input_ids" not in names:
        return 0
    lengths = [len(x) for x in ds["input_ids"]]
    return sum(max(lengths[i:i + batch_size]) * len(lengths[i:i + batch_size])
               for i in range(0, len(lengths), batch_size))


def measure_save(trainer, run: Path) -> float:
    """Seconds to write the model weights once (a checkpoint also writes optimizer state: x3)."""
    probe = run / ".budget-probe.safetensors"
    t = time.perf_counter()
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, str(probe))
    seconds = time.perf_counter() - t
    probe.unlink(missing_ok=True)
    return seconds


def plan(budget_s: float, spent_s: float, step_s: float, eval_pass_s: float, save_s: float,
         after_s: float, steps_per_epoch: int, max_epochs: float, eval_every: int | None,
         max_evals: int = MAX_EVALS) -> Plan:
    """The most optimizer steps (and their evaluations) that fit in what is left of the budget."""
    checkpoint_s = 3 * save_s  # weights + AdamW's two moments
    eval_s = eval_pass_s + checkpoint_s
    avail = budget_s * (1 - MARGIN) - spent_s - after_s
    cap = max(1, int(math.floor(max_epochs * steps_per_epoch))) if max_epochs > 0 else 10**9
    steps, every = 0, eval_every or 1
    for _ in range(4):  # steps -> cadence -> evaluations' cost -> steps, until it settles
        evals = math.ceil(steps / every) if steps else 1
        steps = min(cap, int((avail - evals * eval_s) / step_s)) if avail > evals * eval_s else 0
        every = eval_every or max(5, math.ceil(steps / max_evals)) if steps else every
    if steps < 1:
        need = spent_s + after_s + eval_s + 10 * step_s
        raise TunesmithError(f"time budget {budget_s:.0f} s is too small: {spent_s:.0f} s are already spent and "
                             f"the end of the run needs ~{after_s + eval_s:.0f} s; give at least ~{need / (1 - MARGIN):.0f} s")
    evals = math.ceil(steps / every)
    planned = spent_s + steps * step_s + evals * eval_s + after_s
    return Plan(budget_s, round(spent_s, 2), round(step_s, 4), round(eval_s, 2), round(after_s, 2), steps,
                every, evals, round(steps / steps_per_epoch, 3), steps == cap, round(planned, 1),
                cap if cap < 10**9 else 0, max_evals)


def fit(trainer, run: Path, budget: str, n_train: int, n_val: int, after_examples: int,
        extra_after_s: float = 0.0, eval_every: int | None = None, max_epochs: float = 3.0,
        resume: bool = False, max_evals: int = MAX_EVALS) -> Plan:
    """Measure, plan and apply the plan to `trainer.args` (steps, cadence); a resumed run reuses
    the plan saved in the run. Returns the plan."""
    saved = run / "budget.json"
    if resume and saved.is_file():
        p = Plan(**{k: v for k, v in runs.read_json(saved).items() if k in Plan.__dataclass_fields__})
    else:
        args = trainer.args
        per_epoch = max(1, math.ceil(n_train / (args.train_batch_size * args.gradient_accumulation_steps
                                                * runs.world_size())))
        step_s = measure_steps(trainer)
        eval_pass = measure_eval(trainer, n_val)
        save_s = measure_save(trainer, run)
        after = 2 * save_s + measure_eval(trainer, after_examples) + extra_after_s + 3.0
        torch.manual_seed(args.seed)  # measuring drew dropout masks: start training from the seed
        p = plan(parse_duration(budget), elapsed(), step_s, eval_pass, save_s, after, per_epoch, max_epochs,
                 eval_every, max_evals)
        runs.write_json(saved, asdict(p))
    apply(trainer, p)
    ratio = trainer.args.warmup_steps if trainer.args.warmup_steps < 1 else 0.1
    trainer.add_callback(BudgetCallback(p, ratio, eval_every))
    return p


def maybe_fit(trainer, run: Path, train_cfg, n_train: int, n_val: int, after_examples: int, resume: bool,
              say=print, extra_after_s: float = 0.0):
    """`fit` when train.time_budget is set (and say the plan); None otherwise."""
    if not train_cfg.time_budget:
        return None
    p = fit(trainer, run, train_cfg.time_budget, n_train, n_val, after_examples, extra_after_s=extra_after_s,
            eval_every=train_cfg.eval_every, max_epochs=train_cfg.epochs, resume=resume,
            max_evals=train_cfg.budget_evals)
    say(p.describe())
    return p


def apply(trainer, p: Plan) -> None:
    """Trainer's loop runs to the epoch cap (so a re-plan can lengthen the run); the budget
    callback sets the planned steps and their schedule when training begins."""
    args = trainer.args
    args.max_steps = max(p.steps, p.cap_steps or p.steps)
    args.eval_steps = args.save_steps = p.eval_every


def linear_schedule(total: int, warmup: int):
    """transformers' linear schedule with warm-up, for `total` steps."""
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


class BudgetCallback(TrainerCallback):
    """Keeps the run on its plan: sets the planned steps and their learning-rate schedule when
    training begins, re-plans from the measured step and evaluation times after the first steps
    and after every evaluation (lengthening or shortening the rest of the schedule, which is
    re-anchored so that it still ends at zero on the last step; warm-up keeps its length), and
    stops in time if the machine slows down so much that the end would not fit."""

    def __init__(self, p: Plan, warmup_ratio: float, user_every: int | None = None):
        self.plan, self.warmup_ratio, self.user_every, self.every = p, warmup_ratio, user_every, p.eval_every
        self.warmup = max(1, math.ceil(warmup_ratio * p.steps))
        self.step_times: list[float] = []
        self.eval_times: list[float] = []
        self.t_step = self.t_end = None
        self.replans = 0
        self.stopped_at: int | None = None

    def _set(self, state, scheduler, steps: int) -> None:
        state.max_steps = steps
        if scheduler is not None and hasattr(scheduler, "lr_lambdas"):
            scheduler.lr_lambdas = [linear_schedule(steps, self.warmup)] * len(scheduler.lr_lambdas)

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        self._set(state, lr_scheduler, self.plan.steps)

    def on_step_begin(self, args, state, control, **kwargs):
        now = time.perf_counter()
        if self.t_end is not None and now - self.t_end > 0.2:  # evaluation + checkpoint since the last step
            self.eval_times.append(now - self.t_end)
            self._replan(state, kwargs.get("lr_scheduler"))
        self.t_step = now

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        self.t_end = time.perf_counter()
        if self.t_step is not None:
            self.step_times.append(self.t_end - self.t_step)
        if len(self.step_times) == max(8, math.ceil(0.05 * self.plan.steps)):
            self._replan(state, lr_scheduler)
        left = self.plan.budget_s - elapsed()
        if state.global_step < state.max_steps and left < self.plan.after_s + self._eval_s() + self._step_s():
            self.stopped_at = state.global_step
            control.should_training_stop = True
            control.should_evaluate = control.should_save = True
            if runs.is_main_process():
                print(f"time budget: stopping at step {state.global_step} of {state.max_steps} to finish in "
                      "time; the machine ran slower than measured", flush=True)

    def _step_s(self) -> float:
        t = sorted(self.step_times[1:] or self.step_times)
        return t[len(t) // 2] if t else self.plan.step_s

    def _eval_s(self) -> float:
        t = sorted(self.eval_times)
        return t[len(t) // 2] if t else self.plan.eval_s  # the upper median: one slow pass is noise

    def _replan(self, state, scheduler) -> None:
        done = state.global_step
        step_s, eval_s = self._step_s(), self._eval_s()
        avail = self.plan.budget_s * (1 - MARGIN) - elapsed() - self.plan.after_s
        cap = self.plan.cap_steps or self.plan.steps
        every, steps = self.every, state.max_steps
        for _ in range(4):  # as in plan(): steps -> cadence -> evaluations' cost -> steps
            # multiples of the new cadence still ahead, the last step included (Trainer evaluates
            # there anyway); ceil(done / every) would miss it when the cadence changed after an
            # evaluation off its multiples, and the guard then cut the run ~13 steps short
            evals = math.ceil(steps / every) - math.floor(done / every)
            steps = max(done + 1, min(cap, done + int(max(0.0, avail - evals * eval_s) / step_s)))
            every = self.user_every or max(5, math.ceil(steps / self.plan.max_evals))
        self.replans += 1
        self.every = state.eval_steps = state.save_steps = every
        if steps != state.max_steps:
            self._set(state, scheduler, steps)
