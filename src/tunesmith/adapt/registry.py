"""One record per adaptation method: every table, command and model card is derived from it.

A `Method` holds all of a method's facts: how it is applied, its default learning rate, its
description, whether it saves a peft adapter, whether peft can merge it, whether the multi-adapter
server can hold it, its parameter-count formula, how a run of it saves, loads and is described in
the model card. `tunesmith methods`, `params`, `advise`, `compare`, `runs.save_artifacts`, the
Predictor, the server and the tests read these records; a new method is one `register(...)` call
(peft's `register_peft_method` accepts only names already in its PeftType, so ours is our own).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import TunesmithError
from ..tasks.registry import finetunable
from . import methods as m
from .prefix import PLAIN_SHIM, expose_past_key_values

def _bottleneck():
    """adapt/bottleneck.py, imported when used: it builds torch modules, and the CLI's --help and
    `tunesmith methods` read these records without torch."""
    from . import bottleneck

    return bottleneck


# The tasks a method supports by default: every task `tunesmith finetune` trains (the task records).
FINETUNE_TASKS: tuple[str, ...] = tuple(finetunable())

# artifact kinds: how a run's model/ is written and read back
WHOLE, PEFT, ADAPTER_LAYERS = "whole", "peft", "adapter-layers"


@dataclass(frozen=True)
class Method:
    """Everything tunesmith knows about one adaptation method."""

    name: str
    apply: Callable  # (model, MethodConfig, task) -> model with the right parameters trainable
    lr: float  # default peak learning rate (measured: scripts/sweep-defaults.sh, docs/quality.md)
    description: str
    count: Callable  # (meta classifier, model config, MethodConfig) -> (added params, formula lines, adapted weights)
    artifact: str = PEFT  # WHOLE (save_pretrained of the model), PEFT (adapter + head), ADAPTER_LAYERS
    mergeable: bool = False  # peft can fold it into the base weights (merge_and_unload)
    task_lr: tuple[tuple[str, float], ...] = ()  # (task, lr) where a task keeps another default
    servable: bool = False  # the multi-adapter server can hold it on a shared base
    backbone_trains: bool = False  # every backbone weight trains (full)
    trains_layer_norms: Callable | None = None  # (MethodConfig) -> bool: LayerNorms train too
    shim: bool = False  # needs prefix.expose_past_key_values on the base before peft sees it
    prepare: Callable | None = None  # (FinetuneConfig, model config) -> None: adjust the config first
    tasks: tuple[str, ...] = FINETUNE_TASKS  # a subset of the fine-tunable task records (checked by register)
    ladder: int | None = None  # place on advise's ladder: best expected accuracy first, smallest footprint last
    pooling: str = "cls"  # what a BERT classifier reads under --method.pooling=auto (adapt/pooling.py; measured)
    head_lr: float | None = None  # classification: the task head's own default lr (train.head_lr; measured)

    @property
    def peft(self) -> bool:
        return self.artifact == PEFT

    @property
    def library_name(self) -> str:
        return "peft" if self.peft else "transformers"


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in REGISTRY:
        raise ValueError(f"method '{method.name}' is already registered")
    unknown = [t for t in method.tasks if t not in FINETUNE_TASKS]
    if unknown or not method.tasks:
        raise ValueError(f"method '{method.name}': tasks {list(method.tasks)} must be a non-empty subset of "
                         f"the fine-tunable task records ({', '.join(FINETUNE_TASKS)}); unknown: {unknown}")
    REGISTRY[method.name] = method
    return method


def get(name: str) -> Method:
    """The record of a method; a clear error naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise TunesmithError(f"unknown method '{name}'; methods: {', '.join(REGISTRY)}") from None


def apply_method(model, cfg, task: str):
    """Apply cfg.name to `model` for `task` (the one entry point finetune uses)."""
    method = get(cfg.name)
    if task not in method.tasks:
        raise TunesmithError(f"method '{cfg.name}' does not support {task}; it supports "
                             f"{', '.join(method.tasks)}")
    if method.shim:
        expose_past_key_values(model)
    index = _mean_pooling(model, cfg, task)
    model = method.apply(model, cfg, task)
    if index is not None:
        for name, p in model.named_parameters():
            if f".layer.{index}." in name:
                p.requires_grad = False  # the appended layer *is* the pooling: fixed weights
    return model


def pooling_of(cfg, task: str) -> str:
    """'mean' or 'cls': what --method.pooling asks for on `task` (auto: the method record's choice)."""
    if task != "classification":
        return "cls"
    return get(cfg.name).pooling if cfg.pooling == "auto" else cfg.pooling


