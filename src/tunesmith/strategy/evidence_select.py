"""Reading the evidence for a situation: the nearest measured data size, the best measured method
there, whether augmentation helped there, a model's measured quality; and `Cite`, what every rule
attaches to its decision (evidence ids, or the explicit "no measurement" marker)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .evidence import EVIDENCE, Evidence, Quality, rows as all_rows

HAND_SET = "no measurement: hand-set rule"
FORMULA = "no measurement: formula estimate"
NEAR_FACTOR = 10  # hand-set: a measurement counts for data sizes within 10x of the size it was made at


@dataclass(frozen=True)
class Cite:
    """What backs one decision: evidence ids, a note, or both (the note says what is not measured)."""

    ids: tuple[str, ...] = ()
    note: str = ""

    def label(self) -> str:
        parts = ([f"evidence: {', '.join(self.ids)}"] if self.ids else []) + ([self.note] if self.note else [])
        return "; ".join(parts) or HAND_SET


@dataclass
class MethodScore:
    """A method's measured quality at one data size: its best lr's mean over the data sets measured."""

    method: str
    score: float
    lr: float | None
    metric: str
    datasets: list[str]
    ids: tuple[str, ...] = field(default_factory=tuple)

    def text(self) -> str:
        lr = f" (lr {self.lr:g})" if self.lr is not None else ""
        return f"{self.method} {self.score:.3f}{lr}"


@dataclass
class Ranking:
    size: int  # training examples the measurements were made with
    scores: list[MethodScore]  # best first
    models: list[str]  # the models measured
    same_model: bool  # measured on the advised model itself

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i for s in self.scores for i in s.ids))

    def get(self, method: str) -> MethodScore | None:
        return next((s for s in self.scores if s.method == method), None)


def nearest_size(sizes, samples: int) -> int | None:
    """The measured size closest to `samples` on a log scale, if within NEAR_FACTOR.

    Example:
        >>> nearest_size([200, 2000], 500), nearest_size([2000], 100_000)
        (200, None)
    """
    sizes = sorted(set(sizes))
    if not sizes:
        return None
    n = min(sizes, key=lambda s: (abs(math.log(s / samples)), s))
    return n if max(n / samples, samples / n) <= NEAR_FACTOR else None


def ranking(samples: int, model: str = "", task: str = "classification",
            evidence: tuple[Evidence, ...] = EVIDENCE) -> Ranking | None:
    """Methods ranked by measured quality at the nearest size where at least two were compared."""
    plain = [(i, r) for i, r in all_rows(evidence) if r.task == task and not r.condition]
    methods: dict[int, set[str]] = {}
    for _, r in plain:
        methods.setdefault(r.train_examples, set()).add(r.method)
    size = nearest_size([n for n, ms in methods.items() if len(ms) >= 2], samples)
    if size is None:
        return None
    at = [(i, r) for i, r in plain if r.train_examples == size]
    own = [(i, r) for i, r in at if r.model == model]
    same = len({r.method for _, r in own}) >= 2
    at = own if same else at
    return Ranking(size, _scores(at), sorted({r.model for _, r in at}), same)


def _scores(at: list[tuple[str, Quality]]) -> list[MethodScore]:
    cells: dict[tuple[str, float | None, str], list[tuple[str, Quality]]] = {}
    for i, r in at:  # rows of one configuration (or one per seed) are averaged
        cells.setdefault((r.method, r.lr, r.data), []).append((i, r))
    per_lr: dict[tuple[str, float | None], list[tuple[str, float, tuple[str, ...], str]]] = {}
    for (method, lr, data), group in cells.items():
        mean = sum(r.value for _, r in group) / len(group)
        per_lr.setdefault((method, lr), []).append((data, mean, tuple(dict.fromkeys(i for i, _ in group)),
                                                     group[0][1].metric))
    best: dict[str, MethodScore] = {}
    for (method, lr), cells_ in per_lr.items():
        score = sum(m for _, m, _, _ in cells_) / len(cells_)
        ids = tuple(dict.fromkeys(i for _, _, ids, _ in cells_ for i in ids))
        cand = MethodScore(method, score, lr, cells_[0][3], sorted(d for d, _, _, _ in cells_), ids)
        if method not in best or score > best[method].score:
            best[method] = cand
    return sorted(best.values(), key=lambda s: -s.score)


@dataclass
class AugmentFinding:
    size: int
    changes: dict[str, float]  # condition -> mean change against the plain run
    ids: tuple[str, ...]

    @property
    def best(self) -> tuple[str, float]:
        return max(self.changes.items(), key=lambda kv: kv[1])


def augmentation(samples: int, task: str = "classification",
                 evidence: tuple[Evidence, ...] = EVIDENCE) -> AugmentFinding | None:
    """Measured effect of each augmentation at the nearest size where one was measured."""
    rows_ = [(i, r) for i, r in all_rows(evidence) if r.task == task]
    size = nearest_size([r.train_examples for _, r in rows_ if r.condition], samples)
    if size is None:
        return None
    changes, ids = {}, []
    for i, r in rows_:
        if r.train_examples != size or not r.condition:
            continue
        base = [b.value for _, b in rows_ if not b.condition and
                (b.method, b.model, b.data, b.train_examples, b.lr) == (r.method, r.model, r.data, size, r.lr)]
        if base:
            changes[r.condition] = r.value - sum(base) / len(base)
            ids.append(i)
    return AugmentFinding(size, changes, tuple(dict.fromkeys(ids))) if changes else None


def model_quality(model: str, samples: int, task: str = "classification",
                  evidence: tuple[Evidence, ...] = EVIDENCE) -> tuple[Quality, str] | None:
    """A model's best plain measured result at the nearest size it was measured at (within NEAR_FACTOR)."""
    rows_ = [(i, r) for i, r in all_rows(evidence) if r.model == model and r.task == task and not r.condition]
    size = nearest_size([r.train_examples for _, r in rows_], samples)
    if size is None:
        return None
    i, best = max(((i, r) for i, r in rows_ if r.train_examples == size), key=lambda ir: ir[1].value)
    return best, i


def model_speed(model: str, evidence: tuple[Evidence, ...] = EVIDENCE) -> tuple[Quality, str] | None:
    """A measured training speed of the model (a row with seconds_per_step), if any."""
    timed = [(i, r) for i, r in all_rows(evidence) if r.model == model and r.seconds_per_step]
    return (timed[0][1], timed[0][0]) if timed else None
