"""`train.report_to`: names and packages checked when the config is read, and real TensorBoard /
MLflow logs in the run directory from tiny runs (skipped when the optional package is absent:
CI installs only `.[dev]`; `pip install 'tunesmith[tracking]'` brings both)."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from tunesmith import config as C
from tunesmith import tracking
from tunesmith.cli import main
from tunesmith.errors import TunesmithError
from tunesmith.pretrain.config import PretrainConfig

HAS_TB = importlib.util.find_spec("tensorboard") is not None
HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None
needs_tb = pytest.mark.skipif(not HAS_TB, reason="tensorboard not installed (optional: pip install 'tunesmith[tracking]')")
needs_mlflow = pytest.mark.skipif(not HAS_MLFLOW, reason="mlflow not installed (optional: pip install 'tunesmith[tracking]')")
TRACKER_MODULES = {m for mods in tracking.TRACKERS.values() for m in mods}


@pytest.fixture
def no_trackers(monkeypatch):
    """Make tensorboard, tensorboardX and mlflow look uninstalled (find_spec is how we look)."""
    real = importlib.util.find_spec

    def fake(name, *args, **kwargs):
        return None if name.split(".")[0] in TRACKER_MODULES else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake)


@pytest.fixture
def clean_mlflow_env(monkeypatch):
    """mlflow.set_tracking_uri / set_experiment write MLFLOW_* into os.environ; undo that after."""
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "TENSORBOARD_LOGGING_DIR"):
        monkeypatch.delenv(var, raising=False)
    yield monkeypatch
    if HAS_MLFLOW:
        import mlflow

        mlflow.set_tracking_uri(None)


# ----------------------------------------------------------------------------- parsing

def test_parse_forms():
    assert tracking.parse(None) == [] and tracking.parse("none") == [] and tracking.parse("") == []
    assert tracking.parse("TensorBoard, mlflow,tensorboard") == ["tensorboard", "mlflow"]
    assert tracking.parse(["mlflow"]) == ["mlflow"] and tracking.parse(["none"]) == []


@pytest.mark.parametrize("value, needle", [("wandb", "unknown tracker(s) ['wandb']"), ("all", "['all']"),
                                           ("none,mlflow", "'none' cannot be combined")])
def test_parse_rejects_with_the_valid_names(value, needle):
    with pytest.raises(ValueError) as e:
        tracking.parse(value)
    assert needle in str(e.value) and "valid: none, tensorboard, mlflow" in str(e.value)


def test_config_reads_report_to_from_flags_and_yaml(tmp_path, monkeypatch):
    """A flag is comma-separated, YAML takes a list or a string; `none` is no tracking. Both the
    fine-tuning and the pre-training train sections have it (PretrainTrainConfig inherits it)."""
    monkeypatch.setattr(tracking, "missing", lambda names: [])  # parsing only: packages or not
    cfg = C.load(C.FinetuneConfig, None, C.parse_overrides(["--train.report_to=none"]))
    assert cfg.train.report_to is None and C.FinetuneConfig().train.report_to is None
    cfg = C.load(C.FinetuneConfig, None, C.parse_overrides(["--train.report_to=tensorboard,mlflow"]))
    assert cfg.train.report_to == ["tensorboard", "mlflow"]
    y = tmp_path / "c.yaml"
    for text, want in (("none", None), ("[mlflow]", ["mlflow"]), ("tensorboard", ["tensorboard"])):
        y.write_text(f"train:\n  report_to: {text}\n")
        assert C.load(PretrainConfig, str(y), {}).train.report_to == want, text


def test_unknown_tracker_is_a_clear_cli_error(tmp_path, capsys):
    assert main(["finetune", "--output", str(tmp_path / "run"), "--train.report_to=wandb"]) == 2
    err = capsys.readouterr().err
    assert "unknown tracker(s) ['wandb']" in err and "valid: none, tensorboard, mlflow" in err
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- missing packages

@pytest.mark.parametrize("value, absent", [("tensorboard", "pip install tensorboard"),
                                           ("mlflow", "pip install mlflow"),
                                           ("tensorboard,mlflow", "pip install tensorboard mlflow")])
def test_missing_package_names_the_pip_command(no_trackers, value, absent):
    with pytest.raises(TunesmithError) as e:
        C.build(C.FinetuneConfig, {"train": {"report_to": value}}, "test")
    msg = str(e.value)
    assert "pip install 'tunesmith[tracking]'" in msg and absent in msg and "--train.report_to=none" in msg
    assert C.build(C.FinetuneConfig, {"train": {"report_to": "none"}}, "test").train.report_to is None


@pytest.mark.parametrize("command", ["finetune", "pretrain"])
def test_missing_package_stops_before_any_loading(no_trackers, tmp_path, capsys, command):
    """The model and data named here do not exist: the tracking error must come first, and no
    run directory is made."""
    source = "--data" if command == "finetune" else "--corpus"
    argv = [command, "--model", str(tmp_path / "no-model"), source, str(tmp_path / "no-data.csv"),
            "--output", str(tmp_path / "run"), "--train.report_to=mlflow"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "mlflow is not installed" in err and "pip install 'tunesmith[tracking]'" in err
    assert "no-model" not in err and "no-data" not in err
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- arguments and stores

def test_training_arguments_carry_report_to_and_run_name(tmp_path, monkeypatch):
    from tunesmith.config import TrainConfig
    from tunesmith.trainer import training_args

    args = training_args(TrainConfig(), tmp_path / "my-run", 1e-3, 100, True)
    assert [n for n in args.report_to if n in tracking.TRACKERS] == [] and args.run_name == "my-run"
    monkeypatch.setattr(tracking, "missing", lambda names: [])
    args = training_args(TrainConfig(report_to="mlflow,tensorboard"), tmp_path / "r2", 1e-3, 100, True)
    assert [n for n in args.report_to if n in tracking.TRACKERS] == ["mlflow", "tensorboard"]
    assert args.run_name == "r2"


def test_mlflow_store_defaults_to_the_run_and_the_users_uri_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.mlflow_uri(tmp_path / "r") == f"sqlite:///{(tmp_path / 'r').resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking.mlflow_uri(tmp_path / "r") == "http://tracking.example:5000"
    # a URI an earlier run of this process set (mlflow writes it into os.environ) is not the user's
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/mlflow.db")
    monkeypatch.setattr(tracking, "_OUR_URIS", {"sqlite:////elsewhere/mlflow.db"})
    assert tracking.mlflow_uri(tmp_path / "r").endswith("/r/mlflow.db")
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))
    assert tracking.tensorboard_dir(tmp_path / "r") == tmp_path / "tb"


# ----------------------------------------------------------------------------- real runs

def _losses(run: Path) -> dict[int, float]:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if r["kind"] == "train"}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One 4-step fine-tune of the tiny BERT reporting to every installed tracker, run from an
    empty working directory (nothing may land there: MLflow's own default is ./mlruns)."""
    names = [n for n, ok in (("tensorboard", HAS_TB), ("mlflow", HAS_MLFLOW)) if ok]
    if not names:
        pytest.skip("neither tensorboard nor mlflow installed (optional: pip install 'tunesmith[tracking]')")
    from conftest import make_tiny_bert, sentiment_rows

    root = tmp_path_factory.mktemp("tracked")
    model = make_tiny_bert(root / "tiny")
    data = root / "reviews.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(60))
    cwd = root / "cwd"
    cwd.mkdir()
    run = root / "tiny-run"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "TENSORBOARD_LOGGING_DIR"):
            mp.delenv(var, raising=False)
        mp.chdir(cwd)
        import io
        from contextlib import redirect_stdout

        out = io.StringIO()
        with redirect_stdout(out):
            rc = main(["finetune", "--model", str(model), "--data", str(data), "--output", str(run),
                       "--train.max_steps=4", "--train.logging_steps=1", "--batch-size", "8",
                       "--train.eval_every=2", f"--train.report_to={','.join(names)}"])
        assert rc == 0, out.getvalue()[-2000:]
        if HAS_MLFLOW:
            import mlflow

            mlflow.set_tracking_uri(None)
    return {"run": run, "cwd": cwd, "stdout": out.getvalue()}


