"""Small NER data and a tiny BERT whose vocabulary knows some of the names (others split into
several sub-tokens), shared by the NER tests."""
from __future__ import annotations

import random
from pathlib import Path

PERSONS = ["alice", "bob", "carol smith", "dave jones", "zorblax quint"]
CITIES = ["paris", "london", "cupertino", "new york"]
ORGS = ["acme", "apple inc", "globex corp"]
KNOWN = ["alice", "bob", "carol", "smith", "paris", "london", "acme", "apple", "inc", "visited",
         "met", "joined", "in", "at", "the", "and", "yesterday", "with", "was", "founded", "by"]


def make_ner_bert(directory: Path, seed: int = 0) -> Path:
    """The shared tiny BERT with the entity words in its vocabulary."""
    from conftest import make_tiny_bert

    return make_tiny_bert(directory, seed, extra_words=KNOWN)


def _tagged(phrase: str, etype: str) -> list[tuple[str, str]]:
    words = phrase.split()
    return [(w, ("B-" if i == 0 else "I-") + etype) for i, w in enumerate(words)]


def ner_sentences(n: int, seed: int = 0) -> list[list[tuple[str, str]]]:
    """Template sentences: PERSON visited CITY / PERSON joined ORG in CITY ..."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p, c, o = rng.choice(PERSONS), rng.choice(CITIES), rng.choice(ORGS)
        if i % 3 == 0:
            s = _tagged(p, "PER") + [("visited", "O")] + _tagged(c, "LOC") + [("yesterday", "O")]
        elif i % 3 == 1:
            s = _tagged(p, "PER") + [("joined", "O")] + _tagged(o, "ORG") + [("in", "O")] + _tagged(c, "LOC")
        else:
            s = [("the", "O")] + _tagged(o, "ORG") + [("met", "O")] + _tagged(p, "PER") + [("at", "O")] + _tagged(c, "LOC")
        out.append(s)
    return out


def write_conll_file(path: Path, sentences, docstart: bool = True) -> Path:
    lines = ["-DOCSTART- -X- -X- O", ""] if docstart else []
    for s in sentences:
        lines += [f"{w} {t}" for w, t in s] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
