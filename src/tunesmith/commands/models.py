"""`tunesmith models`: the built-in models, what each is, and whether it is installed."""
from ..assets import MODELS


def register(sub) -> None:
    p = sub.add_parser("models", help="list built-in models and whether they are installed",
                       description="Built-in models ship inside PyPI packages (no download at run time). "
                                   "Any local model directory or hub id in the local cache works too.")
    p.set_defaults(func=run)


def run(args) -> int:
    for a in MODELS.values():
        path = a.path()
        state = f"installed: {path}" if path else f"NOT installed: {a.install_command}"
        print(f"{a.name:<10} {a.kind:<10} {a.description}\n{'':<21} {state}")
    return 0
