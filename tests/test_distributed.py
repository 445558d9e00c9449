"""Distributed training under `accelerate launch` (and `torchrun`): 2 CPU processes (gloo) on a
tiny model give the same run as one process with the same global batch, and the run directory
is written once, by the main process."""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import sentiment_rows

STEPS = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_dropout(model_dir: Path) -> Path:
    """Dropout draws differ per process; without it one and two processes must agree."""
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    (model_dir / "config.json").write_text(json.dumps(cfg))
    return model_dir


def write_csv(path: Path, n: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(n))
    return path


def cpu_env() -> dict:
    # CPU-only gloo run even on a GPU machine; one thread per process on a shared 2-core box
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "TUNESMITH_DEBUG": "1",
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}


def finetune_args(model: Path, data: Path, out: Path, batch: int) -> list[str]:
    return ["finetune", "--model", str(model), "--data", str(data), "--output", str(out),
            f"--train.batch_size={batch}", f"--train.max_steps={STEPS}", "--train.eval_every=6",
            "--train.logging_steps=2", "--train.learning_rate=3e-3", "--train.group_by_length=false",
            "--train.precision=fp32"]  # auto is bf16 on CPUs with AMX: compare the processes, not precisions


LAUNCHERS = {
    "accelerate": lambda port: [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                                "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                                "--dynamo_backend", "no", "--main_process_port", str(port),
                                "-m", "tunesmith.cli"],
    "torchrun": lambda port: [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                              "--master_port", str(port), "-m", "tunesmith.cli"],
}


def train_records(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]


def weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run / "model" / "model.safetensors")


@pytest.fixture(scope="module")
def single_run(tmp_path_factory, _tiny_bert_master):
    import shutil

    root = tmp_path_factory.mktemp("single")
    model = no_dropout(Path(shutil.copytree(_tiny_bert_master, root / "model")))
    data = write_csv(root / "reviews.csv", 80)
    from tunesmith.cli import main

    assert main(finetune_args(model, data, root / "run", 8)) == 0  # in-process: one start-up saved
    return model, data, root / "run"


@pytest.mark.parametrize("launcher", ["accelerate", pytest.param("torchrun", marks=pytest.mark.slow)])
def test_two_processes_match_one(single_run, tmp_path, launcher):
    model, data, single = single_run
    run = tmp_path / "run"
    cmd = LAUNCHERS[launcher](free_port()) + finetune_args(model, data, run, 4)  # 2 x 4 = 8 per step
    proc = subprocess.run(cmd, env=cpu_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    # written once, by the main process
    assert proc.stdout.count("run directory:") == 1
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["kind"], r["step"]) for r in recs]
    assert len(keys) == len(set(keys)), "a metrics line was written by more than one process"
    assert (run / "report.json").is_file() and (run / "model" / "model.safetensors").is_file()
    assert not list(run.glob("*.tmp"))

    # the same optimisation as one process with the same global batch
    one, two = train_records(single), train_records(run)
    assert [r["step"] for r in one] == [r["step"] for r in two]
    assert two[-1]["step"] == STEPS and two[-1]["epoch"] == one[-1]["epoch"]
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-4)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-3, abs=1e-5)
    w1, w2 = weights(single), weights(run)
    assert w1.keys() == w2.keys()
    worst = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert worst < 1e-4, f"weights differ by {worst}"
    r1, r2 = (json.loads((r / "report.json").read_text())["evaluation"] for r in (single, run))
    for split in r1:
        assert r2[split]["accuracy"] == pytest.approx(r1[split]["accuracy"], abs=1e-9)


def test_distributed_run_needs_explicit_dir(monkeypatch):
    from tunesmith import runs
    from tunesmith.errors import TunesmithError

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(TunesmithError, match="--output.dir"):
        runs.default_run_dir("m", "d", "full")


def test_only_main_process_writes(tmp_path, monkeypatch):
    from tunesmith import runs

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    runs.prepare(tmp_path / "run", resume=False, overwrite=False)  # another process's folder: no check
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()
    runs.start(tmp_path / "run", {"task": "classification"})
    runs.append_metrics(tmp_path / "run", {"kind": "train", "step": 1})
    runs.write_json(tmp_path / "run" / "x.json", {})
    assert list((tmp_path / "run").iterdir()) == []


def test_pretrain_under_two_processes_writes_its_run_once(tmp_path, _tiny_bert_master):
    """`tunesmith pretrain` under accelerate launch: every process trains, one writes the run."""
    import shutil

    from test_pretrain import write_corpus

    model = Path(shutil.copytree(_tiny_bert_master, tmp_path / "model"))
    corpus = write_corpus(tmp_path / "corpus.txt")
    run = tmp_path / "run"
    cmd = LAUNCHERS["accelerate"](free_port()) + [
        "pretrain", "--model", str(model), "--corpus", str(corpus), "--corpus.eval_size=0.2",
        "--max-length", "32", "--max-steps", "4", "--batch-size", "4", "--objective.eval_examples=8",
        "--train.eval_every=2", "--train.logging_steps=1", "--output", str(run)]
    proc = subprocess.run(cmd, env=cpu_env(), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("run directory:") == 1 and proc.stdout.count("report:") == 1
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    keys = [(r["kind"], r["step"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert len(keys) == len(set(keys)) and max(s for _, s in keys) == 4
    assert (run / "model" / "model.safetensors").is_file() and (run / "report.json").is_file()
