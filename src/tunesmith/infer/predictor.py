"""The Predictor: load a model once, run it fast, return results in input order.

Speed comes from three things measured in `tunesmith bench infer` (docs/inference.md): texts are
tokenised in one batched call, sorted by length and grouped under a token budget (so almost no
padding is computed), and the forward pass runs under inference mode on an engine from
`infer/fast.py` (fp32 reference, or a faster path such as int8 / ONNX Runtime).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from .. import runs
from ..errors import TunesmithError
from ..models import ModelRef, load_for_task, load_tokenizer, resolve
from .batching import Ragged, in_input_order, pad_batch, token_budget_batches
from ..precision import resolve_device
from .fast import build_engine
from .verify import verified_paths
from .threads import configure_threads

from ..tasks.registry import REGISTRY as TASK_RECORDS, canonical

# Derived from the task records (tasks/registry.py), for code that only needs names.
TASKS = tuple(TASK_RECORDS)
TASK_ALIASES = {alias: t.name for t in TASK_RECORDS.values() for alias in t.aliases}
ARCH_TASKS = {suffix: t.name for t in TASK_RECORDS.values() for suffix in t.arch_suffixes}  # GPT2LMHeadModel: generation


def canonical_task(task: str) -> str:
    try:
        return canonical(task)
    except TunesmithError:
        raise TunesmithError(f"task '{task}' has no predictor; tasks: {', '.join(TASKS)}") from None


def _auto_class(task: str):
    return TASK_RECORDS[canonical_task(task)].auto_class()


def load_run_model(run: Path, info: dict, merge: bool = True):
    """The trained model of a run; how it loads (whole model, peft adapter merged where peft can,
    adapter layers) is its method's record (adapt/registry.py)."""
    from ..adapt.registry import load_run_model as load

    return load(Path(run), info, _auto_class(info["task"]), merge)


def guess_task(config) -> str:
    """The task a model directory was saved for, from its architecture name (classification if unknown)."""
    for arch in config.architectures or []:
        for suffix, task in ARCH_TASKS.items():
            if arch.endswith(suffix):
                return task
    return "classification"


def default_max_length(tokenizer, config, cap: int = 512) -> int:
    limits = [cap, getattr(config, "max_position_embeddings", None) or cap]
    if 0 < (tokenizer.model_max_length or 0) < 1_000_000:
        limits.append(tokenizer.model_max_length)
    return min(limits)


