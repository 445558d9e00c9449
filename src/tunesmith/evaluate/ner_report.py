"""NER report writers: report.json, report.md (per-type table), entity-type confusion PNG,
learning curve, and the model card."""
from __future__ import annotations

from pathlib import Path

from .. import runs
from ..adapt.params import format_param_table
from ..adapt.registry import card_code, library_name
from ..data.stats import format_stats
from .metrics import format_confusion
from .ner_metrics import format_ner_table
from .plots import confusion_png, learning_curve_png


def write_ner_report(run: Path, report: dict, metric: str) -> None:
    runs.write_json(run / "report.json", report)
    main = report["evaluation"].get("test") or report["evaluation"].get("validation")
    if main and main["confusion"]["labels"]:
        confusion_png(main["confusion"]["matrix"], main["confusion"]["labels"], run / "confusion_matrix.png",
                      f"Entity types ({main['split']}; O = missed / spurious)")
    learning_curve_png(runs.read_metrics(run), run / "learning_curve.png", metric)
    (run / "report.md").write_text(ner_markdown(report), encoding="utf-8")


def ner_markdown(r: dict) -> str:
    t = r["training"]
    lines = [f"# Fine-tuning report: {r['model']} on {r['data']} ({r['method']}, NER)", ""]
    if r.get("note"):
        lines += [f"> **Note:** {r['note']}.", ""]
    lines += [f"- task: token classification; scheme {r['data_info'].get('scheme', 'iob2').upper()} "
              f"(trained as IOB2); {len(r['labels'])} labels",
              f"- training: {t['steps']} steps, {t['epochs']:.2f} epochs, {t['seconds']:.1f} s "
              f"({t['samples_per_second']:.1f} windows/s), {t['examples']} sentences",
              "- metrics: entity-level micro precision/recall/F1 (seqeval), token accuracy over words", ""]
    lines += ["## Metrics", "", "| split | sentences | mode | precision | recall | F1 | token acc. |",
              "|---|---:|---|---:|---:|---:|---:|"]
    for split, m in r["evaluation"].items():
        for mode in ("default", "strict"):
            x = m[mode]
            lines.append(f"| {split} | {m['n']} | {mode} | {x['precision']:.4f} | {x['recall']:.4f} | "
                         f"{x['f1']:.4f} | {x['token_accuracy']:.4f} |")
    lines.append("")
    for split, m in r["evaluation"].items():
        lines += [f"### Per entity type ({split}, {m['mode']} mode)", "", *format_ner_table(m), "",
                  "```", format_confusion(m["confusion"]["matrix"], m["confusion"]["labels"]), "```", ""]
    ex = r.get("example")
    if ex:
        lines += [f"## Example (aggregation `{ex['aggregation']}`)", "", f"> {ex['text']}", "",
                  "| span | type | score | start | end |", "|---|---|---:|---:|---:|"]
        lines += [f"| {e['word']} | {e['entity_group']} | {e['score']:.3f} | {e['start']} | {e['end']} |"
                  for e in ex["entities"]] or ["| (no entities) | | | | |"]
        lines.append("")
    lines += ["![entity-type confusion](confusion_matrix.png)", "", "![learning curve](learning_curve.png)", "",
              "## Parameters", "", "```", format_param_table(r["params"], r["method"]), "```", "",
              "## Token lengths (whole sentences)", "", "```"]
    lines += [format_stats(k, v) + f"  windows={v.get('windows')}" for k, v in r["token_stats"].items()]
    lines += ["```", ""]
    if r.get("newly_initialised"):
        lines += ["## Newly initialised weights", "", ", ".join(r["newly_initialised"]), ""]
    return "\n".join(lines)


def ner_model_card(run: Path, info: dict, report: dict) -> None:
    """README.md: what the run is, how well it did, how to load it with plain transformers/peft."""
    test = report["evaluation"].get("test") or report["evaluation"].get("validation", {})
    labels = info["labels"]
    load = (f"```python\n{card_code(info, run, 'AutoModelForTokenClassification')}\n"
            "from transformers import pipeline\n\n"
            'ner = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="first")\n'
            'print(ner("Apple Inc. was founded by Steve Jobs in Cupertino, California."))\n```')
    note = f"\n**Note:** {report['note']}.\n" if report.get("note") else ""
    text = f"""---
library_name: {library_name(info)}
pipeline_tag: token-classification
base_model: {info['base_model']}
---
# {run.name}

Named-entity tagger fine-tuned by tunesmith from `{info['base_model']}` with method `{info['method']}`
on `{info['data']}`. Labels (IOB2): {', '.join(labels)}.
{note}
Entity F1 {test.get('f1', float('nan')):.4f} (precision {test.get('precision', float('nan')):.4f}, recall
{test.get('recall', float('nan')):.4f}; seqeval {test.get('mode', 'default')} mode) on {test.get('n', 0)} sentences.
Full report: `report.md`.

## Load it without tunesmith

{load}

Sentences longer than {info.get('max_length', 128)} tokens were read in windows overlapping by
{info.get('stride', 32)} tokens.
"""
    (run / "README.md").write_text(text, encoding="utf-8")
