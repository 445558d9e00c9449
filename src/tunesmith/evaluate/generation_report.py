"""Causal-LM report writers: report.json, report.md (perplexity and samples before/after),
learning curve and the model card."""
from __future__ import annotations

from pathlib import Path

from .. import runs
from ..adapt.params import format_param_table
from ..adapt.registry import card_code, library_name
from .plots import learning_curve_png


def generation_markdown(r: dict) -> str:
    t = r["training"]
    lines = [f"# Fine-tuning report: {r['model']} on {r['data']} ({r['method']}, causal LM)", "",
             f"- data: {r['data_info']['kind']}; documents {r['data_info']['documents']}; "
             f"examples {r['data_info']['examples']}; block size {r['block_size']}"
             + ("; loss on responses only" if r["data_info"]["kind"] != "text" and r["response_only"] else ""),
             f"- training: {t['steps']} steps, {t['epochs']:.2f} epochs, {t['seconds']:.1f} s "
             f"({t['samples_per_second']:.2f} examples/s), final training loss {t['train_loss']:.4f}", "",
             "## Held-out perplexity", "", "| split | tokens | before | after |", "|---|---:|---:|---:|"]
    for split, m in r["evaluation"].items():
        lines.append(f"| {split} | {m['after']['tokens']} | {m['before']['perplexity']:.2f} | "
                     f"{m['after']['perplexity']:.2f} |")
    lines += ["", "## Sample generations (greedy)", ""]
    for s in r["samples"]:
        lines += [f"**{s['prompt']}**", "", f"- before: {s['before']!r}", f"- after: {s['after']!r}", ""]
    lines += ["![learning curve](learning_curve.png)", "", "## Parameters", "", "```",
              format_param_table(r["params"], r["method"]), "```", ""]
    return "\n".join(lines)


def write_generation_report(run: Path, report: dict) -> None:
    runs.write_json(run / "report.json", report)
    learning_curve_png(runs.read_metrics(run), run / "learning_curve.png", "loss")
    (run / "report.md").write_text(generation_markdown(report), encoding="utf-8")


def generation_model_card(run: Path, info: dict, report: dict) -> None:
    load = f"```python\n{card_code(info, run, 'AutoModelForCausalLM')}\n```"
    ppl = " ".join(f"{s}: {m['before']['perplexity']:.2f} -> {m['after']['perplexity']:.2f}."
                   for s, m in report["evaluation"].items())
    text = f"""---
library_name: {library_name(info)}
pipeline_tag: text-generation
base_model: {info['base_model']}
---
# {run.name}

Causal language model fine-tuned by tunesmith from `{info['base_model']}` with method `{info['method']}`
on `{info['data']}` ({info.get('kind')}). Held-out perplexity before -> after: {ppl}
Full report with sample generations: `report.md`.

## Load it without tunesmith

{load}

Generate with `tunesmith generate {run} "Your prompt"` or `model.generate(...)`.
"""
    (run / "README.md").write_text(text, encoding="utf-8")