def _mean_pooling(model, cfg, task: str) -> int | None:
    """Append the fixed mean-pooling layer when the config asks for it and the model allows it;
    its index, or None (reading [CLS])."""
    if pooling_of(cfg, task) != "mean":
        return None
    from . import pooling

    if get(cfg.name).artifact == ADAPTER_LAYERS:  # its saved layers reload onto the plain base
        raise TunesmithError(f"--method.pooling=mean is not available for '{cfg.name}'; use pooling=cls or auto")

    why = pooling.problem(model)
    if why is not None:
        print(f"{cfg.name}: reading [CLS], no mean pooling ({why})", flush=True)
        return None
    return pooling.append_mean_pooling(model)


def reads_mean(model) -> bool:
    """Does this (possibly peft-wrapped) classifier end in the appended mean-pooling layer?"""
    from .pooling import MARK

    return getattr(getattr(model, "config", None), MARK, None) is not None


def default_lr(name: str, task: str | None = None) -> float:
    """The method's default peak learning rate (for `task` where the record sets one apart)."""
    method = get(name)
    return dict(method.task_lr).get(task, method.lr)


def default_head_lr(name: str, task: str | None = None) -> float | None:
    """The record's default lr for the task head (classification only; None: the method's lr)."""
    return get(name).head_lr if task in (None, "classification") else None


def prepare_config(cfg, model_config) -> None:
    """Method-specific config fixes before training (prefix: cap max_length)."""
    method = get(cfg.method.name)
    if method.prepare is not None:
        method.prepare(cfg, model_config)


# ---- save and load ------------------------------------------------------------------------------
def save_model(directory: Path, model, name: str) -> None:
    """Write a run's model/ for this method (tokenizer excluded)."""
    if get(name).artifact == ADAPTER_LAYERS:
        spec = getattr(model, "tunesmith_adapter_layers")
        _bottleneck().save(model, directory, spec["type"], spec["size"], model.name_or_path)
    else:
        model.save_pretrained(directory)


def artifact_kind(model_dir: Path) -> str:
    """What a model/ folder holds, from its files (works for runs of any tunesmith version)."""
    if _bottleneck().is_adapter_dir(model_dir):
        return ADAPTER_LAYERS
    return PEFT if (Path(model_dir) / "adapter_config.json").is_file() else WHOLE


def is_peft(run: str | dict | Method, model_dir: Path | None = None) -> bool:
    """Is this a peft run: does it save a peft adapter (adapter_config.json + adapter weights)?
    The one answer for a run or a method; `is_peft_model` is the one for a loaded model.

    `run` is a method name, a method record or a run's info (run.json). With `model_dir` (a run's
    model/ or a bare adapter folder) its files decide, as they are what a loader will read (runs of
    any tunesmith version, folders without run.json); without it, the method record.

        >>> is_peft("lora"), is_peft({"method": "adapter"}), is_peft(get("full"))
        (True, False, False)
    """
    if model_dir is not None:
        return artifact_kind(Path(model_dir)) == PEFT
    if isinstance(run, Method):
        return run.peft
    name = run.get("method", "") if isinstance(run, dict) else run
    return get(name).peft


def is_peft_model(model) -> bool:
    """Is this loaded model (or peft tuner layer) wrapped by peft? What decides how Trainer
    checkpoints it (adapter weights only) and whether the lean passes apply; a run of ours with
    adapter layers (method `adapter`) is a plain transformers model."""
    return hasattr(model, "peft_config")


WEIGHTS = {WHOLE: "model.safetensors", PEFT: "adapter_model.safetensors", ADAPTER_LAYERS: "adapters.safetensors"}  # bottleneck.WEIGHTS_FILE


def label_kwargs(labels: list[str] | None) -> dict:
    if labels is None:
        return {}
    return dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={n: i for i, n in enumerate(labels)})


def load_run_model(run: Path, info: dict, auto, merge: bool = True):
    """The trained model of a run: whole model, base + peft adapter (merged where peft can), or
    base + adapter layers."""
    model_dir = Path(run) / "model"
    kind = artifact_kind(model_dir)  # the files, not the record: runs of any tunesmith version
    if kind == WHOLE:
        return auto.from_pretrained(model_dir)
    if kind == PEFT and merge and (Path(run) / "merged" / "config.json").is_file():
        return auto.from_pretrained(Path(run) / "merged")
    base = info["base_model_path"]
    if not Path(base).exists() and info.get("base_model_source") != "hub":
        raise TunesmithError(f"{run}: base model {base} of this {info.get('method')} run is missing; "
                             f"reinstall it or (LoRA) load a merged model (--output.merge=true)")
    if kind == ADAPTER_LAYERS:
        return _bottleneck().load(auto, base, model_dir, **label_kwargs(info.get("labels")))
    from peft import PeftModel

    model = auto.from_pretrained(base, **label_kwargs(info.get("labels")))
    if info.get("pooling") == "mean":  # trained reading the mean: the base gets the same fixed layer
        from .pooling import append_mean_pooling

        append_mean_pooling(model)
    if getattr(model.config, "pad_token_id", None) is None and getattr(model.config, "eos_token_id", None) is not None:
        eos = model.config.eos_token_id  # what training used (models.load_for_task): decoders pad with EOS
        model.config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    method = REGISTRY.get(info.get("method", ""))
    if (method and method.shim) or _is_prefix_dir(model_dir):
        expose_past_key_values(model)
    model = PeftModel.from_pretrained(model, model_dir)
    mergeable = method.mergeable if method else hasattr(model, "merge_and_unload")
    return merge_peft(model) if merge and mergeable else model


