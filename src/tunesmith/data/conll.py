"""NER data: CoNLL files, JSONL with tokens + tags, JSONL with text + character-span entities.

Every reader returns examples `{"tokens": [...], "tags": [...], "_line": n, "_lines": [...]}`
(`_lines` is the source line of each token, so every later error can name it). Span-JSONL
examples also keep `text` and per-token character `offsets`.

Tag schemes: IOB1, IOB2 (= BIO) and BILOU (IOBES is read as BILOU: E = L, S = U). Every scheme
is validated, then normalised to IOB2 for training, which is what seqeval and the span decoder read.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import TunesmithError
from .readers import describe_value, read_text

SCHEMES = ("auto", "iob1", "iob2", "bio", "bilou", "iobes")
PREFIXES = {"iob1": "BI", "iob2": "BI", "bilou": "BILU"}
_ALIAS = {"bio": "iob2", "iobes": "bilou"}
_TOKEN_RE = re.compile(r"\w+(?:[-'’.]\w+)*|[^\w\s]", re.UNICODE)


def split_tag(tag: str) -> tuple[str, str | None]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', None); IOBES E-/S- map to BILOU L-/U-."""
    if tag == "O":
        return "O", None
    prefix, sep, etype = tag.partition("-")
    if not sep or not etype or len(prefix) != 1:
        return "?", None
    return {"E": "L", "S": "U"}.get(prefix, prefix), etype


# ----------------------------------------------------------------------------- readers

def read_conll(path: str | Path) -> list[dict]:
    """CoNLL: one token per line, token first and tag last (whitespace-separated), a blank line
    between sentences, `-DOCSTART-` lines skipped.

    Example:
        >>> read_conll("train.conll")[0]["tags"]
        ['B-ORG', 'I-ORG', 'O']
    """
    path = Path(path)
    examples, tokens, tags, lines = [], [], [], []

    def flush():
        if tokens:
            examples.append({"tokens": list(tokens), "tags": list(tags), "_line": lines[0], "_lines": list(lines)})
        tokens.clear(), tags.clear(), lines.clear()

    for n, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line:
            flush()
            continue
        parts = line.split()
        if parts[0] == "-DOCSTART-":
            flush()
            continue
        if len(parts) < 2:
            raise TunesmithError(f"{path}, line {n}: expected a token and a tag separated by whitespace, "
                                 f"got {raw!r}; CoNLL files hold one 'TOKEN TAG' per line and a blank "
                                 "line between sentences")
        tokens.append(parts[0]), tags.append(parts[-1]), lines.append(n)
    flush()
    if not examples:
        raise TunesmithError(f"{path}: no sentences found (expected 'TOKEN TAG' lines)")
    return examples


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    out = []
    # split on "\n" only: str.splitlines() also breaks at U+0085/U+2028, legal inside JSON strings
    for n, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise TunesmithError(f"{path}, line {n}: not valid JSON ({e.msg})") from None
        except RecursionError:
            raise TunesmithError(f"{path}, line {n}: not valid JSON (nested too deeply to read)") from None
        except ValueError as e:  # an integer of more than 4,300 digits
            raise TunesmithError(f"{path}, line {n}: not valid JSON ({str(e).split(';')[0]})") from None
        if not isinstance(rec, dict):
            raise TunesmithError(f"{path}, line {n}: each line must be a JSON object")
        out.append((n, rec))
    if not out:
        raise TunesmithError(f"{path}: no records")
    return out


def tokens_example(rec: dict, path: Path, n: int) -> dict:
    """A {tokens, tags} record (also accepts `words` / `ner_tags`) -> example."""
    tokens = rec.get("tokens", rec.get("words"))
    tags = rec.get("tags", rec.get("ner_tags", rec.get("labels")))
    if not isinstance(tokens, list) or not isinstance(tags, list):
        raise TunesmithError(f"{path}, line {n}: needs lists 'tokens' and 'tags' (or 'text' + 'entities')")
    if not tokens:
        raise TunesmithError(f"{path}, line {n}: empty sentence (no tokens)")
    if len(tokens) != len(tags):
        raise TunesmithError(f"{path}, line {n}: {len(tokens)} tokens but {len(tags)} tags")
    _strings(tokens, "tokens", path, n)
    _strings(tags, "tags", path, n)
    if any(not t.strip() or any(c.isspace() for c in t) for t in tokens):
        raise TunesmithError(f"{path}, line {n}: tokens must be non-empty and hold no whitespace")
    return {"tokens": list(tokens), "tags": list(tags), "_line": n, "_lines": [n] * len(tokens)}


