"""Finding the text and label columns by common names, overridable by the user."""
from __future__ import annotations

from ..errors import TunesmithError

TEXT_NAMES = ("text", "sentence", "review", "content", "body", "document", "message", "sms",
              "tweet", "comment", "utterance", "input", "question")
LABEL_NAMES = ("label", "labels", "sentiment", "class", "category", "target", "polarity",
               "spam", "y", "tag")


def pick_column(columns: list[str], wanted: str | None, names: tuple[str, ...], role: str,
                source: str, exclude: str | None = None) -> str:
    """The column for `role`: the user's choice, else the one common name that matches."""
    if wanted:
        if wanted not in columns:
            raise TunesmithError(f"{source}: no column '{wanted}' for the {role}; columns are {columns}")
        return wanted
    lower = {c.lower(): c for c in columns if c != exclude}
    found = [lower[n] for n in names if n in lower]
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