def merge_peft(model):
    """Fold a peft model's adapters into its base weights (`merge_and_unload`).

    The saved heads (modules_to_save) are put back as plain modules first: peft 0.21's generic
    unload (IA3's) copies `.weight` from each wrapper, which fails for a head made of several
    layers (RoBERTa's and MPNet's classifier.dense + classifier.out_proj)."""
    from peft.utils.other import ModulesToSaveWrapper

    for name, mod in list(model.named_modules()):
        if isinstance(mod, ModulesToSaveWrapper):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child,
                    mod.modules_to_save[mod.active_adapters[0]])
    return model.merge_and_unload()


def _is_prefix_dir(model_dir: Path) -> bool:
    import json

    cfg = json.loads((model_dir / "adapter_config.json").read_text(encoding="utf-8"))
    return cfg.get("peft_type") == "PREFIX_TUNING"


# ---- model card ---------------------------------------------------------------------------------
def card_code(info: dict, run: Path, auto: str) -> str:
    """Python that loads the run with plain transformers / peft / torch (the model card's block)."""
    method = REGISTRY.get(info.get("method", "")) or get("full")
    model_dir = run / "model"
    labels = info.get("labels")
    lab = (f", num_labels={len(labels)},\n    id2label={dict(enumerate(labels))}, "
           f"label2id={ {l: i for i, l in enumerate(labels)} }") if labels is not None else ""
    tok = f'tokenizer = AutoTokenizer.from_pretrained("{model_dir}")'
    if method.artifact == WHOLE:
        return (f"from transformers import {auto}, AutoTokenizer\n\n"
                f'model = {auto}.from_pretrained("{model_dir}").eval()\n{tok}')
    if method.artifact == ADAPTER_LAYERS:
        return (_bottleneck().plain_code(auto, info["base_model_path"], str(model_dir))
                + f"\nfrom transformers import AutoTokenizer\n{tok}")
    shim = f"\n{PLAIN_SHIM}" if method.shim else ""
    if info.get("pooling") == "mean":  # trained reading the mean: the base needs the same fixed layer first
        from .pooling import PLAIN_CODE

        shim += f"\n{PLAIN_CODE}"
    merge = ".merge_and_unload()" if method.mergeable else ""
    return (f"from transformers import {auto}, AutoTokenizer\nfrom peft import PeftModel\n\n"
            f'base = {auto}.from_pretrained(\n    "{info["base_model_path"]}"{lab}){shim}\n'
            f'model = PeftModel.from_pretrained(base, "{model_dir}"){merge}.eval()\n{tok}')


def library_name(info: dict) -> str:
    method = REGISTRY.get(info.get("method", ""))
    return method.library_name if method else "transformers"


# ---- the records -------------------------------------------------------------------------------
def _prefix_prepare(cfg, model_config) -> None:
    from .prefix import max_length_limit

    limit = max_length_limit(model_config, cfg.method.num_virtual_tokens)
    if cfg.model.max_length > limit:
        print(f"prefix tuning: max_length {cfg.model.max_length} -> {limit} (the model's "
              f"{model_config.max_position_embeddings} positions minus {cfg.method.num_virtual_tokens} "
              "virtual tokens, which shift the real tokens' positions)", flush=True)
        cfg.model.max_length = limit


# peft prepends prompt tokens to a token classifier's outputs without padding its labels (the
# loss fails: "Expected input batch_size (18) to match target batch_size (12)"): not for NER.
PROMPT_TASKS = tuple(t for t in FINETUNE_TASKS if t != "token-classification")
# The prefix shim and our bottleneck adapters patch BERT-family (encoder) layers: encoder tasks only.
ENCODER_TASKS = ("classification", "token-classification")