class Predictor:
    """Loads a run, built-in, local path or hub id once; predicts strings or lists in batches.

    Example:
        >>> p = Predictor.load("runs/my-run")
        >>> p.classify(["a gorgeous, witty film", "dull and lifeless"])
        [{'label': 'positive', 'score': 0.97}, {'label': 'negative', 'score': 0.95}]
        >>> p.predict("a gorgeous, witty film")   # dispatches on the run's task
        {'label': 'positive', 'score': 0.97}
    """

    def __init__(self, model, tokenizer, task: str = "classification", max_length: int = 128,
                 max_tokens: int = 2048, device: str | None = None, fast: str = "fp32",
                 threads: int | None = None, max_batch: int = 256, adapter: dict | None = None,
                 n_texts: int | None = None, verified=frozenset()):
        self.device = resolve_device(device)  # None / "auto": cuda when available
        if self.device.type == "cpu":
            self.threads = configure_threads(threads)
        self.task = canonical_task(task)
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.max_tokens = max_tokens
        self.max_batch = max_batch
        self.adapter = adapter  # {"dir", "base"} of an unmerged LoRA adapter, for multi-adapter serving
        # n_texts: how many texts are coming, when known (a streamed file); --fast auto compiles
        # for long inputs only, where the one-off compile time pays off; verified: the inexact
        # paths a run's held-out check cleared for auto (infer/verify.py)
        self.engine = build_engine(fast, model.to(self.device).eval(), self.device, n_texts, verified)
        self.model = self.engine.module if self.engine.module is not None else model
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)] \
            if TASK_RECORDS[self.task].labelled else None

    @classmethod
    def load(cls, spec: str | Path, task: str | None = None, **kwargs) -> "Predictor":
        """A run directory, built-in name, local model directory or hub id -> Predictor.

        kwargs go to the constructor; `fast` defaults to exact fp32 here (evaluation, the server,
        tests compare against plain transformers); `tunesmith predict` passes fast="auto"."""
        path = Path(spec)
        if path.is_dir() and (path / "run.json").is_file():
            info = runs.load_run(path)
            run_task = canonical_task(task or info["task"])
            model = load_run_model(path, {**info, "task": run_task})
            tok = load_tokenizer(ModelRef(str(spec), str(path / "model"), "run", run=path))
            kwargs.setdefault("max_length", info.get("max_length") or default_max_length(tok, model.config))
            kwargs.setdefault("verified", verified_paths(path))
            from ..adapt.registry import REGISTRY

            if getattr(REGISTRY.get(info.get("method", "")), "servable", False):
                kwargs.setdefault("adapter", {"dir": str(path / "model"), "base": info.get("base_model_path")})
            return cls(model, prepare_tokenizer(tok, run_task), run_task, **kwargs)
        ref = resolve(str(spec))
        if task is None:
            from ..models import load_config

            task = guess_task(load_config(ref))
        task = canonical_task(task)
        if task == "fill-mask":  # the built-in encoder gets its trained MLM head, as in `tunesmith fill-mask`
            from ..mlm_cache import load_masked_lm

            model, tok, _ = load_masked_lm(str(spec))
        else:
            model, _ = load_for_task(ref, task)
            tok = load_tokenizer(ref)
        kwargs.setdefault("max_length", default_max_length(tok, model.config))
        return cls(model, prepare_tokenizer(tok, task), task, **kwargs)

    # ---- batching -------------------------------------------------------------------------
    def _encode(self, texts: list[str]):
        return self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)

    def _batches(self, texts: list[str]):
        """(input positions, padded batch on the device) per token-budget batch, longest first."""
        enc = self._encode(texts)
        feats = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        lengths = [len(ids) for ids in feats["input_ids"]]
        pad_id = self.tokenizer.pad_token_id or 0
        ragged = Ragged(feats)
        # a batch a quarter full also closes where the length drops: most batches hold one length
        for idx in token_budget_batches(lengths, self.max_tokens, self.max_batch, self.max_tokens // 4):
            batch = pad_batch(ragged, idx, pad_id)
            yield idx, {k: v.to(self.device) for k, v in batch.items()}

    def _chunked(self, fn: Callable[[list[str]], list], texts: list[str], extra: int = 0,
                 max_batch: int | None = None) -> list:
        """Run a task function on length-sorted chunks under the token budget, answers in input order.

        `extra` tokens are added to every length (generation: the new tokens also take memory)."""
        if not texts:
            return []
        lengths = [len(ids) + extra for ids in self._encode(texts)["input_ids"]]
        done = [(idx, fn([texts[i] for i in idx]))
                for idx in token_budget_batches(lengths, self.max_tokens, max_batch or self.max_batch)]
        return in_input_order(done, len(texts))

    # ---- classification -------------------------------------------------------------------
    @torch.inference_mode()
    def logits(self, texts: list[str]) -> torch.Tensor:
        """Logits for each text, in input order: (n_texts, num_labels)."""
        out = torch.empty((len(texts), self.model.config.num_labels), dtype=torch.float32)
        if not len(texts):
            return out
        for idx, batch in self._batches(list(texts)):
            out[idx] = self.engine.forward(batch).cpu()  # (batch, num_labels)
        return out

    def classify(self, texts: str | list[str], all_scores: bool = False) -> list[dict] | dict:
        """Label and probability per text (and every label's probability with all_scores)."""
        single, items = _as_list(texts)
        if not items:
            return []
        probs = torch.softmax(self.logits(items), dim=-1)
        results = []
        for row in probs:
            best = int(row.argmax())
            res = {"label": self.labels[best], "score": round(float(row[best]), 6)}
            if all_scores:
                res["scores"] = {self.labels[i]: round(float(v), 6) for i, v in enumerate(row)}
            results.append(res)
        return results[0] if single else results

    # ---- other tasks: pure task functions, run on length-sorted chunks ----------------------
    def _torch_model(self):
        if self.engine.module is None:
            raise TunesmithError(f"the '{self.engine.name}' path serves classification only; "
                                 f"use --fast fp32, int8 or bf16 for {self.task}")
        return self.engine.module

    @torch.inference_mode()
    def entities(self, texts: str | list[str], aggregation: str = "simple") -> list[list[dict]] | list[dict]:
        """Entity spans per text: [{'entity', 'start', 'end', 'word', 'score'}, ...]."""
        from .ner_spans import predict_entities

        single, items = _as_list(texts)
        model = self._torch_model()
        out = self._chunked(lambda chunk: predict_entities(model, self.tokenizer, chunk, aggregation,
                                                           max_length=self.max_length, batch_size=len(chunk)),
                            items)
        return out[0] if single else out

    @torch.inference_mode()
    def fill_mask(self, texts: str | list[str], top_k: int = 5) -> list:
        """Top-k fillers of the mask token in each text."""
        from .fill_mask import fill_mask

        single, items = _as_list(texts)
        model = self._torch_model()
        out = self._chunked(lambda chunk: fill_mask(model, self.tokenizer, chunk, top_k=top_k), items)
        return out[0] if single else out

    @torch.inference_mode()
    def generate(self, prompts: str | list[str], max_new_tokens: int = 50, batch_size: int = 16,
                 **kwargs) -> list:
        """Continuations of each prompt (batched, left-padded, with a KV cache): a list of
        `num_return_sequences` strings per prompt. kwargs go to `infer.generation.generate`."""
        from .generation import generate

        single, items = _as_list(prompts)
        model = self._torch_model()
        run = lambda chunk: generate(model, self.tokenizer, chunk, max_new_tokens=max_new_tokens,
                                     batch_size=len(chunk), **kwargs)
        out = self._chunked(run, items, extra=max_new_tokens, max_batch=batch_size)
        return out[0] if single else out

    def predict(self, texts: str | list[str], **kwargs):
        """Whatever the task is: classify / entities / fill_mask / generate."""
        return getattr(self, TASK_RECORDS[self.task].predict)(texts, **kwargs)  # the task's record

    def records(self, texts: list[str], **kwargs) -> list[dict]:
        """One JSON-able dict per text (what `tunesmith predict` writes)."""
        key = TASK_RECORDS[self.task].record_key
        out = self.predict(list(texts), **kwargs) if texts else []
        if key is None:
            return out
        return [r if isinstance(r, dict) else {key: r} for r in out]


def prepare_tokenizer(tokenizer, task: str):
    """Decoders batch prompts left-padded, with a pad token (the EOS one when none exists)."""
    if task == "generation":
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
    return tokenizer


def _as_list(texts) -> tuple[bool, list[str]]:
    if isinstance(texts, str):
        return True, [texts]
    return False, list(texts)
