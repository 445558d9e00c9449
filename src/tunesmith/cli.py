"""The `tunesmith` command: one table of subcommands, each a module with `register(subparsers)`.

To add a command, write `commands/<name>.py` with `register(sub)` that adds a parser whose
`func` takes the parsed args, and list the module in COMMANDS.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import TunesmithError
from .offline import quiet_libraries, set_offline

COMMANDS = [
    "demo", "finetune", "distill", "evaluate", "predict", "info", "models", "datasets", "methods",
    "bench", "serve", "pretrain", "fill-mask", "params", "compare", "advise", "generate", "ui",
]

EPILOG = """examples:
  tunesmith demo                                    # fine-tune minilm on movie-reviews, ~5 min on 2 cores
  tunesmith models                                  # built-in models and whether they are installed
  tunesmith info minilm --text "Transfer learning is fun"
  tunesmith finetune --model minilm --data movie-reviews --method lora --epochs 2
  tunesmith finetune --config run.yaml --train.learning_rate=5e-5
  tunesmith distill --teacher runs/MPNET-RUN --student minilm --data movie-reviews
  tunesmith evaluate runs/RUN --data test.csv
  tunesmith predict runs/RUN "a gorgeous, witty film" "dull and lifeless"
  tunesmith ui                                      # the web app: http://127.0.0.1:7860
"""


class Parser(argparse.ArgumentParser):
    """No prefix matching: `--train.epoch=1` must be an unknown key, not `--train.epochs`.
    Subparsers inherit the class, so this holds for every command."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tunesmith", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Transfer learning with transformer language models, offline: pre-train, fine-tune "
                    "(full, LoRA, head-only), evaluate, predict. Every command has --help.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"tunesmith.commands.{name.replace('-', '_')}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    set_offline()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 0
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        quiet_libraries()
        return args.func(args) or 0
    except TunesmithError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; a fine-tuning run can continue with --output.resume=true", file=sys.stderr)
        return 130
    except Exception as e:  # the last line of defence: one line, and how to see more
        if os.environ.get("TUNESMITH_DEBUG"):
            raise
        print(f"error: unexpected {type(e).__name__}: {e}\n(set TUNESMITH_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
