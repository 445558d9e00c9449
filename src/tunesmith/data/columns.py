"""Finding the text and label columns by common names, overridable by the user."""
from __future__ import annotations

from pathlib import Path

from ..errors import TunesmithError

TEXT_NAMES = ("text", "sentence", "review", "content", "body", "document", "message", "sms",
              "tweet", "comment", "utterance", "input", "question")
LABEL_NAMES = ("label", "labels", "sentiment", "class", "category", "target", "polarity",
               "spam", "y", "tag")
# Ratings are labels too, but a file may hold both (label + a model's score): these count only
# when none of LABEL_NAMES is there, so such a file stays unambiguous.
LABEL_FALLBACK_NAMES = ("stars", "rating", "ratings", "score", "grade")


def pick_column(columns: list[str], wanted: str | None, names: tuple[str, ...], role: str,
                source: str, exclude: str | None = None, fallback: tuple[str, ...] = ()) -> str:
    """The column for `role`: the user's choice, else the one common name that matches
    (`names` first; `fallback` names only when none of `names` is there)."""
    if wanted:
        if wanted not in columns:
            raise TunesmithError(f"{source}: no column '{wanted}' for the {role}; columns are {columns}")
        return wanted
    lower = {c.lower(): c for c in columns if c != exclude}
    found = [lower[n] for n in names if n in lower] or [lower[n] for n in fallback if n in lower]
    if not found:
        raise TunesmithError(
            f"{source}: cannot tell which column holds the {role} (columns: {columns}); "
            f"name it with --{role}-column (or data.{role}_column in the config)")
    if len(found) > 1:
        raise TunesmithError(
            f"{source}: the {role} column is ambiguous: {found} all look like one; "
            f"choose with --{role}-column (or data.{role}_column in the config)")
    return found[0]


def columns_of(records: list[dict]) -> list[str]:
    cols: dict[str, None] = {}
    for r in records[:1000]:
        for k in r:
            if k != "_line":
                cols[k] = None
    return list(cols)


def headerless_error(source: str, records: list[dict]) -> TunesmithError | None:
    """For a CSV/TSV whose first line looks like data rather than column names, the error that
    says so and how to read the file (a header line); None when the header looks like one.

    Example: a.tsv starting `great film<TAB>pos` then `dull<TAB>neg`, `fun<TAB>pos` gives
    "a.tsv: the first line ('great film', 'pos') looks like data ... `sed -i '1i text\\tlabel' a.tsv`".
    """
    suffix = Path(source).suffix.lower()
    cols = columns_of(records)
    if suffix not in (".csv", ".tsv") or not cols or not _looks_like_data(cols, records):
        return None
    sep = "\t" if suffix == ".tsv" else ","
    names = _guess_names(cols, records)
    shown = ", ".join(repr(c) for c in cols[:4]) + (", ..." if len(cols) > 4 else "")
    line = sep.join(names).replace("\t", "\\t")
    return TunesmithError(
        f"{source}: the first line ({shown}) looks like data, not column names: the file seems to have no "
        f"header. The first line of a {suffix[1:].upper()} file must name the columns; add one, e.g. "
        f"`sed -i '1i {line}' {source}` (then the text and label columns are found by name)")


def _looks_like_data(cols: list[str], records: list[dict]) -> bool:
    """A number, a sentence of 4+ words, or a value the same column holds again further down."""
    def number(s: str) -> bool:
        try:
            float(s)
            return True
        except ValueError:
            return False

    values = {c: {r.get(c) for r in records[:1000]} for c in cols}
    return any(number(c) or len(c.split()) >= 4 or c in values[c] for c in cols if c)


def _guess_names(cols: list[str], records: list[dict]) -> list[str]:
    """'text' for the column with the longest values, 'label' for the one with fewest distinct."""
    rows = records[:1000]
    mean_len = {c: sum(len(str(r.get(c, ""))) for r in rows) / max(len(rows), 1) for c in cols}
    text = max(cols, key=lambda c: mean_len[c])
    rest = [c for c in cols if c != text]
    label = min(rest, key=lambda c: len({r.get(c) for r in rows}), default=None)
    return ["text" if c == text else "label" if c == label else f"column{i + 1}" for i, c in enumerate(cols)]
