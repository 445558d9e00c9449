"""The engine behind the server: one base model, many named peft adapters, plus whole models.

LoRA classification adapters share one copy of the base weights: each adds only its LoRA
matrices and its own classifier head (saved by peft's modules_to_save). Runs that hold a whole
model (full or head fine-tuning, other tasks) load as separate models through the Predictor.

Every method that touches a model runs on the single model thread (see batcher.py), so loading
or unloading an adapter happens between two forward passes and never under one.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import TunesmithError
from ..infer.batching import token_budget_batches
from ..tasks.registry import REGISTRY as TASKS
from .security import check_files_confined, confine, require_safetensors


class NotFound(TunesmithError):
    """No adapter or model of that name (HTTP 404)."""


class WrongTask(TunesmithError):
    """The adapter's head does not serve the requested task (HTTP 400)."""


@dataclass
class Entry:
    """One servable name: a LoRA adapter on the shared base, or a whole model."""

    name: str
    kind: str  # lora | model
    task: str
    labels: list[str] | None
    path: str
    size_bytes: int
    load_s: float
    max_length: int
    tokenizer: Any
    predictor: Any = None  # the Predictor of a whole model (kind == "model")
    pending: int = 0  # requests queued or running; an unload waits for zero
    removing: bool = False
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "task": self.task, "labels": self.labels,
                "num_labels": len(self.labels) if self.labels else None, "size_bytes": self.size_bytes,
                "load_seconds": round(self.load_s, 4), "path": self.path,
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.loaded_at))}


@dataclass
class Work:
    """One input of one request, tokenised at arrival (the batcher counts its tokens)."""

    entry: Entry
    text: str
    ids: list[int]


@dataclass
class AdapterFiles:
    """What reading an adapter directory gives, before anything touches the model."""

    name: str
    path: Path
    config: Any  # peft config
    weights: dict[str, torch.Tensor]
    info: dict


def run_info(path: Path) -> tuple[dict, Path]:
    """(run.json contents or {}, the directory holding the model/adapter files)."""
    if (path / "run.json").is_file():
        info = json.loads((path / "run.json").read_text(encoding="utf-8"))
        if info.get("status") not in (None, "complete"):
            raise TunesmithError(f"{path}: the run did not finish (status '{info.get('status')}')")
        for sub in ("model", "merged"):
            if (path / sub).is_dir():
                return info, path / sub
        raise TunesmithError(f"{path}: run directory without model/")
    if (path / "adapter_config.json").is_file() or (path / "config.json").is_file():
        labels = path / "labels.json"
        info = {"labels": _labels_from(json.loads(labels.read_text()))} if labels.is_file() else {}
        return info, path
    raise TunesmithError(f"{path}: neither a tunesmith run (run.json) nor a model/adapter directory")


def _labels_from(obj) -> list[str]:
    if isinstance(obj, dict):
        return [str(obj[k]) for k in sorted(obj, key=lambda k: int(k))]
    return [str(x) for x in obj]


def same_base(info: dict, adapter_cfg, base_spec: str, base_path: str) -> bool:
    """Does the adapter's recorded base model match the server's base?"""
    given = {str(v) for v in (info.get("base_model"), info.get("base_model_path"),
                              getattr(adapter_cfg, "base_model_name_or_path", None)) if v}
    if base_spec in given or base_path in given:
        return True
    real = lambda p: str(Path(p).expanduser().resolve()) if Path(p).expanduser().exists() else p
    return real(base_path) in {real(g) for g in given}


