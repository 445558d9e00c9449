"""--time-budget (budget.py), train.precision (trainer.resolve_precision) and the run log / run.json
that say what ran; the lean pass in a real fine-tuning run."""
from __future__ import annotations

import json

import pytest
import torch

from tunesmith import budget
from tunesmith.cli import main
from tunesmith.errors import TunesmithError
from tunesmith.trainer import resolve_precision


@pytest.mark.parametrize("text,seconds", [("300", 300), ("90s", 90), ("5m", 300), ("1h30m", 5400),
                                          ("1.5h", 5400), ("2m30s", 150)])
def test_parse_duration(text, seconds):
    assert budget.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5x", "m5", "-3m", "0", "5 minutes", "1h30"])
def test_parse_duration_rejects_with_the_accepted_forms(bad):
    with pytest.raises(ValueError, match="300s, 5m, 1h30m"):
        budget.parse_duration(bad)


def test_plan_fits_steps_and_evaluations_in_the_budget():
    p = budget.plan(budget_s=300, spent_s=20, step_s=0.5, eval_pass_s=4, save_s=0.5, after_s=30,
                    steps_per_epoch=265, max_epochs=3, eval_every=None)
    assert p.planned_s <= 300 * (1 - budget.MARGIN) + 1e-6
    assert p.planned_s > 300 * (1 - budget.MARGIN) - p.step_s - p.eval_s  # nothing left unused
    assert p.evals <= budget.MAX_EVALS and p.evals == -(-p.steps // p.eval_every)
    assert not p.capped_by_epochs and 0 < p.epochs < 3


def test_fewer_budget_evaluations_leave_more_steps():
    """train.budget_evals: each evaluation (validation pass + checkpoint) costs steps; the demo uses 2."""
    kw = dict(budget_s=300, spent_s=20, step_s=0.5, eval_pass_s=8, save_s=1, after_s=20, steps_per_epoch=265,
              max_epochs=3, eval_every=None)
    five, two = budget.plan(**kw), budget.plan(**kw, max_evals=2)
    assert five.evals == 5 and two.evals == 2 and two.max_evals == 2
    assert two.steps - five.steps == pytest.approx(3 * five.eval_s / 0.5, abs=2)


def test_plan_is_capped_by_epochs_and_refuses_a_budget_too_small():
    p = budget.plan(3600, 10, 0.1, 1, 0.1, 10, steps_per_epoch=100, max_epochs=2, eval_every=20)
    assert p.steps == 200 and p.capped_by_epochs and p.eval_every == 20 and p.evals == 10
    with pytest.raises(TunesmithError, match="too small"):
        budget.plan(30, 25, 0.5, 4, 0.5, 10, steps_per_epoch=100, max_epochs=3, eval_every=None)


def test_precision_auto_follows_the_hardware(monkeypatch):
    caps = {"avx512_bf16": False, "amx_bf16": False}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps, raising=False)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu)["precision"] == "fp32"
    caps["avx512_bf16"] = True
    p = resolve_precision("auto", cpu)
    assert p["precision"] == "bf16" and "AVX512-BF16" in p["why"] and not p["tf32"]
    assert resolve_precision("fp32", cpu)["precision"] == "fp32"
    with pytest.raises(TunesmithError, match="CUDA GPU"):
        resolve_precision("fp16", cpu)
    # a fake CUDA device: Ampere has native bf16 and TF32, Volta gets fp16 with loss scaling
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "fake GPU")
    for native, major, want in ((True, 8, "bf16"), (False, 7, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True, n=native: n)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None, m=major: (m, 0))
        p = resolve_precision("auto", torch.device("cuda"))
        assert p["precision"] == want and p["tf32"] == (major >= 8)


def test_finetune_with_a_time_budget_plans_logs_and_records(tiny_bert, sentiment_csv, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["finetune", "--model", str(tiny_bert), "--data", str(sentiment_csv), "--output", str(out),
                 "--time-budget", "60s", "--epochs", "2", "--batch-size", "8", "--lr", "5e-3"]) == 0
    log = capsys.readouterr().out
    plan = json.loads((out / "budget.json").read_text())
    assert "time budget 60 s:" in log and "planned" in log and "actual" in log
    assert plan["steps"] >= 1 and plan["planned_s"] <= 60
    report = json.loads((out / "report.json").read_text())
    tb = report["training"]["time_budget"]
    assert tb["actual_s"] < 60 and report["training"]["steps"] <= plan["steps"]
    info = json.loads((out / "run.json").read_text())
    assert info["precision"]["precision"] in ("fp32", "bf16") and info["precision"]["why"]
    assert info["lean_training"]["used"] is True
    assert "precision:" in log and "lean training pass: on" in log
    # the schedule spans the planned steps: the lr reaches ~0 at the last step
    lrs = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in lrs if r.get("kind") == "train"]
    assert last and last[-1]["lr"] < 0.25 * 5e-3


