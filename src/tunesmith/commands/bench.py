"""`tunesmith bench NAME`: speed benchmarks that run our path and the baseline side by side."""
from __future__ import annotations

import argparse
import importlib

from ..bench import BENCHES


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: our path vs the baseline, same process, ratio printed",
                       description=__doc__)
    bsub = p.add_subparsers(dest="bench", metavar="NAME")
    for name, desc in BENCHES.items():
        mod = importlib.import_module(f"tunesmith.bench.{name}")
        bp = bsub.add_parser(name, help=desc, description=desc,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(bp)
        bp.set_defaults(func=mod.run)
    p.set_defaults(func=lambda args: p.print_help() or 0)