class Registry:
    """Adapters and models by name; forward passes for mixed batches of work.

    Example:
        >>> reg = Registry(base="minilm", adapter_root="runs")
        >>> reg.attach(reg.read_adapter("sentiment", "sentiment-run"))
        >>> [w.entry.name for w in reg.encode("sentiment", ["a fine film"])]
        ['sentiment']
    """

    def __init__(self, base: str | None, adapter_root: str | Path = ".", device: str | None = None,
                 max_length: int | None = None, max_forward_tokens: int = 8192, dtype: str = "auto"):
        from ..precision import DTYPES, check_precision, resolve_device

        self.root = Path(adapter_root).expanduser().resolve()
        self.device = resolve_device(device)  # None / "auto": cuda when available
        # one precision for the shared base and for every whole model (their Predictors get the
        # same name as their execution path); "auto" is `tunesmith predict`'s rule, so both score alike
        self.precision, self.precision_reason = check_precision(dtype, self.device)
        self.dtype = DTYPES[self.precision]
        self.max_length = max_length
        self.max_forward_tokens = max_forward_tokens
        self.entries: dict[str, Entry] = {}
        self.base_spec = base
        self.base_path: str | None = None
        self.base_model = None
        self.base_pooling = "cls"
        self.peft = None  # PeftModel wrapping base_model once the first adapter arrives
        self.tokenizer = None
        self.base_bytes = 0
        if base:
            self._load_base(base)

    # ---- loading -------------------------------------------------------------------------
    def _load_base(self, spec: str, pooling: str = "cls") -> None:
        from transformers import AutoModelForSequenceClassification

        from ..models import load_tokenizer, resolve

        ref = resolve(spec)
        # The base head is never used (each adapter brings its own); only the backbone is shared.
        model = AutoModelForSequenceClassification.from_pretrained(
            ref.path, use_safetensors=True, trust_remote_code=False)
        if pooling == "mean":  # its adapters were trained reading the mean (adapt/pooling.py)
            from ..adapt.pooling import append_mean_pooling

            append_mean_pooling(model)
        self.base_pooling = pooling
        # LoRA weights stay float32 (peft's autocast_adapter_dtype) and add onto the cast base output
        self.base_model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = load_tokenizer(ref)
        self.base_spec, self.base_path = spec, ref.path
        self.base_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    def resolve_path(self, given: str) -> Path:
        path = confine(self.root, given)
        if not path.is_dir():
            raise NotFound(f"adapter path '{given}' does not exist under the adapter root")
        check_files_confined(self.root, path)
        return path

    def kind_of(self, given: str) -> str:
        """'lora' when the directory holds a classification adapter the shared base can hold (the
        method record's `servable`: LoRA), else 'model' (its own Predictor)."""
        from ..adapt.registry import REGISTRY, is_peft

        info, model_dir = run_info(self.resolve_path(given))
        lora = is_peft(info, model_dir)
        method = REGISTRY.get(info.get("method", "lora"))  # a bare adapter folder: LoRA as before
        servable = method.servable if method else False
        return "lora" if lora and servable and info.get("task", "classification") == "classification" else "model"

    def read_adapter(self, name: str, given: str) -> AdapterFiles:
        """Read config and weights (safetensors only); touches no model, so any thread may call it."""
        from peft import PeftConfig
        from safetensors.torch import load_file

        path = self.resolve_path(given)
        info, model_dir = run_info(path)
        config = PeftConfig.from_pretrained(str(model_dir))
        config.inference_mode = True
        weights = load_file(str(require_safetensors(model_dir, "adapter_model.safetensors")))
        pooling = info.get("pooling", "cls")
        if self.base_model is None:
            self._load_base(info.get("base_model_path") or config.base_model_name_or_path, pooling)
        elif pooling != self.base_pooling and self.peft is None:  # nothing attached yet: the base follows it
            self._load_base(self.base_spec, pooling)
        elif pooling != self.base_pooling:
            raise WrongTask(f"adapter '{name}' reads the {'mean of the token states' if pooling == 'mean' else '[CLS] state'}, "
                            f"but this server's base reads the {'mean' if self.base_pooling == 'mean' else '[CLS]'}; "
                            "serve it on its own server (or retrain it with --method.pooling="
                            f"{self.base_pooling})")
        elif not same_base(info, config, self.base_spec, self.base_path):
            raise WrongTask(f"adapter '{name}' was trained on base "
                            f"'{info.get('base_model') or config.base_model_name_or_path}', but this "
                            f"server's base is '{self.base_spec}'; serve it on its own server")
        return AdapterFiles(name, path, config, weights, info)

    def attach(self, files: AdapterFiles) -> Entry:
        """Add a read adapter to the shared base (model thread only)."""
        from peft import PeftModel
        from peft.utils import set_peft_model_state_dict

        if files.name in self.entries:
            raise TunesmithError(f"adapter '{files.name}' is already loaded; unload it first")
        start = time.perf_counter()
        if self.peft is None:
            self.peft = PeftModel(self.base_model, files.config, adapter_name=files.name)
        else:
            self.peft.add_adapter(files.name, files.config)
        try:
            num_labels = self._fit_heads(files.name, files.weights)
            result = set_peft_model_state_dict(self.peft, files.weights, adapter_name=files.name)
            missing = [k for k in result.missing_keys if f".{files.name}." in k and "lora_" in k]
            if missing:
                raise TunesmithError(f"{files.path}: adapter weights missing for {missing[:3]}")
        except Exception:
            self._drop_peft_adapter(files.name)
            raise
        self.peft.eval()
        labels = files.info.get("labels") or [f"LABEL_{i}" for i in range(num_labels)]
        if len(labels) != num_labels:
            self._drop_peft_adapter(files.name)
            raise WrongTask(f"{files.path}: {len(labels)} labels in run.json but a head with {num_labels} outputs")
        entry = Entry(files.name, "lora", "classification", list(labels), str(files.path),
                      sum(t.numel() * t.element_size() for t in files.weights.values()),
                      time.perf_counter() - start, self.max_length or files.info.get("max_length", 128),
                      self.tokenizer)
        self.entries[files.name] = entry
        return entry

    def _fit_heads(self, name: str, weights: dict[str, torch.Tensor]) -> int:
        """Resize this adapter's copy of each saved head to the checkpoint's shape.

        peft copies the base head for every adapter, so an adapter with 3 labels on a base whose
        head has 2 would not load; each adapter gets a Linear of its own size instead.
        Returns the number of outputs of the classifier head.
        """
        from peft.utils.other import ModulesToSaveWrapper

        outputs = None
        for mod_name, wrapper in self.peft.named_modules():
            if not isinstance(wrapper, ModulesToSaveWrapper) or name not in wrapper.modules_to_save:
                continue
            own = wrapper.modules_to_save[name]
            for key, tensor in weights.items():
                if not key.startswith(mod_name + ".") or not key.endswith(".weight"):
                    continue
                sub = key[len(mod_name) + 1:-len(".weight")]
                target = own.get_submodule(sub) if sub else own
                if isinstance(target, torch.nn.Linear) and tuple(target.weight.shape) != tuple(tensor.shape):
                    new = torch.nn.Linear(tensor.shape[1], tensor.shape[0], bias=target.bias is not None)
                    new = new.to(device=self.device, dtype=self.dtype)
                    if sub:
                        parent, _, leaf = sub.rpartition(".")
                        setattr(own.get_submodule(parent) if parent else own, leaf, new)
                    else:
                        wrapper.modules_to_save[name] = new
                outputs = tensor.shape[0]
        if outputs is None:
            raise WrongTask(f"adapter '{name}' saves no classifier head (modules_to_save); it cannot "
                            "classify on a shared base")
        return int(outputs)

    def _drop_peft_adapter(self, name: str) -> None:
        if self.peft is not None and name in self.peft.peft_config:
            if len(self.peft.peft_config) == 1:
                self._reset_peft()
            else:
                self.peft.delete_adapter(name)

    def _reset_peft(self) -> None:
        """Remove the last adapter: unwrap back to the plain base model."""
        self.base_model = self.peft.base_model.unload()
        self.base_model.eval()
        self.peft = None

    def load_model(self, name: str, given: str) -> Entry:
        """A whole model (full/head run, other tasks) as a separate Predictor."""
        from ..infer.predictor import Predictor

        if name in self.entries:
            raise TunesmithError(f"'{name}' is already loaded; unload it first")
        path = self.resolve_path(given)
        info, model_dir = run_info(path)
        from ..adapt.registry import WEIGHTS, artifact_kind

        require_safetensors(model_dir, WEIGHTS[artifact_kind(model_dir)])
        start = time.perf_counter()
        pred = Predictor.load(str(path), device=str(self.device), fast=self.precision)
        size = sum(p.numel() * p.element_size() for p in pred.model.parameters())
        labels = getattr(pred, "labels", None) or info.get("labels")
        entry = Entry(name, "model", getattr(pred, "task", None) or info.get("task", "classification"), labels,
                      str(path), size, time.perf_counter() - start,
                      self.max_length or info.get("max_length", 128), pred.tokenizer, predictor=pred)
        self.entries[name] = entry
        return entry

    def detach(self, name: str) -> None:
        """Forget an adapter or model and free its weights (model thread only)."""
        entry = self.entries.pop(name)
        if entry.kind == "lora":
            self._drop_peft_adapter(name)

    # ---- serving -------------------------------------------------------------------------
    def get(self, name: str) -> Entry:
        entry = self.entries.get(name)
        if entry is None or entry.removing:
            raise NotFound(f"no adapter or model named '{name}'; GET /v1/adapters lists them")
        return entry

    def encode(self, name: str, texts: list[str], task: str = "classification") -> list[Work]:
        entry = self.get(name)
        if entry.task != task:
            raise WrongTask(f"'{name}' has a {entry.task} head; it cannot serve {task}")
        if not texts:
            return []
        enc = entry.tokenizer(texts, truncation=True, max_length=entry.max_length, padding=False)
        return [Work(entry, t, ids) for t, ids in zip(texts, enc["input_ids"])]

    @torch.inference_mode()
    def forward(self, works: list[Work], mixed: bool = True) -> list[torch.Tensor]:
        """Logits per work item, in order. LoRA items of different adapters share one forward pass
        (peft's per-sample adapter_names) when mixed and their heads have the same width."""
        out: list[torch.Tensor | None] = [None] * len(works)
        groups: dict[tuple, list[int]] = {}
        for i, w in enumerate(works):
            e = w.entry
            if e.kind == "model":
                key = ("model", e.name)
            else:
                # peft stacks the per-adapter head outputs of a mixed batch, so only heads of one
                # width can share a forward pass; others go in their own group.
                key = ("lora", len(e.labels)) if mixed else ("lora-one", e.name)
            groups.setdefault(key, []).append(i)
        for key, idx in groups.items():
            if key[0] == "model":
                logits = works[idx[0]].entry.predictor.logits([works[i].text for i in idx])
                for j, i in enumerate(idx):
                    out[i] = logits[j]
            else:
                self._forward_lora([works[i] for i in idx], idx, out)
        return out  # type: ignore[return-value]

    def _forward_lora(self, works: list[Work], idx: list[int], out: list) -> None:
        lengths = [len(w.ids) for w in works]
        for batch in token_budget_batches(lengths, self.max_forward_tokens):
            names = [works[b].entry.name for b in batch]
            padded = self.tokenizer.pad([{"input_ids": works[b].ids} for b in batch], return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in padded.items()}
            if len(set(names)) == 1:
                self.peft.set_adapter(names[0])  # one adapter: the plain (faster) forward
                logits = self.peft(**inputs).logits  # (batch, num_labels)
            else:
                logits = self.peft(**inputs, adapter_names=names).logits  # (batch, num_labels)
            for row, b in enumerate(batch):
                out[idx[b]] = logits[row].float().cpu()

    def call_task(self, name: str, task: str, method: str, inputs: list, **kwargs):
        """Fill-mask / NER / generation through the model's Predictor, when it has them."""
        entry = self.get(name)
        fn = getattr(entry.predictor, method, None) if entry.predictor is not None else None
        if fn is None or (entry.task not in TASK_OF_ENDPOINT.get(task, (task,))):
            raise WrongTask(f"task not supported by this model: '{name}' is a {entry.kind} "
                            f"{entry.task} model; it cannot serve {task}")
        return fn(inputs, **kwargs)

    def memory(self) -> dict:
        lora = sum(e.size_bytes for e in self.entries.values() if e.kind == "lora")
        models = sum(e.size_bytes for e in self.entries.values() if e.kind == "model")
        return {"base_bytes": self.base_bytes, "adapter_bytes": lora, "model_bytes": models}


# The run task names each task endpoint accepts (from the task records).
TASK_OF_ENDPOINT = {t.endpoint: (t.name, *t.aliases) for t in TASKS.values()
                    if t.endpoint and not t.batched_endpoint}
