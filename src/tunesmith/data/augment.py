"""Data augmentation for the training split only: EDA (synonym replacement from WordNet, random
insertion, swap, deletion), hooks for back-translation and paraphrasing with a model the user has.

Every operation takes an explicit `random.Random`, so an augmented set is a pure function of the
rows, the settings and the seed. Validation and test rows are never passed in.
"""
from __future__ import annotations

import os
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..errors import TunesmithError

Synonyms = Callable[[str], list[str]]

EDA_OPS = ("synonym", "insert", "swap", "delete")
MODEL_OPS = ("back-translation", "paraphrase")
KNOWN_OPS = EDA_OPS + MODEL_OPS + ("eda", "mixup")

# EDA's stop words (Wei & Zou 2019): never replaced by a synonym.
STOP_WORDS = frozenset("""i me my myself we our ours ourselves you your yours yourself yourselves he him his
himself she her hers herself it its itself they them their theirs themselves what which who whom this that
these those am is are was were be been being have has had having do does did doing a an the and but if or
because as until while of at by for with about against between into through during before after above
below to from up down in out on off over under again further then once here there when where why how all
any both each few more most other some such no nor not only own same so than too very s t can will just
don should now""".split())

# Where a WordNet 3.0 database (the `dict` folder: index.noun, data.noun, ...) is looked for:
# Debian's `wordnet-base` package, then nltk_data folders.
WORDNET_DIRS = ("/usr/share/wordnet", "/usr/share/nltk_data/corpora/wordnet",
                "/usr/local/share/nltk_data/corpora/wordnet", "~/nltk_data/corpora/wordnet")
POS = ("noun", "verb", "adj", "adv")


def find_wordnet(path: str | None = None) -> Path:
    """The WordNet dict folder: the given path, $TUNESMITH_WORDNET, or a standard location."""
    candidates = [path] if path else [os.environ.get("TUNESMITH_WORDNET")] + list(WORDNET_DIRS)
    for c in candidates:
        if c and (Path(c).expanduser() / "index.noun").is_file():
            return Path(c).expanduser()
    raise TunesmithError("synonym replacement needs a WordNet 3.0 database and none was found"
                         f"{' at ' + path if path else ''}: install Debian's `wordnet-base` "
                         "(apt-get install wordnet-base, as scripts/setup.sh does where it can) or point "
                         "--augment.wordnet=DIR (or $TUNESMITH_WORDNET) at a folder holding index.noun/data.noun")


class WordNetSynonyms:
    """Synonyms read straight from WordNet's index.* and data.* files (the wndb format).

    Example:
        >>> syn = WordNetSynonyms()          # doctest: +SKIP
        >>> "bright" in syn("brilliant")     # doctest: +SKIP
        True
    """

    def __init__(self, path: str | None = None):
        self.root = find_wordnet(path)
        self._index: dict[str, list[tuple[str, int]]] | None = None
        self.lookup = lru_cache(maxsize=50_000)(self._lookup)

    def _load_index(self) -> dict[str, list[tuple[str, int]]]:
        index: dict[str, list[tuple[str, int]]] = {}
        for pos in POS:
            with open(self.root / f"index.{pos}", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith(" "):  # licence header
                        continue
                    parts = line.split()
                    n = int(parts[2])
                    index.setdefault(parts[0], []).extend((pos, int(o)) for o in parts[-n:])
        return index

    def _lookup(self, word: str) -> tuple[str, ...]:
        if self._index is None:
            self._index = self._load_index()
        out: list[str] = []
        for pos, offset in self._index.get(word.lower(), []):
            with open(self.root / f"data.{pos}", "rb") as f:
                f.seek(offset)
                parts = f.readline().decode("utf-8", "replace").split()
            count = int(parts[3], 16)  # w_cnt is two hex digits
            for lemma in parts[4:4 + 2 * count:2]:
                lemma = re.sub(r"\([a-z]+\)$", "", lemma).replace("_", " ")  # adjective markers
                if lemma.lower() != word.lower() and lemma not in out:
                    out.append(lemma)
        return tuple(out)

    def __call__(self, word: str) -> list[str]:
        return list(self.lookup(word))


def table_synonyms(table: dict[str, list[str]]) -> Synonyms:
    """Synonyms from a plain dict (tests, or a user's own domain list)."""
    return lambda word: list(table.get(word.lower(), []))


def synonym_replacement(words: list[str], n: int, synonyms: Synonyms, rng: random.Random) -> list[str]:
    """Replace up to n distinct non-stop words that have synonyms by a random synonym."""
    out = list(words)
    candidates = [i for i, w in enumerate(words) if w.lower() not in STOP_WORDS and synonyms(w)]
    rng.shuffle(candidates)
    for i in candidates[:n]:
        out[i] = rng.choice(synonyms(words[i]))
    return out


def random_insertion(words: list[str], n: int, synonyms: Synonyms, rng: random.Random) -> list[str]:
    """n times: insert a synonym of a random word at a random position."""
    out = list(words)
    for _ in range(n):
        options = [w for w in out if synonyms(w)]
        if not options:
            break
        out.insert(rng.randint(0, len(out)), rng.choice(synonyms(rng.choice(options))))
    return out


def random_swap(words: list[str], n: int, rng: random.Random) -> list[str]:
    """n times: swap two random positions."""
    out = list(words)
    if len(out) < 2:
        return out
    for _ in range(n):
        i, j = rng.sample(range(len(out)), 2)
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: list[str], p: float, rng: random.Random) -> list[str]:
    """Drop each word with probability p; never returns an empty sentence."""
    if len(words) <= 1:
        return list(words)
    kept = [w for w in words if rng.random() >= p]
    return kept or [rng.choice(words)]


