"""The Choose page: `advise` for this data and machine, and the fine-tuning config as a form whose
equivalent CLI command and YAML are shown (the command is exactly what the Train page runs)."""
from __future__ import annotations

import dataclasses
import shlex
from typing import Any

import yaml

from .. import config as C
from ..config import FinetuneConfig

# The fields the form shows (section.key); every other field keeps its default or the YAML's value.
FORM_FIELDS = ["model.name", "model.task", "model.max_length", "data.dataset", "data.text_column",
               "data.label_column", "data.max_train", "data.max_eval", "method.name", "train.learning_rate",
               "train.epochs", "train.max_steps", "train.time_budget", "train.batch_size", "train.precision",
               "train.eval_every", "train.logging_steps", "train.early_stopping_patience", "augment.ops"]


def form_schema() -> list[dict]:
    """Per form field: key, default, help (the dataclass field's own help text)."""
    from ..adapt import METHODS

    out = []
    defaults = FinetuneConfig()
    for key in FORM_FIELDS:
        section, name = key.split(".")
        sec_cls = C.sections(FinetuneConfig)[section]
        f = next(f for f in dataclasses.fields(sec_cls) if f.name == name)
        default = getattr(getattr(defaults, section), name)
        item = {"key": key, "default": _plain(default), "help": f.metadata.get("help", "")}
        if key == "method.name":
            item["choices"] = list(METHODS)
        elif key == "train.precision":
            item["choices"] = ["auto", "fp32", "bf16", "fp16"]
        elif key == "model.task":
            from ..tasks.registry import finetunable

            item["choices"] = list(finetunable())  # the task records
        out.append(item)
    return out


def _plain(v: Any) -> Any:
    return ",".join(map(str, v)) if isinstance(v, list) else v


def nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{'train.epochs': 2} -> {'train': {'epochs': 2}}; blank values mean 'the default'."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        section, sep, name = key.partition(".")
        if not sep:
            from ..errors import TunesmithError

            raise TunesmithError(f"form field '{key}' must look like section.key")
        out.setdefault(section, {})[name] = value.strip() if isinstance(value, str) else value
    return out


def build_config(flat: dict[str, Any]) -> FinetuneConfig:
    """The typed config of the form values: the CLI's own checks and messages (config.build)."""
    values = {s: {} for s in C.sections(FinetuneConfig)} | nest(flat)
    return C.build(FinetuneConfig, values, "the form")


def changed(cfg: FinetuneConfig) -> dict[str, Any]:
    """section.key -> value for the fields that differ from the defaults (what the command spells)."""
    out = {}
    defaults = FinetuneConfig()
    for section in C.sections(FinetuneConfig):
        for f in dataclasses.fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            if value != getattr(getattr(defaults, section), f.name):
                out[f"{section}.{f.name}"] = value
    return out


def _flag_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, list):
        return ",".join(map(str, v))
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # --train.epochs=2, not 2.0
    return repr(v) if isinstance(v, float) else str(v)


def cli_args(cfg: FinetuneConfig, command: str = "finetune", extra: list[str] = ()) -> list[str]:
    """argv after `tunesmith`: the command, its extra arguments, one --section.key=value per change."""
    return [command, *extra] + [f"--{k}={_flag_value(v)}" for k, v in changed(cfg).items()]


def command_text(argv: list[str]) -> str:
    return "tunesmith " + " ".join(shlex.quote(a) for a in argv)


def config_yaml(cfg: FinetuneConfig) -> str:
    """The whole resolved config, as `tunesmith finetune --config FILE` reads it."""
    return yaml.safe_dump(C.to_dict(cfg), sort_keys=False)


def describe(flat: dict[str, Any]) -> dict:
    """Command, YAML and argv of the form, or the config's own error (raised as TunesmithError)."""
    cfg = build_config(flat)
    argv = cli_args(cfg)
    return {"argv": argv, "command": command_text(argv), "yaml": config_yaml(cfg),
            "yaml_command": "tunesmith finetune --config run.yaml"}


def advise(flat: dict[str, Any]) -> dict:
    """`tunesmith advise`'s recommendation for the form's data and model on this machine (formulas
    only, no probe: milliseconds; the measured probe runs as a job)."""
    from ..data.labelled import load_labelled
    from ..strategy.advise import Situation, command_line, recommend
    from ..strategy.configs import load_model_config
    from ..strategy.formulas import human_bytes
    from ..strategy.probe import machine_memory_bytes

    cfg = build_config(flat)
    data = load_labelled(cfg.data)
    sit = Situation(samples=len(data.splits["train"]), memory_bytes=machine_memory_bytes(),
                    labels=len(data.labels), batch=cfg.train.batch_size, seq=cfg.model.max_length)
    a = recommend(load_model_config(cfg.model.name), sit)
    rows = [label for label, _ in next(iter(a.memory.values())).rows()]
    return {
        "method": a.method, "settings": a.settings, "reasons": a.reasons, "changes": a.changes,
        "command": command_line(a.settings, cfg.model.name),
        "situation": {"samples": sit.samples, "labels": sit.labels, "memory": human_bytes(sit.memory_bytes),
                      "batch": sit.batch, "seq": sit.seq},
        "methods": list(a.memory),
        "memory": [{"row": label, "values": [human_bytes(e.rows()[i][1]) for e in a.memory.values()]}
                   for i, label in enumerate(rows)],
        "trainable": [c.trainable for c in a.counts.values()],
        "artifact": [human_bytes(4 * c.artifact_params()) for c in a.counts.values()],
    }


def advise_probe_args(flat: dict[str, Any]) -> list[str]:
    """`tunesmith advise` with the measured probe, for the form's model and data (run as a job)."""
    cfg = build_config(flat)
    return ["advise", cfg.model.name, "--data", cfg.data.dataset, "--batch-size", str(cfg.train.batch_size),
            "--max-length", str(cfg.model.max_length)]


def compare_args(flat: dict[str, Any], methods: list[str], out: str) -> list[str]:
    """`tunesmith compare` over `methods` with the form's other settings (method.name is compare's)."""
    cfg = build_config(flat)
    cfg.method.name = FinetuneConfig().method.name
    cfg.output.dir = None
    return cli_args(cfg, "compare", ["--methods", ",".join(methods), "--out", out])
