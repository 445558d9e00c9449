"""Knowledge distillation: a small classifier learns from a big one's soft targets and the gold labels.

The student's loss per example is
    alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, gold)
(Hinton et al. 2015; the T^2 keeps the soft term's gradient scale independent of T). Examples without
a gold label (an unlabelled corpus the user names) take the soft term only: soft targets need no labels.

The teacher's logits are computed once per (teacher, texts, max_length) through the Predictor's fast
path and cached as .npy in the teacher's run directory, so a second student (another seed, another
alpha) reuses them. Everything else is an ordinary classification run: the same split, report, model
card (naming the teacher), fast inference and server.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import TunesmithError

CACHE_DIR = "teacher_logits"
COLUMN = "teacher_logits"


def kd_loss(student: torch.Tensor, teacher: torch.Tensor | None, labels: torch.Tensor | None,
            temperature: float, alpha: float) -> torch.Tensor:
    """Mean distillation loss over a batch; labels of -100 (unlabelled rows) take the soft term only.

    Example:
        >>> s = torch.tensor([[2.0, 0.0]]); t = torch.tensor([[2.0, 0.0]])
        >>> float(kd_loss(s, t, None, 2.0, 1.0)) < 1e-6   # same distribution: no soft loss
        True
    """
    per = torch.zeros(student.shape[0], device=student.device, dtype=torch.float32)
    s = student.float()
    if teacher is not None and alpha > 0:
        t = teacher.to(s.device).float()
        soft = F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1),
                        reduction="none", log_target=True).sum(-1)
        per = per + alpha * temperature ** 2 * soft
    if labels is not None:
        gold = labels != -100
        ce = F.cross_entropy(s, labels.clamp(min=0), reduction="none")
        weight = (1.0 - alpha) if teacher is not None else 1.0  # validation rows have no teacher
        per = per + weight * ce * gold
    return per.mean()


def enable_distillation(trainer, temperature: float, alpha: float):
    """Make `trainer` train on `teacher_logits` (a dataset column) plus the gold labels.

    The column must survive Trainer's removal of columns the model's forward does not take, and
    the model is called without labels so that it computes no loss of its own."""
    trainer.extra_columns = (*trainer.extra_columns, COLUMN)  # TunesmithTrainer keeps it for compute_loss

    def compute_loss(model, inputs, return_outputs=False, **kwargs):
        inputs = dict(inputs)
        teacher = inputs.pop(COLUMN, None)
        labels = inputs.pop("labels", None)
        outputs = model(**inputs)
        loss = kd_loss(outputs.logits, teacher, labels, temperature, alpha)
        return (loss, outputs) if return_outputs else loss

    trainer.compute_loss = compute_loss
    return trainer


def teacher_labels(teacher: str) -> list[str]:
    """The label names of a teacher run (its run.json), in the order of its logits."""
    info = Path(teacher) / "run.json"
    if not info.is_file():
        raise TunesmithError(f"teacher '{teacher}' is not a tunesmith run (no run.json there); "
                             "give the run directory of a finished classification run, e.g. "
                             "`tunesmith finetune --model mpnet --data movie-reviews --output runs/teacher`")
    data = json.loads(info.read_text(encoding="utf-8"))
    if data.get("task") != "classification":
        raise TunesmithError(f"teacher {teacher} is a '{data.get('task')}' run; distillation needs a "
                             "classification teacher")
    if data.get("status") != "complete":
        raise TunesmithError(f"teacher {teacher} did not finish (status '{data.get('status')}')")
    return list(data["labels"])


def align(teacher: list[str], student: list[str], where: str) -> list[int]:
    """Column order that maps the teacher's logits onto the student's labels."""
    if sorted(teacher) != sorted(student):
        raise TunesmithError(f"{where}: the teacher's labels {teacher} differ from the data's {student}; "
                             "distil on data with the same label set")
    return [teacher.index(l) for l in student]


def cache_key(teacher: str, texts: list[str], max_length: int) -> str:
    h = hashlib.sha256()
    for p in sorted((Path(teacher) / "model").glob("*.safetensors")):
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(str(max_length).encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:20]


def teacher_logits(teacher: str, texts: list[str], max_length: int, say=print) -> np.ndarray:
    """The teacher's logits for `texts` (n, labels), from the cache when it has them."""
    import time

    path = Path(teacher) / CACHE_DIR / f"{cache_key(teacher, texts, max_length)}.npy"
    if path.is_file():
        say(f"teacher logits: {len(texts):,} texts from the cache ({path})")
        return np.load(path)
    from .infer.predictor import Predictor

    t0 = time.perf_counter()
    predictor = Predictor.load(teacher, fast="auto", max_length=max_length)
    say(f"teacher logits: computing for {len(texts):,} texts with {teacher} (once; cached)")
    from tqdm.auto import tqdm

    chunk = 512
    parts = [predictor.logits(texts[i:i + chunk]).float().numpy()
             for i in tqdm(range(0, len(texts), chunk), desc="teacher logits", unit="chunk")]
    logits = np.concatenate(parts) if parts else np.zeros((0, len(predictor.labels)), np.float32)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, logits)
    tmp.replace(path)  # never a half-written cache
    say(f"teacher logits: {len(texts):,} texts in {time.perf_counter() - t0:.0f} s -> {path}")
    return logits


