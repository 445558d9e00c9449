"""Experiment tracking: `train.report_to = none | tensorboard | mlflow` (comma-separated).

The logging itself is Trainer's: `TrainingArguments(report_to=[...])` makes it add its own
`TensorBoardCallback` / `MLflowCallback`, and both log from the main process only (they check
`state.is_world_process_zero`), so `accelerate launch` gives one set of logs, not one per process.
What this module adds around them:

- names are checked when the config is read (unknown ones list the valid ones) and so is the
  package, so a missing `tensorboard` / `mlflow` stops the run before any data or model is loaded,
  with the pip command that fixes it (they are the optional extra `tunesmith[tracking]`);
- the logs land in the run directory: TensorBoard in `<run>/tensorboard` (Trainer's default is a
  dated folder under the checkpoints), MLflow in a SQLite store `<run>/mlflow.db` (MLflow 3 made
  SQLite its default and deprecated the `./mlruns` file store) with artifacts in
  `<run>/mlartifacts`, experiment `tunesmith`, run name = the run directory's name. The user's
  environment wins: `TENSORBOARD_LOGGING_DIR`, `MLFLOW_TRACKING_URI` (e.g. a server),
  `MLFLOW_EXPERIMENT_NAME`;
- the run log says where the logs went and the command that shows them.
"""
from __future__ import annotations

import importlib.util
import os
import shlex
from pathlib import Path
from typing import Any, Callable

from .errors import TunesmithError

# tracker name -> importable modules that provide it (any one is enough; Trainer's TensorBoard
# callback takes torch.utils.tensorboard, which needs `tensorboard`, or else tensorboardX)
TRACKERS: dict[str, tuple[str, ...]] = {"tensorboard": ("tensorboard", "tensorboardX"), "mlflow": ("mlflow",)}
PIP_NAME = {"tensorboard": "tensorboard", "mlflow": "mlflow"}
EXPERIMENT = "tunesmith"
# mlflow.set_tracking_uri() also writes MLFLOW_TRACKING_URI into os.environ; a URI we put there
# must not pass for the user's own choice in the next run of the same process (tests, compare).
_OUR_URIS: set[str] = set()


def parse(value: str | list[str] | None) -> list[str]:
    """The trackers asked for, in order, without repeats; [] for none.

    Example:
        >>> parse("tensorboard, mlflow"), parse(None), parse("none")
        (['tensorboard', 'mlflow'], [], [])
    """
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in (str(i).strip().lower() for i in items):
        if item and item not in names:
            names.append(item)
    valid = ", ".join(["none", *TRACKERS])
    if "none" in names:
        if len(names) > 1:
            raise ValueError(f"report_to: 'none' cannot be combined with {[n for n in names if n != 'none']}; "
                             f"valid: {valid} (comma-separated)")
        return []
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ValueError(f"report_to: unknown tracker(s) {unknown}; valid: {valid} (comma-separated)")
    return names


def missing(names: list[str]) -> list[str]:
    """The trackers among `names` whose package is not installed (found without importing it)."""
    return [n for n in names if not any(importlib.util.find_spec(m) is not None for m in TRACKERS[n])]


def require(names: list[str]) -> None:
    """Stop with the pip command when a tracker's package is absent (before any loading)."""
    absent = missing(names)
    if absent:
        single = " ".join(PIP_NAME[n] for n in absent)
        raise TunesmithError(f"train.report_to={','.join(names)}: {' and '.join(absent)} "
                             f"{'is' if len(absent) == 1 else 'are'} not installed; install the tracking extra "
                             f"with `pip install 'tunesmith[tracking]'` (or just `pip install {single}`), "
                             "or drop it with --train.report_to=none")


def validate(value: str | list[str] | None) -> list[str]:
    """parse() then require(): what TrainConfig runs when it is made."""
    names = parse(value)
    require(names)
    return names


def trainer_kwargs(value: str | list[str] | None, run: Path) -> dict[str, Any]:
    """The TrainingArguments keys for tracking: the integrations and the run's name in them."""
    names = parse(value)
    return {"report_to": names or "none", "run_name": Path(run).name}


def tensorboard_dir(run: Path) -> Path:
    env = os.environ.get("TENSORBOARD_LOGGING_DIR")
    return Path(os.path.expanduser(env)) if env else Path(run) / "tensorboard"


def user_mlflow_uri() -> str | None:
    """MLFLOW_TRACKING_URI when the user set it (not when an earlier run of ours did)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return uri if uri and uri not in _OUR_URIS else None


def mlflow_uri(run: Path) -> str:
    """The user's tracking URI, else a SQLite store in the run directory (absolute path)."""
    return user_mlflow_uri() or "sqlite:///" + str((Path(run) / "mlflow.db").resolve())


def attach(trainer, say: Callable[[str], None] = lambda m: print(m, flush=True)) -> list[str]:
    """Point Trainer's tracking callbacks at the run directory and say where the logs go.

    Called once the Trainer exists (its callbacks are made in __init__) and before train():
    Trainer's callbacks run before ours, so MLflow must be set up by then. The run directory is
    the parent of args.output_dir (training_args puts checkpoints in <run>/checkpoints)."""
    # not parse(): TrainingArguments makes it a list and may add its own (kubeflow, when installed)
    names = [n for n in (trainer.args.report_to or []) if n in TRACKERS]
    run = Path(trainer.args.output_dir).parent
    lines = []
    if "tensorboard" in names:
        lines.append(_attach_tensorboard(trainer, run))
    if "mlflow" in names and trainer.is_world_process_zero():
        lines.append(_attach_mlflow(trainer.args.run_name or run.name, run))
    if trainer.is_world_process_zero():
        for line in lines:
            say(line)
    return lines


def _attach_tensorboard(trainer, run: Path) -> str:
    from transformers.integrations.integration_utils import TensorBoardCallback

    logdir = tensorboard_dir(run)
    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, TensorBoardCallback) and cb.tb_writer is None:
            cb.logging_dir = str(logdir)  # the env var, if set, is already there: same value
    return f"tracking: TensorBoard logs in {logdir} (view: tensorboard --logdir {shlex.quote(str(logdir))})"


def _attach_mlflow(run_name: str, run: Path) -> str:
    import mlflow

    uri = mlflow_uri(run)
    ours = user_mlflow_uri() is None
    try:
        mlflow.set_tracking_uri(uri)
        if ours:
            _OUR_URIS.add(uri)
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        if not os.environ.get("MLFLOW_EXPERIMENT_NAME"):  # else MLflowCallback sets it itself
            client = mlflow.MlflowClient(uri)
            found = client.get_experiment_by_name(EXPERIMENT)
            # a local store keeps its artifacts next to it; a SQLite store's default is ./mlruns in the cwd
            art = (Path(run) / "mlartifacts").resolve().as_uri() if ours else None
            eid = found.experiment_id if found else client.create_experiment(EXPERIMENT, artifact_location=art)
            mlflow.set_experiment(experiment_id=eid)
    except Exception as e:  # an unreachable server or a bad URI: say which, before training starts
        raise TunesmithError(f"train.report_to=mlflow: cannot use the MLflow tracking store {uri}: {e} "
                             "(check MLFLOW_TRACKING_URI, or unset it for a store in the run directory)") from None
    view = (f"mlflow ui --backend-store-uri {shlex.quote(uri)}" if uri.startswith(("sqlite:", "file:", "/"))
            else f"open {uri}")
    return f"tracking: MLflow run '{run_name}' in experiment '{experiment}' at {uri} (view: {view})"