@needs_tb
def test_tensorboard_events_in_the_run_directory(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, logdir = tracked["run"], tracked["run"] / "tensorboard"
    assert list(logdir.glob("events.out.tfevents.*"))
    assert not (run / "checkpoints" / "runs").exists()  # Trainer's default place, not used
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    assert {"train/loss", "eval/loss", "eval/f1"} <= set(acc.Tags()["scalars"])
    logged = {e.step: e.value for e in acc.Scalars("train/loss")}
    assert logged.keys() == _losses(run).keys() == {1, 2, 3, 4}
    assert logged == pytest.approx(_losses(run), rel=1e-6)  # the same losses as metrics.jsonl
    assert f"tensorboard --logdir {logdir}" in tracked["stdout"]
    assert list(tracked["cwd"].iterdir()) == []


@needs_mlflow
def test_mlflow_run_in_a_local_store_in_the_run_directory(tracked):
    import mlflow

    run = tracked["run"]
    uri = f"sqlite:///{run.resolve()}/mlflow.db"
    assert (run / "mlflow.db").is_file()
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(tracking.EXPERIMENT)
    assert exp.artifact_location == (run / "mlartifacts").resolve().as_uri()
    (found,) = client.search_runs([exp.experiment_id])
    assert found.info.run_name == run.name and found.info.status == "FINISHED"
    history = {m.step: m.value for m in client.get_metric_history(found.info.run_id, "loss")}
    assert history == pytest.approx(_losses(run), rel=1e-6) and len(history) == 4
    assert {"eval_loss", "eval_f1", "train_loss"} <= set(found.data.metrics)
    assert found.data.params["learning_rate"] and found.data.params["run_name"] == run.name
    assert f"mlflow ui --backend-store-uri {uri}" in tracked["stdout"]
    assert list(tracked["cwd"].iterdir()) == []


@needs_mlflow
def test_pretrain_logs_to_the_users_mlflow_store(tmp_path, tiny_bert, clean_mlflow_env, capsys):
    """MLFLOW_TRACKING_URI (and MLFLOW_EXPERIMENT_NAME) from the environment win over the run's store."""
    import mlflow

    from test_pretrain import make_cfg
    from tunesmith.pretrain.pipeline import pretrain

    shared = f"sqlite:///{tmp_path}/shared.db"
    clean_mlflow_env.setenv("MLFLOW_TRACKING_URI", shared)
    clean_mlflow_env.setenv("MLFLOW_EXPERIMENT_NAME", "team-pretraining")
    run, _ = pretrain(make_cfg(tmp_path, str(tiny_bert), train={"max_steps": 3, "batch_size": 8, "logging_steps": 1,
                                                                  "report_to": "mlflow"}))
    assert not (run / "mlflow.db").exists()
    client = mlflow.MlflowClient(shared)
    (found,) = client.search_runs([client.get_experiment_by_name("team-pretraining").experiment_id])
    assert found.info.run_name == run.name
    history = {m.step: m.value for m in client.get_metric_history(found.info.run_id, "loss")}
    assert history == pytest.approx(_losses(run), rel=1e-6) and sorted(history) == [1, 2, 3]
    out = capsys.readouterr().out
    assert f"experiment 'team-pretraining' at {shared}" in out


@pytest.mark.slow
@pytest.mark.skipif(not (HAS_TB and HAS_MLFLOW), reason="needs tensorboard and mlflow (pip install 'tunesmith[tracking]')")
def test_two_processes_log_once(tmp_path, _tiny_bert_master):
    """Under accelerate launch every process runs Trainer; only the main one writes tracking logs."""
    import shutil

    from test_distributed import LAUNCHERS, cpu_env, free_port
    from test_pretrain import write_corpus

    model = Path(shutil.copytree(_tiny_bert_master, tmp_path / "model"))
    run = tmp_path / "run"
    env = {k: v for k, v in cpu_env().items() if not k.startswith(("MLFLOW_", "TENSORBOARD_"))}
    cmd = LAUNCHERS["accelerate"](free_port()) + [
        "pretrain", "--model", str(model), "--corpus", str(write_corpus(tmp_path / "corpus.txt")),
        "--corpus.eval_size=0.2", "--max-length", "32", "--max-steps", "4", "--batch-size", "4",
        "--objective.eval_examples=8", "--train.eval_every=2", "--train.logging_steps=1",
        "--train.report_to=tensorboard,mlflow", "--output", str(run)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("tracking: TensorBoard") == 1 and proc.stdout.count("tracking: MLflow") == 1
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{run}/mlflow.db")
    (found,) = client.search_runs([client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id])
    assert sorted(m.step for m in client.get_metric_history(found.info.run_id, "loss")) == [1, 2, 3, 4]
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
