"""Turn a sectioned config dataclass into `--section.key` flags (help from the field docs),
plus short aliases; collect what the user gave as overrides."""
from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from .. import config as C
from ..errors import TunesmithError


def add_config_flags(p: argparse.ArgumentParser, cls: type, aliases: dict[str, str]) -> None:
    """One flag per field: --section.key VALUE (booleans also as a bare --section.key)."""
    p.add_argument("--config", metavar="FILE", help="YAML file with the sections below; flags override it")
    alias_of = {v: k for k, v in aliases.items()}
    for section, sec_cls in C.sections(cls).items():
        group = p.add_argument_group(f"{section} (--{section}.KEY=VALUE)")
        hints = typing.get_type_hints(sec_cls)
        for f in dataclasses.fields(sec_cls):
            key = f"{section}.{f.name}"
            names = [f"--{key}"] + ([f"--{alias_of[key]}"] if key in alias_of else [])
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            is_bool = C._base_type(hints[f.name]) is bool
            group.add_argument(*names, dest=key, default=argparse.SUPPRESS, metavar="" if is_bool else "V",
                               nargs="?" if is_bool else None, const="true" if is_bool else None,
                               help=f"{f.metadata.get('help', '')} [default: {default}]")


def overrides(args: argparse.Namespace, cls: type) -> dict[str, dict]:
    """The flags the user actually gave, plus any --section.key=value argparse did not know."""
    out: dict[str, dict] = {}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = value
    unknown = [e for e in args.extra if e.startswith("--")]
    if unknown:
        extra = C.parse_overrides(unknown)
        C.build(cls, {s: {} for s in C.sections(cls)} | {s: {k: None for k in kv} for s, kv in extra.items()},
                "command line")  # raises with the valid keys
    stray = [e for e in args.extra if not e.startswith("--")]
    if stray:
        raise TunesmithError(f"unexpected argument(s) {stray}; options look like --section.key=value")
    return out


def load_config(args, cls: type):
    """Config from --config, a resumed run's config.yaml, and the flags given."""
    ov = overrides(args, cls)
    path = args.config
    out_dir = ov.get("output", {}).get("dir")
    resume = str(ov.get("output", {}).get("resume", "false")).lower() in ("1", "true", "yes")
    if resume and out_dir and not path and (Path(out_dir) / "config.yaml").is_file():
        path = str(Path(out_dir) / "config.yaml")  # resume with the run's own settings
    return C.load(cls, path, ov)
