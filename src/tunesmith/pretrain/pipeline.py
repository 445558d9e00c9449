"""`tunesmith pretrain`: corpus -> examples -> model (continued or scratch) -> before metrics ->
Trainer -> after metrics -> a run directory whose model/ is a whole model `finetune --model RUN`
accepts."""
from __future__ import annotations

import random
from pathlib import Path

import torch

from .. import runs
from ..config import dump_yaml
from ..models import base_path, load_tokenizer, resolve
from ..tasks.skeleton import RunContext, finish, other_process, say, start, train
from ..trainer import RunLogCallback, quiet_trainer, training_args
from .collators import MaskingSpec, MLMCollator, clm_collate
from .config import PretrainConfig
from .corpus import Corpus, corpus_stats, format_corpus_stats, load_corpus
from .examples import clm_blocks, mlm_examples
from .heads import carry_pooler, init_mlm_head, load_continued, token_prior
from .metrics import clm_metrics, mlm_metrics, pseudo_perplexity
from .nsp import build_pairs, document_sentences, nsp_examples
from .report import write_pretrain_report
from .sparse import PretrainTrainer

PROBES = ["The capital of France is [MASK].", "The president signed the [MASK] into law on Monday.",
          "The film is [MASK] and the acting is wonderful.", "Shares of the company [MASK] after the report.",
          "The [MASK] was [MASK] by the police."]


def masking_spec(cfg: PretrainConfig) -> MaskingSpec:
    o = cfg.objective
    return MaskingSpec(o.mlm_probability, o.mask_replace, o.random_replace, o.whole_word)


def build_tokenizer(cfg: PretrainConfig, ref, corpus: Corpus):
    if cfg.model.init == "scratch" and cfg.model.tokenizer != "base":
        from .scratch import train_tokenizer

        say(f"training a {cfg.model.tokenizer} tokenizer (vocab {cfg.model.vocab_size}) on the training split")
        return train_tokenizer(cfg.model.tokenizer, corpus.train, cfg.model.vocab_size, cfg.objective.name)
    tok = load_tokenizer(ref)
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token  # causal LMs often ship without one; blocks never pad anyway
    return tok


def build_examples(cfg: PretrainConfig, tokenizer, docs: list[str], seed: int) -> list[dict]:
    """Examples of one split for the objective (NSP pairs are drawn with `seed`)."""
    o, m = cfg.objective, cfg.model
    if o.name == "clm":
        return clm_blocks(tokenizer, docs, o.block_size)
    if o.name == "mlm":
        return mlm_examples(tokenizer, docs, m.max_length, group=o.group_texts)
    pairs = build_pairs(document_sentences(docs), o.nsp_pairs_per_doc, random.Random(seed))
    return nsp_examples(tokenizer, pairs, m.max_length)


def build_model(cfg: PretrainConfig, ref, tokenizer, corpus: Corpus):
    """(model, newly initialised weight names, what the head init did)."""
    if cfg.model.init == "scratch":
        import transformers

        from .scratch import scratch_config

        conf = scratch_config(cfg.objective.name, cfg.model.size, tokenizer,
                              max(512, cfg.objective.block_size, cfg.model.max_length))
        auto = {"mlm": transformers.BertForMaskedLM, "mlm+nsp": transformers.BertForPreTraining,
                "clm": transformers.GPT2LMHeadModel}[cfg.objective.name]
        torch.manual_seed(cfg.train.seed)
        return auto(conf), ["(all: from scratch)"], []
    model, new = load_continued(ref, cfg.objective.name)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    init = init_mlm_head(model, new, token_prior(tokenizer, corpus.train)) if cfg.objective.name != "clm" else []
    return model, new, init


