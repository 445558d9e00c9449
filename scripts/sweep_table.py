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
            out.append({**r, "data": rel[0], "where": "/".join(rel[1:])})
    return out


def grid_table(rs: list[dict]) -> str:
    lines = ["| data | method | lr | val metric | test accuracy | test F1 | chosen by val |", "|---|---|---|---|---|---|---|"]
    for r in rs:
        lines.append(f"| {r['data']} | {r['method']} | {r['lr']:g} | {r['val_metric']:.4f} | {r['accuracy']:.4f} | "
                     f"{r['f1']:.4f} | {'**yes**' if r.get('best') else ''} |")
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


def main(root: str) -> None:
    base = Path(root)
    for phase, render in (("grid", grid_table), ("ner", grid_table), ("seeds", seeds_table), ("full", grid_table)):
        rs = rows(base, phase)
        if rs:
            print(f"\n### {phase}\n\n{render(rs)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/sweep")
