"""The Report page: a run's own files (report.json, params.json, metrics.jsonl, the PNG plots) and
its misclassified held-out examples, predicted by the Predictor on the run's own split."""
from __future__ import annotations

import threading
from pathlib import Path

from ..errors import TunesmithError
from .runs_index import read_json

FILES = {".png": "image/png", ".md": "text/markdown; charset=utf-8", ".json": "application/json",
         ".jsonl": "application/x-ndjson", ".yaml": "text/yaml; charset=utf-8"}
_errors_cache: dict[tuple[str, float], dict] = {}
_errors_lock = threading.Lock()


def read_metrics(run: Path) -> list[dict]:
    """metrics.jsonl as the run has written it so far (a half-written last line is skipped)."""
    import json

    try:
        text = (run / "metrics.jsonl").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def images(run: Path) -> list[str]:
    """The PNG files of the run (confusion matrix, learning curve, task-specific plots)."""
    return sorted(p.name for p in run.glob("*.png"))


def run_report(run: Path) -> dict:
    """Everything the Report page shows; `report` is None until the run has written report.json."""
    return {"info": read_json(run / "run.json"), "report": read_json(run / "report.json"),
            "params": read_json(run / "params.json"), "token_stats": read_json(run / "token_stats.json"),
            "images": images(run), "has_markdown": (run / "report.md").is_file(),
            "compare": read_json(run / "compare.json")}


def run_file(run: Path, name: str) -> tuple[Path, str]:
    """A file directly inside the run (plots, report, config) and its media type; nothing else."""
    path = run / Path(name).name
    if Path(name).name != name or path.suffix not in FILES or not path.is_file():
        raise TunesmithError(f"{name}: not a report file of this run (plots .png, report .md/.json, config .yaml)")
    return path, FILES[path.suffix]


def held_out(run: Path) -> tuple[str, list[dict]]:
    """The run's own test split (validation when it has none), rebuilt from its config.yaml by the
    same loader with the same seed, sizes and subsampling."""
    from ..config import FinetuneConfig, load
    from ..data.labelled import load_labelled

    cfg = load(FinetuneConfig, str(run / "config.yaml"), {})
    splits = load_labelled(cfg.data).splits
    split = "test" if splits.get("test") else "validation"
    return split, splits.get(split) or []


def misclassified(run: Path, predictor_for) -> dict:
    """Held-out examples the run gets wrong: text, gold, predicted, confidence (cached per report)."""
    info = read_json(run / "run.json") or {}
    if info.get("status") != "complete":
        raise TunesmithError(f"{run.name}: the run is not complete yet")
    if info.get("task") != "classification":
        raise TunesmithError(f"{run.name}: misclassified examples are listed for classification runs "
                             f"(this is a {info.get('task')} run)")
    key = (str(run.resolve()), (run / "run.json").stat().st_mtime)
    with _errors_lock:
        if key not in _errors_cache:
            _errors_cache[key] = _compute_errors(run, predictor_for(str(run)))
        return _errors_cache[key]


def _compute_errors(run: Path, predictor) -> dict:
    split, rows = held_out(run)
    preds = predictor.classify([r["text"] for r in rows], all_scores=True) if rows else []
    wrong = [{"text": r["text"], "gold": r["label"], "predicted": p["label"], "confidence": p["score"],
              "gold_score": p["scores"].get(r["label"]), "line": r.get("_line")}
             for r, p in zip(rows, preds) if p["label"] != r["label"]]
    return {"split": split, "n": len(rows), "errors": sorted(wrong, key=lambda e: -e["confidence"])}
