"""The one report and model-card writer, parametrised by task: report.json, report.md (the task's
Markdown body, evaluate/markdown.py), the confusion PNG where the task has one, the learning curve,
and README.md (the model card) whose front matter, Auto class and loading code come from the task
and method records."""
from __future__ import annotations

from pathlib import Path

from .. import runs
from ..adapt.registry import card_code, library_name
from ..tasks.registry import get as get_task
from ..tasks.skeleton import held_out
from . import markdown
from .plots import confusion_png, learning_curve_png

MARKDOWN = {"classification": markdown.classification_markdown,
            "token-classification": markdown.ner_markdown, "generation": markdown.generation_markdown}


def confusion(report: dict) -> tuple | None:
    """(matrix, labels, title) of the main held-out split, for the tasks that have one."""
    main = held_out(report["evaluation"])
    if not main:
        return None
    if "confusion_matrix" in main:  # classification
        return main["confusion_matrix"], main["labels"], f"Confusion matrix ({main['split']}, n={main['n']})"
    if main.get("confusion", {}).get("labels"):  # NER: entity types
        return main["confusion"]["matrix"], main["confusion"]["labels"], \
            f"Entity types ({main['split']}; O = missed / spurious)"
    return None


def write_report(run: Path, report: dict, metric: str) -> None:
    """report.json + report.md + confusion_matrix.png (where the task has one) + learning_curve.png."""
    runs.write_json(run / "report.json", report)
    cm = confusion(report)
    if cm:
        confusion_png(cm[0], cm[1], run / "confusion_matrix.png", cm[2])
    learning_curve_png(runs.read_metrics(run), run / "learning_curve.png", metric)
    (run / "report.md").write_text(MARKDOWN[report["task"]](report), encoding="utf-8")


def distilled_from(info: dict) -> str:
    """The model card's line naming the teacher of a distilled run (empty otherwise)."""
    d = info.get("distillation")
    if not d:
        return ""
    extra = f", plus the unlabelled texts of `{d['unlabelled']}`" if d.get("unlabelled") else ""
    return (f"Distilled from the teacher run `{d['teacher']}`: trained on its soft targets (temperature "
            f"{d['temperature']}, weight {d['alpha']}) and the gold labels (weight {1 - d['alpha']:g}){extra}.\n\n")


def _nan(m: dict, key: str) -> float:
    return m.get(key, float("nan"))


def classification_card(run: Path, info: dict, report: dict, test: dict) -> tuple[str, str, str]:
    summary = (f"Text classifier fine-tuned by tunesmith from `{info['base_model']}` with method `{info['method']}`\n"
               f"on `{info['data']}`. Labels: {', '.join(info['labels'])}.\n\n"
               f"{distilled_from(info)}Test accuracy {_nan(test, 'accuracy'):.4f}, F1 {_nan(test, 'f1'):.4f}\n"
               f"({test.get('n', 0)} examples). Full report: `report.md`.")
    return summary, "", f"Inputs were truncated to {info.get('max_length', 128)} tokens in training."


def ner_card(run: Path, info: dict, report: dict, test: dict) -> tuple[str, str, str]:
    note = f"\n**Note:** {report['note']}.\n" if report.get("note") else ""
    summary = (f"Named-entity tagger fine-tuned by tunesmith from `{info['base_model']}` with method `{info['method']}`\n"
               f"on `{info['data']}`. Labels (IOB2): {', '.join(info['labels'])}.\n{note}\n"
               f"Entity F1 {_nan(test, 'f1'):.4f} (precision {_nan(test, 'precision'):.4f}, recall\n"
               f"{_nan(test, 'recall'):.4f}; seqeval {test.get('mode', 'default')} mode) on {test.get('n', 0)} sentences.\n"
               "Full report: `report.md`.")
    code = ("from transformers import pipeline\n\n"
            'ner = pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="first")\n'
            'print(ner("Apple Inc. was founded by Steve Jobs in Cupertino, California."))\n')
    footer = (f"Sentences longer than {info.get('max_length', 128)} tokens were read in windows overlapping by\n"
              f"{info.get('stride', 32)} tokens.")
    return summary, code, footer


def generation_card(run: Path, info: dict, report: dict, test: dict) -> tuple[str, str, str]:
    ppl = " ".join(f"{s}: {m['before']['perplexity']:.2f} -> {m['after']['perplexity']:.2f}."
                   for s, m in report["evaluation"].items())
    summary = (f"Causal language model fine-tuned by tunesmith from `{info['base_model']}` with method `{info['method']}`\n"
               f"on `{info['data']}` ({info.get('kind')}). Held-out perplexity before -> after: {ppl}\n"
               "Full report with sample generations: `report.md`.")
    return summary, "", f'Generate with `tunesmith generate {run} "Your prompt"` or `model.generate(...)`.'


CARDS = {"classification": classification_card, "token-classification": ner_card, "generation": generation_card}


def model_card(run: Path, info: dict, report: dict) -> None:
    """README.md in the run: what it is, how well it did, how to load it without tunesmith."""
    task = get_task(info["task"])
    test = held_out(report["evaluation"], {})
    summary, extra_code, footer = CARDS[task.name](run, info, report, test)
    load = f"```python\n{card_code(info, run, task.auto)}\n{extra_code}```"
    text = f"""---
library_name: {library_name(info)}
pipeline_tag: {task.pipeline_tag}
base_model: {info['base_model']}
---
# {run.name}

{summary}

## Load it without tunesmith

{load}

{footer}
"""
    (run / "README.md").write_text(text, encoding="utf-8")
