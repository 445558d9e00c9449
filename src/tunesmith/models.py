"""One loader for every way of naming a model: built-in name, run directory, local path, hub id."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .assets import MODELS
from .errors import TunesmithError


@dataclass
class ModelRef:
    """Where a model lives and how it was named."""

    spec: str  # what the user typed
    path: str  # directory or hub id given to from_pretrained
    source: str  # builtin | run | local | hub
    run: Path | None = None  # the run directory when source == "run"


def resolve(spec: str) -> ModelRef:
    """Resolve a model name to something `from_pretrained` can load.

    Example:
        >>> resolve("minilm").source
        'builtin'
    """
    asset = MODELS.get(spec.lower())
    if asset is not None:
        if asset.kind == "causal-lm":
            from .gguf_cache import dequantised_dir  # heavy path only for the decoder

            return ModelRef(spec, str(dequantised_dir(asset)), "builtin")
        return ModelRef(spec, str(asset.require()), "builtin")
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / "run.json").is_file():
            return ModelRef(spec, str(_run_model_dir(path)), "run", run=path)
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise TunesmithError(f"{path}: directory has no config.json; not a model directory "
                                 "(nor a tunesmith run)")
        return ModelRef(spec, str(path), "local")
    if path.exists():
        raise TunesmithError(f"{path}: is a file; give a model directory, a built-in name "
                             f"({', '.join(MODELS)}) or a hub id")
    if spec.count("/") > 1 or spec.startswith((".", "~")) or spec.endswith("/"):
        raise TunesmithError(f"model '{spec}' not found: no such directory, and it is not a hub id")
    return ModelRef(spec, spec, "hub")


def _run_model_dir(run: Path) -> Path:
    info = json.loads((run / "run.json").read_text())
    if info.get("status") != "complete":
        raise TunesmithError(f"{run}: the run did not finish (status '{info.get('status')}'); "
                             f"resume it with `tunesmith finetune --output.dir {run} --output.resume=true`")
    for sub in ("merged", "model"):
        if (run / sub / "config.json").is_file():
            return run / sub
    method = info.get("method", "peft")
    raise TunesmithError(f"{run}: holds a {method} adapter, not a whole model; fine-tune it again with "
                         "--output.merge=true (writes a merged model), or load the adapter with peft "
                         f"as {run / 'README.md'} shows")


def base_path(ref: ModelRef) -> str:
    """Absolute path of a local base model, so a peft run still loads from another directory."""
    return str(Path(ref.path).resolve()) if ref.source in ("local", "run") else ref.path


def hub_hint(ref: ModelRef, err: Exception) -> TunesmithError:
    if ref.source == "hub":
        return TunesmithError(
            f"model '{ref.spec}' is not in the local hub cache and downloads are off. Use a built-in "
            f"({', '.join(MODELS)}), a local directory, or set TUNESMITH_ALLOW_DOWNLOADS=1 where a "
            f"network exists. ({type(err).__name__}: {str(err).splitlines()[0][:200]})")
    return TunesmithError(f"cannot load model from {ref.path}: {err}")


def load_tokenizer(ref: ModelRef):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.path)
    except (OSError, ValueError) as e:
        raise hub_hint(ref, e) from None
    return ensure_pad_token(tokenizer, ref)


def ensure_pad_token(tokenizer, ref: ModelRef):
    """Give a decoder's tokenizer the pad token batches need (GPT-2 has none: "Asking to pad but
    the tokenizer does not have a padding token"). A sequence classifier finds each text's last
    real token through config.pad_token_id, so both must name the same token: the config's pad
    id when it has one, else EOS (load_for_task sets config.pad_token_id = EOS to match)."""
    if tokenizer.pad_token is not None or tokenizer.eos_token is None:
        return tokenizer
    pad_id = _config_pad_id(ref)
    if pad_id is not None and 0 <= pad_id < len(tokenizer):
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad_id)
    else:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _config_pad_id(ref: ModelRef) -> int | None:
    from transformers import AutoConfig

    try:
        pad = AutoConfig.from_pretrained(ref.path).pad_token_id
    except (OSError, ValueError):  # offline hub id, adapter directory: EOS it is
        return None
    return pad if isinstance(pad, int) else None


def load_config(ref: ModelRef):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(ref.path)
    except (OSError, ValueError) as e:
        raise hub_hint(ref, e) from None


def load_for_task(ref: ModelRef, task: str, labels: list[str] | None = None):
    """Load the backbone with the head for `task`; returns (model, newly initialised weight names)."""
    import transformers

    from .tasks.registry import get

    auto = transformers.AutoModel if task == "base" else get(task).auto_class()  # the task's record
    kwargs = {}
    if labels is not None:
        kwargs = dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={name: i for i, name in enumerate(labels)})
    try:
        model, info = auto.from_pretrained(ref.path, output_loading_info=True, **kwargs)
    except (OSError, ValueError) as e:
        raise hub_hint(ref, e) from None
    if model.config.pad_token_id is None and getattr(model.config, "eos_token_id", None) is not None:
        eos = model.config.eos_token_id
        model.config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    return model, sorted(info.get("missing_keys", []))


def model_facts(config, n_params: int | None = None) -> dict:
    """The facts the textbook prints about a model."""
    get = lambda *names: next((getattr(config, n) for n in names if getattr(config, n, None) is not None), None)
    facts = {
        "architecture": (config.architectures or [config.model_type])[0],
        "model_type": config.model_type,
        "vocab_size": get("vocab_size"),
        "layers": get("num_hidden_layers", "n_layer"),
        "heads": get("num_attention_heads", "n_head"),
        "hidden_size": get("hidden_size", "n_embd"),
        "intermediate_size": get("intermediate_size", "n_inner"),
        "max_positions": get("max_position_embeddings", "n_positions"),
    }
    if n_params is not None:
        facts["parameters"] = n_params
    return facts