def eda(text: str, cfg, synonyms: Synonyms | None, rng: random.Random, ops: list[str]) -> str:
    """One augmented sentence: one operation drawn from `ops`, changing a share of the words
    (p_synonym, p_insert, p_swap of the words; p_delete per word)."""
    words = text.split()
    op = rng.choice(ops)
    if op == "delete":
        return " ".join(random_deletion(words, cfg.p_delete, rng))
    share = {"synonym": cfg.p_synonym, "insert": cfg.p_insert, "swap": cfg.p_swap}[op]
    n = max(1, int(share * len(words)))
    if op == "swap":
        return " ".join(random_swap(words, n, rng))
    fn = synonym_replacement if op == "synonym" else random_insertion
    return " ".join(fn(words, n, synonyms, rng))


def expand_ops(ops: list[str]) -> list[str]:
    out: list[str] = []
    for op in ops:
        if op not in KNOWN_OPS:
            raise TunesmithError(f"unknown augmentation '{op}'; choose from {', '.join(KNOWN_OPS)}")
        out.extend(EDA_OPS if op == "eda" else [op])
    return out


def augment_rows(rows: list[dict], cfg, seed: int, synonyms: Synonyms | None = None) -> list[dict]:
    """The rows plus `cfg.copies` EDA variants of each (marked `_augmented`), deterministic in seed.

    Example:
        >>> from tunesmith.config import AugmentConfig
        >>> cfg = AugmentConfig(ops=["swap"], copies=1)
        >>> len(augment_rows([{"text": "a b c", "label": "x"}], cfg, seed=0))
        2
    """
    ops = [o for o in expand_ops(cfg.ops) if o in EDA_OPS]
    if not ops or cfg.copies < 1:
        return list(rows)
    if synonyms is None and {"synonym", "insert"} & set(ops):
        synonyms = WordNetSynonyms(cfg.wordnet)
    rng = random.Random(seed)
    out = list(rows)
    for row in rows:
        seen = {row["text"]}
        for _ in range(cfg.copies):
            text = eda(row["text"], cfg, synonyms, rng, ops)
            if text not in seen:  # an unchanged copy only reweights the example
                seen.add(text)
                out.append({**row, "text": text, "_augmented": True})
    return out


def model_variants(rows: list[dict], cfg) -> list[dict]:
    """Back-translation / paraphrase variants from models the user names (none is bundled)."""
    from .augment_models import back_translate, paraphrase

    ops = expand_ops(cfg.ops)
    out = []
    texts = [r["text"] for r in rows]
    if "paraphrase" in ops:
        if not cfg.paraphrase_model:
            raise TunesmithError("augmentation 'paraphrase' needs a model: --augment.paraphrase_model=PATH "
                                 "(any local seq2seq or causal LM directory; tunesmith bundles none)")
        out += [{**r, "text": t, "_augmented": True} for r, t in zip(rows, paraphrase(texts, cfg.paraphrase_model))]
    if "back-translation" in ops:
        if not cfg.translation_models or len(cfg.translation_models) != 2:
            raise TunesmithError("augmentation 'back-translation' needs two models: "
                                 "--augment.translation_models=TO_PATH,BACK_PATH (e.g. English->German and "
                                 "German->English seq2seq directories; tunesmith bundles none)")
        back = back_translate(texts, *cfg.translation_models)
        out += [{**r, "text": t, "_augmented": True} for r, t in zip(rows, back)]
    return [r for r in out if r["text"].strip()]


def augmented_train_rows(data, cfg, seed: int) -> list[dict]:
    """The training rows to train on: data.splits['train'] plus its augmented variants.

    Reads only the training split; validation and test stay as they are.
    """
    rows = data.splits["train"]
    if not cfg.ops:
        return list(rows)
    out = augment_rows(rows, cfg, seed)
    if set(expand_ops(cfg.ops)) & set(MODEL_OPS):
        out += model_variants(rows, cfg)
    added = len(out) - len(rows)
    print(f"augmentation ({', '.join(cfg.ops)}): {len(rows):,} training examples + {added:,} variants", flush=True)
    return out
