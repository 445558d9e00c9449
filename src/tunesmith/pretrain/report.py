"""Pre-training report: report.json, report.md (before/after tables, fill-mask probes) and the
learning curve PNG (shared with fine-tuning runs)."""
from __future__ import annotations

from pathlib import Path

from .. import runs
from ..evaluate.plots import learning_curve_png

ROWS = [("loss", "held-out loss (masked tokens / next tokens)"), ("perplexity", "perplexity exp(loss)"),
        ("top1", "masked-token top-1 accuracy"), ("top5", "masked-token top-5 accuracy"),
        ("pseudo_perplexity", "pseudo-perplexity"), ("nsp_accuracy", "NSP accuracy")]


def write_pretrain_report(run: Path, report: dict) -> None:
    runs.write_json(run / "report.json", report)
    learning_curve_png(runs.read_metrics(run), run / "learning_curve.png", "loss")
    (run / "report.md").write_text(pretrain_markdown(report), encoding="utf-8")


def metric_rows(before: dict, after: dict) -> list[str]:
    lines = ["| metric | before | after |", "|---|---:|---:|"]
    for key, name in ROWS:
        if key in after:
            lines.append(f"| {name} | {before.get(key, float('nan')):.4f} | {after[key]:.4f} |")
    return lines


def probe_rows(before: list[dict], after: list[dict]) -> list[str]:
    lines = []
    for b, a in zip(before, after):
        lines.append(f"- `{a['text']}`")
        for i, (mb, ma) in enumerate(zip(b["masks"], a["masks"]), start=1):
            fmt = lambda preds: ", ".join(f"{p['token']} ({p['score']:.2f})" for p in preds)
            lines += [f"  - mask {i} before: {fmt(mb)}", f"  - mask {i} after: {fmt(ma)}"]
    return lines


def _stats(s: dict) -> str:
    return ", ".join(f"{s[k]:,} {k}" for k in ("documents", "sentences", "words", "tokens") if k in s)


def pretrain_markdown(r: dict) -> str:
    t = r["training"]
    lines = [f"# Pre-training report: {r['model']} ({r['init']}), objective {r['objective']}", "",
             f"- corpus: {r['corpus'].get('source')}; train: {_stats(r['corpus_stats']['train'])}; "
             f"held out: {_stats(r['corpus_stats']['eval'])}",
             f"- examples: train {r['examples']['train']}, held-out scored {r['examples']['eval']}",
             f"- training: {t['steps']} steps, {t['epochs']:.2f} epochs, {t['seconds']:.1f} s, lr {t['learning_rate']}",
             f"- newly initialised: {', '.join(r['newly_initialised']) or 'nothing'}"
             + (f" ({'; '.join(r['head_init'])})" if r.get("head_init") else ""),
             f"- carried over unchanged from the base for fine-tuning: {', '.join(r.get('carried_from_base') or []) or 'nothing'}",
             ""]
    if r.get("masking"):
        lines += [f"- masking: {r['masking']}", ""]
    lines += ["## Held-out metrics", "", *metric_rows(r["before"]["metrics"], r["after"]["metrics"]), ""]
    if r["after"]["fill_mask"]:
        lines += ["## Fill-mask probes (top 5)", "", *probe_rows(r["before"]["fill_mask"], r["after"]["fill_mask"]), ""]
    lines += ["![learning curve](learning_curve.png)", ""]
    return "\n".join(lines)
