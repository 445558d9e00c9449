"""One record per task: every table that depends on the task is derived from it.

A `Task` holds all of a task's facts: its transformers Auto class, peft's task type, the
architecture-name suffix that says a saved model is one, how a run of it fine-tunes, is evaluated
by `tunesmith evaluate`, predicts (the Predictor's method and the key of `tunesmith predict`'s
JSON lines), which server endpoint serves it, and its model card's pipeline tag. `finetune`, the
Predictor, the server, `tunesmith evaluate`, the model cards and the tests read these records; a
new task (say extractive question answering) is one `register(...)` call plus its pipeline module.
It is paired with the method record (adapt/registry.py): a run is one task x one method.

Importing this module imports no torch or transformers (the CLI reads it for --help): functions
are named "module:function" and imported when called.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ..errors import TunesmithError


def lazy(target: str | None) -> Callable | None:
    """"tunesmith.tasks.ner:finetune_ner" -> a function importing its module on first call."""
    if target is None:
        return None
    module, _, name = target.partition(":")

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.target = target
    return call


@dataclass(frozen=True)
class Task:
    """Everything tunesmith knows about one task."""

    name: str
    auto: str  # transformers Auto class of the model with this task's head
    arch_suffixes: tuple[str, ...]  # a saved model's `architectures` entry ends with one of these (guess_task)
    predict: str  # the Predictor method that answers it
    pipeline_tag: str  # the model card's (and the hub's) pipeline tag
    peft_task: str | None = None  # peft TaskType name; None: no peft fine-tuning of this task
    finetune: str | None = None  # "module:function(cfg, run) -> report"; None: `tunesmith pretrain` trains it
    evaluate: str | None = None  # "module:function(EvalRequest, info) -> exit code" (evaluate/run_eval.py)
    record_key: str | None = None  # key of `tunesmith predict`'s JSON line (None: the answer is the dict)
    endpoint: str | None = None  # the server's endpoint (POST /<endpoint>)
    batched_endpoint: bool = False  # served by the micro-batcher's own route (multi-adapter), not the generic one
    aliases: tuple[str, ...] = ()  # other names accepted for it (--task ner)
    labelled: bool = False  # the model has a label map (id2label): classes or tags

    def auto_class(self):
        import transformers

        return getattr(transformers, self.auto)

    def finetune_fn(self) -> Callable | None:
        return lazy(self.finetune)

    def evaluate_fn(self) -> Callable | None:
        return lazy(self.evaluate)


REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in REGISTRY:
        raise ValueError(f"task '{task.name}' is already registered")
    REGISTRY[task.name] = task
    return task


def canonical(name: str) -> str:
    """The registered name of a task or one of its aliases."""
    for task in REGISTRY.values():
        if name == task.name or name in task.aliases:
            return task.name
    raise TunesmithError(f"unknown task '{name}'; tasks: {', '.join(REGISTRY)}")


def get(name: str) -> Task:
    return REGISTRY[canonical(name)]


def finetunable() -> dict[str, Task]:
    """The tasks `tunesmith finetune` trains (`--model.task`)."""
    return {n: t for n, t in REGISTRY.items() if t.finetune}


def _records() -> None:
    register(Task("classification", "AutoModelForSequenceClassification", ("ForSequenceClassification",),
                  "classify", "text-classification", peft_task="SEQ_CLS",
                  finetune="tunesmith.tasks.classification:finetune_classification",
                  evaluate="tunesmith.evaluate.run_eval:evaluate_classification",
                  endpoint="classify", batched_endpoint=True, aliases=("text-classification",), labelled=True))
    register(Task("token-classification", "AutoModelForTokenClassification", ("ForTokenClassification",),
                  "entities", "token-classification", peft_task="TOKEN_CLS",
                  finetune="tunesmith.tasks.ner:finetune_ner", evaluate="tunesmith.evaluate.run_eval:evaluate_ner",
                  record_key="entities", endpoint="ner", aliases=("ner",), labelled=True))
    register(Task("generation", "AutoModelForCausalLM", ("ForCausalLM", "LMHeadModel"), "generate", "text-generation",
                  peft_task="CAUSAL_LM", finetune="tunesmith.tasks.generation:finetune_generation",
                  evaluate="tunesmith.evaluate.run_eval:evaluate_generation", record_key="generated",
                  endpoint="generate", aliases=("clm", "text-generation")))
    register(Task("fill-mask", "AutoModelForMaskedLM", ("ForMaskedLM",), "fill_mask", "fill-mask",
                  record_key="predictions", endpoint="fill-mask", aliases=("mlm",)))


_records()
