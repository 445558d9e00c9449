"""Summarise scripts/sweep-defaults.sh: every compare.json under a folder -> Markdown tables.

    python scripts/sweep_table.py runs/sweep

Grid runs: one row per (data, method, lr), the lr each method would be given by validation metric
marked. Seed runs: mean and standard deviation over seeds of test accuracy per (data, method), and
the gap to full fine-tuning's mean.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def rows(root: Path, phase: str) -> list[dict]:
    out = []
    for f in sorted((root / phase).rglob("compare.json")):
        rel = f.parent.relative_to(root / phase).parts
        for r in json.loads(f.read_text())["rows"]:
            data = "news-ner" if phase == "ner" else rel[0]  # ner/seed<S>/<method>/...: one data set
            where = "/".join(rel if phase == "ner" else rel[1:])
            out.append({**r, "data": data, "where": where, **held_out(Path(r["run"]))})
    return out


def held_out(run: Path) -> dict:
    """Validation and test accuracy / F1 (NER: entity F1) from the run's own report."""
    ev = json.loads((run / "report.json").read_text())["evaluation"]
    pick = lambda s, k: ev.get(s, {}).get(k, ev.get(s, {}).get("overall", {}).get(k))  # noqa: E731
    return {"val_acc": pick("validation", "accuracy"), "val_f1": pick("validation", "f1")}


def choose_by_val(rs: list[dict]) -> list[dict]:
    """Mark per (data, method) the lr with the best validation accuracy (F1 for NER). Validation
    F1 alone picks a degenerate all-positive classifier on a balanced binary task (F1 0.667)."""
    best: dict[tuple, dict] = {}
    for r in rs:
        key = (r["data"], r["method"])
        score = r["val_acc"] if r["val_acc"] is not None else r["val_f1"]
        r["chosen"] = False
        if key not in best or score > best[key][0]:
            best[key] = (score, r)
    for _, r in best.values():
        r["chosen"] = True
    return rs


def grid_table(rs: list[dict]) -> str:
    lines = ["| data | method | lr | val accuracy | val F1 | test accuracy | test F1 | chosen (val) |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
    for r in sorted(choose_by_val(rs), key=lambda r: (r["data"], r["method"], r["lr"])):
        lines.append(f"| {r['data']} | {r['method']} | {r['lr']:g} | {fmt(r['val_acc'])} | {fmt(r['val_f1'])} | "
                     f"{fmt(r.get('accuracy'))} | {fmt(r.get('f1'))} | {'**yes**' if r['chosen'] else ''} |")
    return "\n".join(lines)


def seeds_table(rs: list[dict], metric: str = "accuracy") -> str:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rs:
        groups.setdefault((r["data"], r["method"]), []).append(r)
    full = {d: statistics.mean(x[metric] for x in g) for (d, m), g in groups.items() if m == "full"}
    lines = [f"| data | method | lr | seeds | test {metric} mean | sd | min | max | vs full |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (d, m), g in groups.items():
        vals = [x[metric] for x in g]
        mean = statistics.mean(vals)
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        gap = f"{100 * (mean - full[d]):+.1f} pts" if d in full else ""
        lines.append(f"| {d} | {m} | {g[0]['lr']:g} | {len(vals)} | {mean:.4f} | {sd:.4f} | {min(vals):.4f} | "
                     f"{max(vals):.4f} | {gap} |")
    return "\n".join(lines)


def ner_table(rs: list[dict]) -> str:
    """NER grid over seeds: per (method, lr) the mean entity F1 (validation, test) over the seeds;
    the lr with the best mean validation F1 marked."""
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in rs:
        groups.setdefault((r["method"], r["lr"]), []).append(r)
    mean = {k: statistics.mean(x["val_f1"] for x in g) for k, g in groups.items()}
    best = {m: max((k for k in groups if k[0] == m), key=lambda k: mean[k]) for m, _ in groups}
    lines = ["| method | lr | seeds | val entity F1 mean | test entity F1 mean | sd | per seed (test) | chosen (val) |",
             "|---|---|---|---|---|---|---|---|"]
    for (m, lr), g in sorted(groups.items()):
        tests = [x["f1"] for x in sorted(g, key=lambda x: x["where"])]
        sd = statistics.stdev(tests) if len(tests) > 1 else 0.0
        lines.append(f"| {m} | {lr:g} | {len(g)} | {mean[(m, lr)]:.4f} | {statistics.mean(tests):.4f} | {sd:.4f} | "
                     f"{', '.join(f'{t:.3f}' for t in tests)} | {'**yes**' if best[m] == (m, lr) else ''} |")
    return "\n".join(lines)


def main(root: str) -> None:
    base = Path(root)
    grid = rows(base, "grid")
    for phase, render in (("grid", grid_table), ("ner", ner_table), ("seeds", seeds_table), ("full", grid_table)):
        rs = rows(base, phase)
        if phase == "seeds" and rs:
            # seed 42 at the chosen lr is the grid's chosen run itself (same config): not run twice
            rs = rs + [r for r in choose_by_val(grid) if r["chosen"]]
        if rs:
            print(f"\n### {phase}\n\n{render(rs)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/sweep")
