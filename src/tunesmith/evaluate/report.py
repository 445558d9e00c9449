"""Report writers: report.json, report.md, PNG plots and the model card."""
from __future__ import annotations

from pathlib import Path

from .. import runs
from ..adapt.params import format_param_table
from ..adapt.registry import card_code, library_name
from ..data.stats import format_stats
from .metrics import format_confusion
from .plots import confusion_png, learning_curve_png


def write_classification_report(run: Path, report: dict, metric: str) -> None:
    """report.json + report.md + confusion_matrix.png + learning_curve.png."""
    runs.write_json(run / "report.json", report)
    main = report["evaluation"].get("test") or report["evaluation"].get("validation")
    if main:
        confusion_png(main["confusion_matrix"], main["labels"], run / "confusion_matrix.png",
                      f"Confusion matrix ({main['split']}, n={main['n']})")
    learning_curve_png(runs.read_metrics(run), run / "learning_curve.png", metric)
    (run / "report.md").write_text(classification_markdown(report), encoding="utf-8")


def metrics_table(evaluation: dict) -> list[str]:
    lines = ["| split | n | accuracy | precision | recall | F1 |", "|---|---:|---:|---:|---:|---:|"]
    for split, m in evaluation.items():
        lines.append(f"| {split} | {m['n']} | {m['accuracy']:.4f} | {m['precision']:.4f} | "
                     f"{m['recall']:.4f} | {m['f1']:.4f} |")
    return lines


def classification_markdown(r: dict) -> str:
    lines = [f"# Fine-tuning report: {r['model']} on {r['data']} ({r['method']})", ""]
    lines += [f"- task: {r['task']}; labels: {', '.join(r['labels'])}",
              f"- training: {r['training']['steps']} steps, {r['training']['epochs']:.2f} epochs, "
              f"{r['training']['seconds']:.1f} s ({r['training']['samples_per_second']:.1f} samples/s)",
              f"- F1 is {next(iter(r['evaluation'].values()))['average']}", ""]
    lines += ["## Metrics", "", *metrics_table(r["evaluation"]), ""]
    for split, m in r["evaluation"].items():
        lines += [f"### Per class ({split})", "", "| class | precision | recall | F1 | support |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {c} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['support']} |"
                  for c, v in m["per_class"].items()]
        lines += ["", "```", format_confusion(m["confusion_matrix"], m["labels"]), "```", ""]
    lines += ["![confusion matrix](confusion_matrix.png)", "", "![learning curve](learning_curve.png)", "",
              "## Parameters", "", "```", format_param_table(r["params"], r["method"]), "```", "",
              "## Token lengths", "", "```"]
    lines += [format_stats(k, v) for k, v in r["token_stats"].items()] + ["```", ""]
    if r.get("newly_initialised"):
        lines += ["## Newly initialised weights", "", ", ".join(r["newly_initialised"]), ""]
    return "\n".join(lines)


def distilled_from(info: dict) -> str:
    """The model card's line naming the teacher of a distilled run (empty otherwise)."""
    d = info.get("distillation")
    if not d:
        return ""
    extra = f", plus the unlabelled texts of `{d['unlabelled']}`" if d.get("unlabelled") else ""
    return (f"Distilled from the teacher run `{d['teacher']}`: trained on its soft targets (temperature "
            f"{d['temperature']}, weight {d['alpha']}) and the gold labels (weight {1 - d['alpha']:g}){extra}.\n\n")


def model_card(run: Path, info: dict, report: dict) -> None:
    """README.md in the run: what it is, how well it did, how to load it without tunesmith."""
    test = report["evaluation"].get("test") or report["evaluation"].get("validation", {})
    labels = info["labels"]
    load = f"```python\n{card_code(info, run, 'AutoModelForSequenceClassification')}\n```"
    text = f"""---
library_name: {library_name(info)}
pipeline_tag: text-classification
base_model: {info['base_model']}
---
# {run.name}

Text classifier fine-tuned by tunesmith from `{info['base_model']}` with method `{info['method']}`
on `{info['data']}`. Labels: {', '.join(labels)}.

{distilled_from(info)}Test accuracy {test.get('accuracy', float('nan')):.4f}, F1 {test.get('f1', float('nan')):.4f}
({test.get('n', 0)} examples). Full report: `report.md`.

## Load it without tunesmith

{load}

Inputs were truncated to {info.get('max_length', 128)} tokens in training.
"""
    (run / "README.md").write_text(text, encoding="utf-8")
