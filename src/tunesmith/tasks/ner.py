"""The token-classification (NER) pipeline: CoNLL/JSONL data -> scheme check -> sub-token
alignment -> training -> entity-level evaluation (seqeval) -> artifacts and report."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from .. import budget, runs
from ..adapt import apply_method, format_param_table, param_table
from ..config import FinetuneConfig
from ..data.conll import label_list, normalise, read_ner_file
from ..data.ner_align import IGNORE, encode_ner, words_from_windows
from ..data.news_ner import NOTE, load_news_ner, read_split_dir
from ..data.stats import format_stats, length_stats
from ..errors import TunesmithError
from ..evaluate.ner_metrics import entity_confusion, ner_metrics
from ..evaluate.report import model_card, write_report
from ..infer.ner_spans import predict_entities
from ..models import base_path, load_for_task, load_tokenizer, resolve
from ..trainer import RunLogCallback, TunesmithTrainer, announce_precision, quiet_trainer, training_args
from .skeleton import RunContext, finish, other_process, say, start, train

TEXTBOOK = "Apple Inc. was founded by Steve Jobs in Cupertino, California."


# ----------------------------------------------------------------------------- data

def _split(examples: list[dict], val: float, test: float, seed: int) -> dict[str, list[dict]]:
    rows = list(examples)
    random.Random(seed).shuffle(rows)
    n_test, n_val = round(len(rows) * test), round(len(rows) * val)
    out = {"test": rows[:n_test], "validation": rows[n_test:n_test + n_val], "train": rows[n_test + n_val:]}
    return {k: v for k, v in out.items() if v}


def read_splits(cfg: FinetuneConfig) -> tuple[dict[str, list[dict]], dict, dict[str, str]]:
    """Raw splits, data info, and the source (file) of each split for error messages."""
    d = cfg.data
    if d.train:
        files = {s: getattr(d, s) for s in ("train", "validation", "test") if getattr(d, s)}
        splits = {s: read_ner_file(p) for s, p in files.items()}
        if "validation" not in splits:
            parts = _split(splits["train"], d.val_size, 0.0, d.seed)
            splits["train"], splits["validation"] = parts["train"], parts.get("validation", [])
            files["validation"] = files["train"]
        return splits, {"source": files}, files
    if d.dataset == "news-ner":
        splits, info = load_news_ner(cfg.ner.news_size, d.seed)
        return splits, info, {s: f"news-ner/{s}.conll" for s in splits}
    path = Path(d.dataset)
    if path.is_dir():
        splits, info = read_split_dir(path)
        return splits, info, {s: str(path / s) for s in splits}
    if path.is_file():
        return _split(read_ner_file(path), d.val_size, d.test_size, d.seed), {"source": str(path)}, \
            {s: str(path) for s in ("train", "validation", "test")}
    raise TunesmithError(f"NER data '{d.dataset}' is neither the built-in news-ner, a directory with "
                         "train/validation/test .conll files, nor an existing .conll/.jsonl file")


def check_known_tags(examples: list[dict], labels: list[str], source) -> None:
    """Stop with file and line when a tag is one the model has no label for."""
    known = set(labels)
    for ex in examples:
        for tag, line in zip(ex["tags"], ex["_lines"]):
            if tag not in known:
                raise TunesmithError(f"{source}, line {line}: tag '{tag}' is unknown to this model "
                                     f"(labels: {', '.join(labels)})")


def load_ner_data(cfg: FinetuneConfig) -> tuple[dict[str, list[dict]], list[str], dict]:
    """Validated IOB2 splits, the label list (O, B-/I- per type), and data info."""
    splits, info, sources = read_splits(cfg)
    scheme = None
    for split, rows in splits.items():
        res = normalise(rows, scheme or cfg.ner.scheme, cfg.ner.repair, sources.get(split, split))
        scheme = scheme or res["scheme"]
        info.setdefault("repaired", {})[split] = res["repaired"]
    info["scheme"] = scheme
    rng = random.Random(cfg.data.seed)
    if cfg.data.max_train and cfg.data.max_train < len(splits["train"]):
        splits["train"] = rng.sample(splits["train"], cfg.data.max_train)
    for s in ("validation", "test"):
        if cfg.data.max_eval and s in splits and cfg.data.max_eval < len(splits[s]):
            splits[s] = rng.sample(splits[s], cfg.data.max_eval)
    splits = {k: v for k, v in splits.items() if v}
    labels = label_list([ex for rows in splits.values() for ex in rows])
    if len(labels) < 3:
        raise TunesmithError(f"{sources.get('train')}: no entity tags in the training data (only 'O')")
    info["sizes"] = {k: len(v) for k, v in splits.items()}
    return splits, labels, info


def sentence_lengths(tokenizer, examples: list[dict]) -> np.ndarray:
    """Tokens per whole sentence (special tokens included, no windows)."""
    enc = tokenizer([ex["tokens"] for ex in examples], is_split_into_words=True, truncation=False,
                    verbose=False)
    return np.asarray([len(x) for x in enc["input_ids"]], dtype=np.int64)


def to_dataset(examples: list[dict], tokenizer, label2id: dict, cfg: FinetuneConfig):
    from datasets import Dataset

    cols = encode_ner(tokenizer, examples, label2id, cfg.model.max_length, cfg.ner.stride,
                      cfg.ner.label_all_subtokens)
    return Dataset.from_dict({k: cols[k] for k in ("input_ids", "attention_mask", "labels", "length")})


# ----------------------------------------------------------------------------- prediction

@torch.inference_mode()
def predict_word_tags(model, tokenizer, examples: list[dict], max_length: int = 128, stride: int = 32,
                      batch_size: int = 32) -> list[list[str]]:
    """One predicted IOB2 tag per word of each example (long sentences in overlapping windows).

    Example:
        >>> predict_word_tags(model, tok, [{"tokens": ["Steve", "Jobs", "spoke"]}])
        [['B-PER', 'I-PER', 'O']]
    """
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    dummy = {"tokens": None, "tags": None}
    exs = [{**dummy, "tokens": ex["tokens"], "tags": ["O"] * len(ex["tokens"])} for ex in examples]
    cols = encode_ner(tokenizer, exs, {"O": 0}, max_length, stride)
    device = next(model.parameters()).device
    model.eval()
    preds: list = [None] * len(cols["input_ids"])
    order = sorted(range(len(preds)), key=lambda i: cols["length"][i])  # less padding per batch
    for lo in range(0, len(order), batch_size):
        idx = order[lo:lo + batch_size]
        batch = tokenizer.pad([{"input_ids": cols["input_ids"][i], "attention_mask": cols["attention_mask"][i]}
                               for i in idx], return_tensors="pt")
        ids = model(**{k: v.to(device) for k, v in batch.items()}).logits.argmax(-1).cpu()  # (batch, seq)
        for row, i in enumerate(idx):
            preds[i] = [id2label[int(x)] for x in ids[row, :cols["length"][i]]]
    words = words_from_windows(cols, preds, len(exs), [len(ex["tokens"]) for ex in exs])
    return [[t or "O" for t in sent] for sent in words]


def evaluate_examples(model, tokenizer, examples: list[dict], cfg: FinetuneConfig, split: str) -> dict:
    pred = predict_word_tags(model, tokenizer, examples, cfg.model.max_length, cfg.ner.stride,
                             cfg.train.eval_batch_size)
    gold = [ex["tags"] for ex in examples]
    default, strict = ner_metrics(gold, pred), ner_metrics(gold, pred, strict=True)
    cm, names = entity_confusion(gold, pred)
    main = strict if cfg.ner.strict else default
    return {"split": split, "n": len(examples), **{k: main[k] for k in
            ("precision", "recall", "f1", "token_accuracy", "entities", "mode", "per_type")},
            "default": default, "strict": strict, "confusion": {"matrix": cm, "labels": names}}


def compute_metrics_fn(labels: list[str]):
    """Validation metrics during training, per window (the final report is per sentence)."""
    def compute(pred) -> dict:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        ids = np.argmax(logits, axis=-1)
        gold, out = [], []
        for p_row, l_row in zip(ids, pred.label_ids):
            keep = l_row != IGNORE
            gold.append([labels[i] for i in l_row[keep]])
            out.append([labels[i] for i in p_row[keep]])
        m = ner_metrics(gold, out)
        return {"f1": m["f1"], "precision": m["precision"], "recall": m["recall"], "accuracy": m["token_accuracy"]}
    return compute


# ----------------------------------------------------------------------------- the pipeline

def finetune_ner(cfg: FinetuneConfig, run: Path) -> dict:
    """Fine-tune a token classifier, evaluate entity-level and write a complete run directory."""
    torch.manual_seed(cfg.train.seed)
    ctx = RunContext(cfg, run, resolve(cfg.model.name), "token-classification")
    splits, labels, info = load_ner_data(cfg)
    say(f"data: {cfg.data.train or cfg.data.dataset} -> " + ", ".join(f"{k} {v}" for k, v in info["sizes"].items())
        + f" sentences; scheme {info['scheme'].upper()}; {len(labels)} labels")
    if info.get("note"):
        say(f"  NOTE: {info['note']}")
    ctx.tokenizer = tokenizer = load_tokenizer(ctx.ref)
    if not getattr(tokenizer, "is_fast", False):
        raise TunesmithError(f"{ctx.ref.spec}: NER needs a fast tokenizer (word ids and offsets)")
    label2id = {l: i for i, l in enumerate(labels)}
    datasets = {s: to_dataset(rows, tokenizer, label2id, cfg) for s, rows in splits.items()}
    stats = {s: {**length_stats(sentence_lengths(tokenizer, splits[s]), cfg.model.max_length),
                 "windows": len(ds)} for s, ds in datasets.items()}
    say(f"token lengths (max_length {cfg.model.max_length}; longer sentences are read in windows "
        f"overlapping by {cfg.ner.stride}):")
    for name, st in stats.items():
        say("  " + format_stats(name, st, over="windowed beyond") + f"  windows={st['windows']}")
    runs.write_json(run / "token_stats.json", stats)

    model, new_weights = load_for_task(ctx.ref, "token-classification", labels)
    ctx.model = model = apply_method(model, cfg.method, "token-classification")
    ctx.params = param_table(model)
    say(format_param_table(ctx.params, cfg.method.name))
    runs.write_json(run / "params.json", ctx.params)
    runs.write_json(run / "labels.json", dict(enumerate(labels)))
    precision = announce_precision(cfg.train, say)
    start(ctx, {"precision": precision, "base_model": cfg.model.name,
                "base_model_path": base_path(ctx.ref), "base_model_source": ctx.ref.source,
                "data": cfg.data.train or cfg.data.dataset, "labels": labels, "scheme": "iob2",
                "max_length": cfg.model.max_length, "stride": cfg.ner.stride, "aggregation": cfg.ner.aggregation})
    ctx.trainer = build_trainer(cfg, run, model, tokenizer, datasets["train"], datasets.get("validation"), labels)
    n_val = len(datasets.get("validation") or [])
    budget.maybe_fit(ctx.trainer, run, cfg.train, len(datasets["train"]), n_val, 2 * n_val, cfg.output.resume, say)
    if not train(ctx):  # the main process evaluates and writes the run files
        return other_process(ctx)
    return finish_ner(ctx, splits, labels, info, stats, new_weights)


def build_trainer(cfg, run, model, tokenizer, train_ds, val_ds, labels):
    from transformers import DataCollatorForTokenClassification, EarlyStoppingCallback

    args = training_args(cfg.train, run, cfg.learning_rate(), len(train_ds), val_ds is not None)
    callbacks = [RunLogCallback(run, cfg.train.metric)]
    if cfg.train.early_stopping_patience and val_ds is not None:
        callbacks.append(EarlyStoppingCallback(cfg.train.early_stopping_patience))
    trainer = TunesmithTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                               data_collator=DataCollatorForTokenClassification(tokenizer),
                               processing_class=tokenizer, compute_metrics=compute_metrics_fn(labels),
                               callbacks=callbacks)
    trainer.layer_lr_decay = cfg.train.layer_lr_decay
    trainer.head_lr = cfg.head_learning_rate()
    return quiet_trainer(trainer)


def finish_ner(ctx: RunContext, splits: dict, labels: list[str], info: dict, stats: dict,
               new_weights: list[str]) -> dict:
    cfg, run = ctx.cfg, ctx.run
    merged = runs.save_artifacts(run, ctx.model, ctx.tokenizer, cfg.method.name, cfg.output.merge)
    merged.eval()
    evaluation = {s: evaluate_examples(merged, ctx.tokenizer, splits[s], cfg, s)
                  for s in ("validation", "test") if splits.get(s)}
    example = predict_entities(merged, ctx.tokenizer, [TEXTBOOK], cfg.ner.aggregation, cfg.model.max_length,
                               cfg.ner.stride)[0]
    report = {
        "task": "token-classification", "model": cfg.model.name, "data": cfg.data.train or cfg.data.dataset,
        "method": cfg.method.name, "labels": labels, "data_info": info, "learning_rate": cfg.learning_rate(),
        "params": ctx.params, "token_stats": stats, "newly_initialised": new_weights, "evaluation": evaluation,
        "note": info.get("note") or (NOTE if cfg.data.dataset == "news-ner" and not cfg.data.train else None),
        "example": {"text": TEXTBOOK, "aggregation": cfg.ner.aggregation, "entities": example},
        "training": ctx.training(len(splits["train"])),
    }
    write_report(run, report, cfg.train.metric)
    model_card(run, ctx.info, report)
    finish(ctx, {"test": evaluation.get("test", {}).get("f1")})
    for split, m in evaluation.items():
        say(f"{split}: entity F1 {m['f1']:.4f}  precision {m['precision']:.4f}  recall {m['recall']:.4f}  "
            f"token accuracy {m['token_accuracy']:.4f}  ({m['mode']} mode, {m['entities']} entities)")
    say(f"example: {TEXTBOOK}\n  " + "; ".join(f"{e['word']} [{e['entity_group']} {e['score']:.2f} "
                                               f"{e['start']}:{e['end']}]" for e in example))
    if report["note"]:
        say(f"NOTE: {report['note']}")
    return report


def evaluate_file(run: str | Path, path: str | Path, scheme: str = "auto", repair: bool = False,
                  strict: bool = False) -> dict:
    """Entity-level metrics of a finished NER run on a labelled file (CoNLL or JSONL).

    Tags the model has no label for stop with the file and line.

    Example:
        >>> evaluate_file("runs/ner", "test.conll")["f1"]
        0.87
    """
    from ..infer.predictor import load_run_model
    from ..models import ModelRef

    run = Path(run)
    info = runs.load_run(run, task="token-classification")
    examples = read_ner_file(path)
    normalise(examples, scheme, repair, path)
    check_known_tags(examples, info["labels"], path)
    model = load_run_model(run, info)
    tokenizer = load_tokenizer(ModelRef(str(run), str(run / "model"), "run", run=run))
    pred = predict_word_tags(model, tokenizer, examples, info.get("max_length", 128), info.get("stride", 32))
    return {"data": str(path), **ner_metrics([ex["tags"] for ex in examples], pred, strict=strict)}