def _formula(name: str) -> Callable:
    """strategy/formulas.py's count_<name>, looked up at call time (formulas imports adapt/)."""
    def count(model, config, cfg):
        from ..strategy import formulas

        return getattr(formulas, f"count_{name}")(model, config, cfg)
    return count


def _records() -> None:
    register(Method("full", m.full, 1e-4, "every parameter trains", _formula("full"), artifact=WHOLE,
                    backbone_trains=True, ladder=0, task_lr=(("generation", 2e-5), ("token-classification", 3e-4))))
    # Learning rates: the best by validation accuracy in the sweep of docs/quality.md (minilm,
    # movie-reviews, 2,000 examples, 1 epoch; checked at 3 seeds, on sms-spam and NER). Generation
    # (LoRA on a decoder) was not swept and keeps the rates it had; NER (token classification) takes
    # the best of its own sweep on news-ner (full 3e-4, LoRA 1e-2; 1e-4 / 3e-3 learned nothing in 1 epoch).
    # lora and head read the mean of the token states (pooling="mean"): on [CLS] LoRA stayed at the
    # majority class on one sms-spam seed of three; on the mean all three learned (docs/strategy.md).
    register(Method("lora", m.lora, 3e-3, "low-rank adapters on attention (peft); backbone frozen; head trains",
                    _formula("lora"), mergeable=True, servable=True, ladder=1, pooling="mean",
                    task_lr=(("generation", 3e-4), ("token-classification", 1e-2))))
    register(Method("head", m.head, 1e-2, "backbone frozen as a feature extractor; only the task head (and BERT's "
                    "pooler, reading the mean of the token states) trains",
                    _formula("head"), artifact=WHOLE, ladder=3, pooling="mean"))
    register(Method("dora", m.dora, 3e-3, "LoRA with a learned magnitude per output feature (peft use_dora); "
                    "head trains", _formula("dora"), mergeable=True, task_lr=(("generation", 3e-4),)))
    register(Method("ia3", m.ia3, 3e-2, "learned scaling vectors on keys, values, feed-forward (peft); head trains",
                    _formula("ia3"), mergeable=True, ladder=2, task_lr=(("generation", 3e-3),)))
    # The prompt methods read the mean too, and their head (with BERT's pooler, as for `head`) trains
    # at its own 1e-2 (docs/strategy.md, 2026-12-06); on the mean prompt tuning's best lr by validation
    # fell from 3e-1 to 3e-2 (3e-1 left one seed of three near one class) and p-tuning's to 1e-2; with
    # its encoder fitted to start at the label names (2026-12-08) p-tuning's best fell to 1e-3.
    register(Method("prompt", m.prompt, 3e-2, "trainable virtual-token embeddings before the input (peft); "
                    "head (and the pooler, on the mean) trains at its own lr", _formula("prompt"), tasks=PROMPT_TASKS,
                    pooling="mean", head_lr=1e-2))
    register(Method("ptuning", m.ptuning, 1e-3, "virtual tokens from a small MLP prompt encoder (peft P-tuning); "
                    "head (and the pooler, on the mean) trains at its own lr", _formula("ptuning"), tasks=PROMPT_TASKS,
                    task_lr=(("generation", 3e-3),), pooling="mean", head_lr=1e-2))
    register(Method("prefix", m.prefix, 3e-2, "trainable keys/values prepended in every layer (peft prefix "
                    "tuning, BERT shim); head (and the pooler, on the mean) trains at its own lr", _formula("prefix"),
                    shim=True, prepare=_prefix_prepare, tasks=ENCODER_TASKS, pooling="mean", head_lr=1e-2))
    # adapter: 1e-3, not the compare budget's best 3e-3, which sits at the edge of stability: at 3e-3
    # one sms-spam seed of three stayed at the majority class and the 1-epoch full-split run on
    # movie-reviews collapsed to it (0.526); 1e-3 held everywhere measured (docs/strategy.md).
    register(Method("adapter", m.adapter, 1e-3, "bottleneck adapter layers (Houlsby / Pfeiffer, our own: no "
                    "library runs them on transformers 5); head trains; not mergeable", _formula("adapter"),
                    artifact=ADAPTER_LAYERS, trains_layer_norms=lambda c: c.adapter_type == "houlsby",
                    tasks=ENCODER_TASKS))


_records()

# Derived views, for code that only needs names.
METHODS: dict[str, Callable] = {name: r.apply for name, r in REGISTRY.items()}
PEFT_METHODS = tuple(n for n in REGISTRY if is_peft(n))
MERGEABLE = tuple(n for n, r in REGISTRY.items() if r.mergeable)
LADDER = [r.name for r in sorted((r for r in REGISTRY.values() if r.ladder is not None), key=lambda r: r.ladder)]
