"""The built-in labelled data sets, read from the packages that carry them."""
from __future__ import annotations

import csv
import io

from ..assets import DATASETS
from ..errors import TunesmithError


def _hutto(name: str) -> tuple[list[dict], dict]:
    """One of Hutto & Gilbert's (ICWSM 2014) rated sentence sets (`id TAB rating TAB text`, ratings
    averaged over people on -4..+4): rating > 0 positive, < 0 negative; zeros dropped and counted."""
    path = DATASETS[name].require()
    text = path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
    rows, zeros = [], 0
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    next(reader)  # header: id, sentiment, text
    for n, row in enumerate(reader, start=2):
        if len(row) < 3 or not row[2].strip():
            continue
        rating = float(row[1])
        if rating == 0:
            zeros += 1
            continue
        rows.append({"text": row[2].strip(), "label": "positive" if rating > 0 else "negative", "_line": n})
    return rows, {"source": str(path), "dropped_neutral": zeros,
                  "rule": "rating > 0 -> positive, rating < 0 -> negative, 0 dropped"}


def movie_reviews() -> tuple[list[dict], dict]:
    """MR sentences: rating > 0 positive, < 0 negative; zeros dropped and counted."""
    return _hutto("movie-reviews")


def sms_spam() -> tuple[list[dict], dict]:
    path = DATASETS["sms-spam"].require()
    text = path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
    reader = csv.DictReader(io.StringIO(text))
    rows = [{"text": r["text"].strip(), "label": "spam" if r["spam"].strip() == "1" else "ham",
             "_line": reader.line_num} for r in reader if r.get("text", "").strip()]
    return rows, {"source": str(path)}


# The other three sets of the same study: more rated sentiment sentences (other domains), e.g. the
# unlabelled texts of distillation (`tunesmith distill --unlabelled amazon-reviews,...`).
LABELLED = {"movie-reviews": movie_reviews, "sms-spam": sms_spam,
            **{n: (lambda n=n: _hutto(n)) for n in ("amazon-reviews", "nyt-editorials", "tweets")}}


def load_builtin(name: str) -> tuple[list[dict], dict]:
    try:
        return LABELLED[name]()
    except KeyError:
        raise TunesmithError(f"unknown built-in data set '{name}'; built-ins: {sorted(LABELLED)}") from None