def evaluate(cfg: PretrainConfig, model, tokenizer, examples: list[dict]) -> dict:
    if cfg.objective.name == "clm":
        return clm_metrics(model, examples)
    res = mlm_metrics(model, tokenizer, examples, masking_spec(cfg), seed=cfg.corpus.seed)
    res.update(pseudo_perplexity(model, tokenizer, examples[: max(1, len(examples) // 4)]))
    return res


def probes(cfg: PretrainConfig, model, tokenizer) -> list[dict]:
    if cfg.objective.name == "clm":
        return []
    from ..infer.fill_mask import fill_mask

    preds = fill_mask(model, tokenizer, PROBES, top_k=5)
    return [{"text": t, "masks": p} for t, p in zip(PROBES, preds)]


def build_trainer(cfg: PretrainConfig, run: Path, model, tokenizer, train_ex, eval_ex):
    from datasets import Dataset

    args = training_args(cfg.train, run, cfg.learning_rate(), len(train_ex), True,
                         greater_is_better=False, metric="loss")
    args.remove_unused_columns = False  # the collator needs word_ids; it drops what the model can't take
    args.prediction_loss_only = True  # else evaluation gathers (examples x seq x vocab) logits in memory
    if cfg.objective.name == "clm" or cfg.objective.group_texts:
        args.train_sampling_strategy = "random"  # every block has the same length
    if cfg.objective.name == "clm":
        collate = clm_collate
    else:
        spec = masking_spec(cfg)
        collate = MLMCollator.from_tokenizer(tokenizer, spec, torch.Generator().manual_seed(cfg.train.seed))
    trainer = PretrainTrainer(model=model, args=args, train_dataset=Dataset.from_list(train_ex),
                               eval_dataset=Dataset.from_list(eval_ex), data_collator=_drop_length(collate),
                               processing_class=tokenizer, callbacks=[RunLogCallback(run, "loss")])
    trainer.layer_lr_decay = cfg.train.layer_lr_decay
    trainer.head_lr = cfg.train.head_lr
    return quiet_trainer(trainer)


def _drop_length(collate):
    def call(features: list[dict]) -> dict:
        return collate([{k: v for k, v in f.items() if k != "length"} for f in features])
    return call


def prepare_run(cfg: PretrainConfig) -> Path:
    run = Path(cfg.output.dir) if cfg.output.dir else runs.default_run_dir(
        cfg.model.name, cfg.corpus.source, cfg.objective.name.replace("+", "-"))
    cfg.output.dir = str(run)
    runs.prepare(run, cfg.output.resume, cfg.output.overwrite)
    if runs.is_main_process():  # under accelerate launch / torchrun every process runs this
        dump_yaml(cfg, run / "config.yaml")
    return run


def pretrain(cfg: PretrainConfig) -> tuple[Path, dict]:
    """Run the whole pipeline; returns (run directory, report). The shared steps (run.json and the
    free-space check, resume with metric trimming, the main-process guard, finish) are the
    fine-tuning skeleton's (tasks/skeleton.py); the objective, collator, metrics and report are ours."""
    from .. import budget
    from ..trainer import announce_precision

    budget.start_clock()  # --time-budget counts from here
    run = prepare_run(cfg)
    say(f"run directory: {run}")
    ctx = RunContext(cfg, run, resolve(cfg.model.name), "pretrain")
    corpus = load_corpus(cfg.corpus)
    ctx.tokenizer = tokenizer = build_tokenizer(cfg, ctx.ref, corpus)
    stats = corpus_statistics(run, corpus, tokenizer)
    train_ex, eval_ex = split_examples(cfg, tokenizer, corpus)
    ctx.model, new_weights, head_init = build_model(cfg, ctx.ref, tokenizer, corpus)
    if new_weights:
        say(f"newly initialised: {', '.join(new_weights)}" + (f" ({'; '.join(head_init)})" if head_init else ""))
    ctx.params = count_params(ctx.model)
    precision = announce_precision(cfg.train, say)
    start(ctx, run_info(cfg, ctx.ref, precision))
    before = {"metrics": evaluate(cfg, ctx.model, tokenizer, eval_ex), "fill_mask": probes(cfg, ctx.model, tokenizer)}
    say("before: " + _brief(before["metrics"]))
    ctx.trainer = build_trainer(cfg, run, ctx.model, tokenizer, train_ex, eval_ex)
    budget.maybe_fit(ctx.trainer, run, cfg.train, len(train_ex), len(eval_ex), 2 * len(eval_ex), cfg.output.resume, say)
    if not train(ctx):  # the main process evaluates and writes the model and report, once
        return run, other_process(ctx)
    report = finish_pretrain(ctx, corpus, stats, {"train": len(train_ex), "eval": len(eval_ex)},
                             before, eval_ex, new_weights, head_init)
    return run, report


def corpus_statistics(run: Path, corpus: Corpus, tokenizer) -> dict:
    """Token statistics of both splits, printed and written to corpus_stats.json."""
    stats = {"train": corpus_stats(corpus.train, tokenizer), "eval": corpus_stats(corpus.eval, tokenizer)}
    for name, s in stats.items():
        say("  " + format_corpus_stats(name, s))
    runs.write_json(run / "corpus_stats.json", {"info": corpus.info, **stats})
    return stats


def split_examples(cfg: PretrainConfig, tokenizer, corpus: Corpus) -> tuple[list[dict], list[dict]]:
    """(training examples, held-out examples); an error that says why when either is empty."""
    train_ex = build_examples(cfg, tokenizer, corpus.train, cfg.train.seed)
    eval_ex = build_examples(cfg, tokenizer, corpus.eval, cfg.corpus.seed + 1)[: cfg.objective.eval_examples]
    if not train_ex or not eval_ex:
        from ..errors import TunesmithError

        raise TunesmithError(f"{cfg.corpus.source}: no {cfg.objective.name} examples in the "
                             f"{'training' if not train_ex else 'held-out'} split (too little text; NSP needs "
                             "documents of 2+ sentences, CLM needs more than block_size tokens)")
    say(f"examples: train {len(train_ex)}, held-out {len(eval_ex)} ({cfg.objective.name})")
    return train_ex, eval_ex


def count_params(model) -> dict:
    """Trainable and total parameters (every weight trains in pre-training), for the free-space check."""
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad), "total": total}


def run_info(cfg: PretrainConfig, ref, precision: dict) -> dict:
    return {"objective": cfg.objective.name, "init": cfg.model.init, "base_model": cfg.model.name,
            "base_model_path": base_path(ref), "base_model_source": ref.source,
            "corpus": cfg.corpus.source, "precision": precision}


def finish_pretrain(ctx: RunContext, corpus: Corpus, stats: dict, examples: dict, before: dict,
                    eval_ex: list[dict], new_weights: list[str], head_init: list[str]) -> dict:
    """After training, on the main process: held-out metrics again, the model, report, run.json."""
    cfg, run, model, tokenizer = ctx.cfg, ctx.run, ctx.model, ctx.tokenizer
    after = {"metrics": evaluate(cfg, model, tokenizer, eval_ex), "fill_mask": probes(cfg, model, tokenizer)}
    say("after:  " + _brief(after["metrics"]))
    (run / "model").mkdir(exist_ok=True)
    model.save_pretrained(run / "model")
    tokenizer.save_pretrained(run / "model")
    carried = carry_pooler(ctx.ref.path, run / "model", model) if cfg.model.init == "continued" else []
    if carried:
        say(f"carried over unchanged from the base (for fine-tuning): {', '.join(carried)}")
    report = {"task": "pretrain", "objective": cfg.objective.name, "model": cfg.model.name, "init": cfg.model.init,
              "corpus": corpus.info, "corpus_stats": stats, "newly_initialised": new_weights,
              "head_init": head_init, "carried_from_base": carried,
              "masking": vars(masking_spec(cfg)) if cfg.objective.name != "clm" else None,
              "examples": examples, "before": before, "after": after,
              "training": {"steps": ctx.steps, "seconds": round(ctx.seconds, 2),
                           "train_loss": ctx.result.training_loss, "learning_rate": cfg.learning_rate(),
                           "epochs": float(ctx.result.metrics.get("epoch", cfg.train.epochs))}}
    write_pretrain_report(run, report)
    finish(ctx, {"eval_loss_after": after["metrics"]["loss"]})
    say(f"report: {run / 'report.md'}")
    return report


def _brief(m: dict) -> str:
    keys = ("loss", "perplexity", "top1", "top5", "pseudo_perplexity", "nsp_accuracy")
    return "  ".join(f"{k} {m[k]:.4f}" for k in keys if k in m)