class _State:
    def __init__(self, max_steps):
        self.max_steps, self.global_step = max_steps, 0


class _Control:
    should_training_stop = should_evaluate = should_save = False


def test_budget_callback_replans_from_measured_steps_and_keeps_the_schedule_ending_at_zero(monkeypatch):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    p = budget.plan(100, 0, 1.0, 2.0, 0.1, 5, steps_per_epoch=1000, max_epochs=3, eval_every=None)
    cb = budget.BudgetCallback(p, 0.1)
    state, control = _State(p.cap_steps), _Control()
    cb.on_train_begin(None, state, control, lr_scheduler=sched)
    assert state.max_steps == p.steps < p.cap_steps
    clock = {"t": 0.0}
    monkeypatch.setattr(budget, "elapsed", lambda: clock["t"])
    monkeypatch.setattr(budget.time, "perf_counter", lambda: clock["t"])
    for _ in range(10):  # the machine is 4x faster than measured
        cb.on_step_begin(None, state, control, lr_scheduler=sched)
        clock["t"] += 0.25
        state.global_step += 1
        cb.on_step_end(None, state, control, lr_scheduler=sched)
    assert cb.replans == 1 and state.max_steps > 2.5 * p.steps and not control.should_training_stop
    f = sched.lr_lambdas[0]
    assert f(state.max_steps) == 0.0 and f(state.max_steps - 1) > 0 and f(cb.warmup) == 1.0
    longer = state.max_steps
    clock["t"] = 20.0  # a 17.5 s evaluation: the re-plan shortens the run to what still fits
    cb.on_step_begin(None, state, control, lr_scheduler=sched)
    clock["t"] += 0.25
    state.global_step += 1
    cb.on_step_end(None, state, control, lr_scheduler=sched)
    assert cb.replans == 2 and state.global_step < state.max_steps < longer
    assert sched.lr_lambdas[0](state.max_steps) == 0.0
    clock["t"] = 99.0  # far behind between re-plans: the guard stops training so that the end fits
    state.global_step += 1
    cb.on_step_end(None, state, control, lr_scheduler=sched)
    assert control.should_training_stop and cb.stopped_at == state.global_step


def test_a_replan_after_an_evaluation_off_the_new_cadence_still_counts_the_last_evaluation(monkeypatch):
    """Measured in a demo: evaluated at 272, re-planned to 472 steps every 236 -> ceil(272/236) = 2 =
    ceil(472/236) counted no evaluation left, and the guard stopped at 459 of 472."""
    p = budget.plan(100, 0, 0.1, 5.0, 0.1, 5, steps_per_epoch=10_000, max_epochs=3, eval_every=None, max_evals=2)
    cb = budget.BudgetCallback(p, 0.1)
    cb.every, cb.step_times, cb.eval_times = 272, [0.1] * 20, [5.0]
    state = _State(p.steps)
    state.global_step = 272
    monkeypatch.setattr(budget, "elapsed", lambda: 60.0)  # behind plan: the new cadence is under 272
    cb._replan(state, None)
    assert cb.every < 272
    avail = 100 * (1 - budget.MARGIN) - 60.0 - p.after_s
    # the run's end leaves room for the evaluation on its last step
    assert (state.max_steps - 272) * 0.1 + 5.0 <= avail + 1e-6


def test_padded_cells_counts_each_batch_at_its_longest():
    from datasets import Dataset

    from tunesmith.budget import padded_cells

    ds = Dataset.from_dict({"input_ids": [[1] * n for n in (5, 4, 4, 2, 1)]})
    assert padded_cells(ds, 2) == 2 * 5 + 2 * 4 + 1 * 1
    assert padded_cells(Dataset.from_dict({"text": ["a"]}), 2) == 0
