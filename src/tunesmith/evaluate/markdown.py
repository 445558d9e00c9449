"""The Markdown body of report.md, one function per task (what differs between tasks' reports;
evaluate/report.py writes them all the same way)."""
from __future__ import annotations

from ..adapt.params import format_param_table
from ..data.stats import format_stats
from .metrics import format_confusion
from .ner_metrics import format_ner_table


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
