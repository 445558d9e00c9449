"""`tunesmith methods`: the adaptation methods tunesmith knows."""
from ..adapt.methods import DESCRIPTIONS, METHODS


def register(sub) -> None:
    p = sub.add_parser("methods", help="list adaptation methods (full, lora, head, ...)",
                       description="Adaptation methods: each one decides which parameters train. Choose one "
                                   "with `tunesmith finetune --method NAME`; `tunesmith params` counts them "
                                   "exactly and `tunesmith compare` measures them side by side.")
    p.set_defaults(func=run)


def run(args) -> int:
    for name in METHODS:
        print(f"{name:<8} {DESCRIPTIONS.get(name, '')}")
    return 0