def unlabelled_rows(source: str, column: str | None, limit: int | None) -> list[dict]:
    """Texts without labels for the soft term, from one or more comma-separated sources: a .txt file
    (one text per line), any table the readers take (its text column), or a built-in labelled data set
    (`tunesmith datasets`), whose labels are dropped."""
    texts: list[str] = []
    for part in [s.strip() for s in source.split(",") if s.strip()]:
        texts += _unlabelled_texts(part, column)
    return [{"text": t, "label": None} for t in texts[:limit]]


def _unlabelled_texts(path: str, column: str | None) -> list[str]:
    from .data.builtin import LABELLED, load_builtin

    p = Path(path)
    if not p.is_file() and path in LABELLED:
        return [r["text"] for r in load_builtin(path)[0]]
    if not p.is_file():
        raise TunesmithError(f"distill.unlabelled: {path} is neither a file nor a built-in data set "
                             f"({', '.join(LABELLED)})")
    if p.suffix.lower() == ".txt":
        return [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    from .data.readers import read_records

    rows = read_records(p)
    if not rows:
        raise TunesmithError(f"distill.unlabelled: {path} holds no rows")
    col = column or ("text" if "text" in rows[0] else None)
    if col is None or col not in rows[0]:
        raise TunesmithError(f"distill.unlabelled: {path} has no column '{column or 'text'}'; columns: "
                             f"{', '.join(rows[0])}; name it with --distill.unlabelled_column")
    return [str(r[col]).strip() for r in rows if r.get(col) not in (None, "")]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def drop_held_out(extra: list[dict], seen: list[dict], held_out: list[str]) -> tuple[list[dict], int, int]:
    """The unlabelled rows less those whose text is a validation or test text (their soft targets would
    carry what the student is judged on) or repeats a training or earlier unlabelled text; the two
    counts dropped. Texts compare lower-cased with runs of whitespace as one space."""
    banned = {_norm(t) for t in held_out}
    known = {_norm(r["text"]) for r in seen}
    kept, leaked, repeated = [], 0, 0
    for r in extra:
        key = _norm(r["text"])
        if key in banned:
            leaked += 1
        elif key in known:
            repeated += 1
        else:
            known.add(key)
            kept.append(r)
    return kept, leaked, repeated


def training_rows(rows: list[dict], cfg, labels: list[str], say=print,
                  held_out: list[str] = ()) -> list[dict]:
    """The student's training rows: the labelled (and augmented) ones plus the unlabelled texts the
    user named, each with the teacher's logits (column-aligned to `labels`) under `teacher_logits`.
    Unlabelled texts that are `held_out` texts (validation, test) or repeats are dropped, and counted."""
    d = cfg.distill
    order = align(teacher_labels(d.teacher), labels, d.teacher)
    if d.unlabelled:
        extra = unlabelled_rows(d.unlabelled, d.unlabelled_column, d.max_unlabelled)
        extra, leaked, repeated = drop_held_out(extra, rows, list(held_out))
        say(f"distillation: {len(extra):,} unlabelled texts from {d.unlabelled} (soft targets only); "
            f"dropped {leaked:,} that are validation or test texts and {repeated:,} repeats")
        rows = rows + extra
    logits = teacher_logits(d.teacher, [r["text"] for r in rows], cfg.model.max_length, say)[:, order]
    agree = [int(np.argmax(l)) == labels.index(r["label"]) for l, r in zip(logits, rows) if r["label"] is not None]
    if agree:
        say(f"teacher agrees with the gold label on {np.mean(agree):.1%} of the labelled training rows")
    return [{**r, COLUMN: l.tolist()} for r, l in zip(rows, logits)]