def _strings(values: list, field: str, path: Path, n: int) -> None:
    """Tokens and tags are strings: 1999 or 3 would otherwise become '1999' / '3' silently, and
    integer tags (a hub data set's ner_tags ids) have no names to train on."""
    bad = next(((i, v) for i, v in enumerate(values) if not isinstance(v, str)), None)
    if bad is not None:
        hint = "; give tag names such as B-PER, not their ids" if field == "tags" and isinstance(bad[1], int) else ""
        raise TunesmithError(f"{path}, line {n}: {field}[{bad[0]}] is {describe_value(bad[1])}, not a string{hint}")


def _entity(ent, path: Path, n: int) -> tuple[int, int, str]:
    if isinstance(ent, dict):
        start, end = ent.get("start"), ent.get("end")
        label = ent.get("label", ent.get("type", ent.get("entity")))
    elif isinstance(ent, (list, tuple)) and len(ent) == 3:
        start, end, label = ent
    else:
        raise TunesmithError(f"{path}, line {n}: entity {ent!r} must be {{start, end, label}} or [start, end, label]")
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or \
            not isinstance(end, int) or not isinstance(label, str) or not label.strip():
        raise TunesmithError(f"{path}, line {n}: entity {ent!r} needs integer start/end and a label string")
    return start, end, label


def spans_example(rec: dict, path: Path, n: int) -> dict:
    """A {text, entities: [{start, end, label}]} record -> tokens + IOB2 tags (+ text and offsets).

    Tokens are words and punctuation, also split at every entity boundary, so spans that end
    inside a word still map exactly.
    """
    text = rec.get("text")
    if not isinstance(text, str) or not text.strip():
        raise TunesmithError(f"{path}, line {n}: empty sentence ('text' is missing or blank)")
    ents = sorted((_entity(e, path, n) for e in rec.get("entities") or []), key=lambda e: e[:2])
    for i, (s, e, label) in enumerate(ents):
        if not 0 <= s < e <= len(text):
            raise TunesmithError(f"{path}, line {n}: entity [{s}, {e}) '{label}' lies outside the text "
                                 f"(length {len(text)}) or is empty")
        if i and s < ents[i - 1][1]:
            p = ents[i - 1]
            raise TunesmithError(f"{path}, line {n}: entities [{p[0]}, {p[1]}) '{p[2]}' and [{s}, {e}) "
                                 f"'{label}' overlap; nested entities are not supported")
    cuts = sorted({0, len(text), *(x for s, e, _ in ents for x in (s, e))})
    offsets = [(a + m.start(), a + m.end()) for a, b in zip(cuts, cuts[1:])
               for m in _TOKEN_RE.finditer(text[a:b])]
    tags = ["O"] * len(offsets)
    for s, e, label in ents:
        inside = [i for i, (a, b) in enumerate(offsets) if a >= s and b <= e]
        if not inside:
            raise TunesmithError(f"{path}, line {n}: entity [{s}, {e}) '{label}' covers only whitespace")
        for k, i in enumerate(inside):
            tags[i] = ("B-" if k == 0 else "I-") + label
    return {"tokens": [text[a:b] for a, b in offsets], "tags": tags, "text": text,
            "offsets": offsets, "_line": n, "_lines": [n] * len(offsets), "_scheme": "iob2"}


def read_ner_jsonl(path: str | Path) -> list[dict]:
    """JSONL with `tokens` + `tags` per line, or `text` + character-span `entities` per line."""
    path = Path(path)
    out = []
    for n, rec in _jsonl(path):
        out.append(spans_example(rec, path, n) if "text" in rec else tokens_example(rec, path, n))
    return out


def read_ner_file(path: str | Path) -> list[dict]:
    """Any of the three NER formats, chosen by extension (.jsonl/.json: JSONL; else CoNLL)."""
    path = Path(path)
    if not path.exists():
        raise TunesmithError(f"{path}: file not found")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return read_ner_jsonl(path)
    return read_conll(path)


# ----------------------------------------------------------------------------- schemes

def detect_scheme(examples: list[dict]) -> str:
    """'bilou' when L-/U-/E-/S- tags occur; 'iob1' when entities start with I- and B- only
    separates touching entities of one type; else 'iob2'."""
    prefixes = {split_tag(t)[0] for ex in examples for t in ex["tags"]}
    if prefixes & {"L", "U"}:
        return "bilou"
    i_starts = b_after_same = b_other = 0
    for ex in examples:
        prev = ("O", None)
        for tag in ex["tags"]:
            p, t = split_tag(tag)
            if p == "I" and (prev[0] == "O" or prev[1] != t):
                i_starts += 1
            if p == "B":
                if prev[0] in "BI" and prev[1] == t:
                    b_after_same += 1
                else:
                    b_other += 1
            prev = (p, t)
    return "iob1" if i_starts and not b_other else "iob2"


def _problem(path, ex: dict, i: int, msg: str) -> str:
    return f"{path}, line {ex['_lines'][i]}: {msg}"


def to_iob2(ex: dict, scheme: str, repair: bool, path) -> tuple[list[str], int]:
    """One example's tags as IOB2; returns (tags, repairs). Breaks raise unless repair=True."""
    allowed = PREFIXES[scheme]
    tags, fixes = [], 0
    parsed = [split_tag(t) for t in ex["tags"]]
    for i, (p, t) in enumerate(parsed):
        if p == "?" or (p != "O" and p not in allowed):
            raise TunesmithError(_problem(path, ex, i, f"tag '{ex['tags'][i]}' is not valid in scheme "
                                          f"{scheme.upper()} (expected O or {'/'.join(allowed)}-TYPE)"))
        prev = parsed[i - 1] if i else ("O", None)
        nxt = parsed[i + 1] if i + 1 < len(parsed) else ("O", None)
        continues = prev[0] != "O" and prev[1] == t and prev[0] != "U" and prev[0] != "L"
        broken = None
        if p == "O":
            tags.append("O")
            continue
        if scheme == "iob2":
            if p == "I" and not continues:
                broken = f"'{ex['tags'][i]}' follows '{ex['tags'][i - 1] if i else 'O'}' (IOB2 entities start with B-)"
            tags.append(("B-" if p == "B" or not continues else "I-") + t)
        elif scheme == "iob1":
            if p == "B" and not continues:
                broken = f"'{ex['tags'][i]}' in IOB1 only separates two entities of one type"
            tags.append(("B-" if p == "B" or not continues else "I-") + t)
        else:  # bilou
            if p in "IL" and not continues:
                broken = f"'{ex['tags'][i]}' does not continue a B-/I- {t} entity"
            elif p in "BI" and not (nxt[0] in "IL" and nxt[1] == t):
                broken = f"'{ex['tags'][i]}' is not followed by I-/L-{t}"
            tags.append(("I-" if p in "IL" and continues else "B-") + t)
        if broken:
            if not repair:
                raise TunesmithError(_problem(path, ex, i, f"tag sequence breaks {scheme.upper()}: {broken}; "
                                              "fix the file or pass --ner.repair=true to repair such tags"))
            fixes += 1
    return tags, fixes


def normalise(examples: list[dict], scheme: str = "auto", repair: bool = False, path="data") -> dict:
    """Validate every example's tags in `scheme` and rewrite them as IOB2 in place.

    Returns {"scheme": detected or given scheme, "repaired": number of repaired tags}.

    Example:
        >>> ex = [{"tokens": ["Jo", "Li"], "tags": ["I-PER", "I-PER"], "_line": 1, "_lines": [1, 2]}]
        >>> normalise(ex, "iob1")["scheme"], ex[0]["tags"]
        ('iob1', ['B-PER', 'I-PER'])
    """
    scheme = _ALIAS.get(scheme.lower(), scheme.lower())
    if scheme not in ("auto", *PREFIXES):
        raise TunesmithError(f"unknown tag scheme '{scheme}'; schemes: {', '.join(SCHEMES)}")
    if scheme == "auto":
        scheme = detect_scheme(examples)
    fixes = 0
    for ex in examples:
        ex["tags"], n = to_iob2(ex, ex.get("_scheme", scheme), repair, path)
        fixes += n
    return {"scheme": scheme, "repaired": fixes}


def label_list(examples: list[dict]) -> list[str]:
    """IOB2 labels in a stable order: O, then B-/I- per entity type alphabetically."""
    types = sorted({split_tag(t)[1] for ex in examples for t in ex["tags"] if t != "O"})
    return ["O"] + [f"{p}-{t}" for t in types for p in "BI"]


def write_conll(examples: list[dict], path: str | Path) -> None:
    """Write examples as CoNLL (TOKEN TAG per line, blank line between sentences)."""
    with open(path, "w", encoding="utf-8") as f:
        for ex in examples:
            f.writelines(f"{tok} {tag}\n" for tok, tag in zip(ex["tokens"], ex["tags"]))
            f.write("\n")
