"""How each adaptation method is applied: plain functions `(model, MethodConfig, task) -> model`.

The facts about each method (default lr, description, peft?, mergeable, formula, loading) are in
its record in adapt/registry.py."""
from __future__ import annotations

from ..config import IA3_EXTRA_TARGETS, LORA_DEFAULT_TARGETS, MethodConfig
from ..errors import TunesmithError

from ..tasks.registry import REGISTRY as TASKS

PEFT_TASK = {name: t.peft_task for name, t in TASKS.items() if t.peft_task}  # from the task records


def head_module_names(model) -> list[str]:
    """Top-level modules outside the backbone that hold weights: the task head (e.g. classifier)."""
    prefix = getattr(model, "base_model_prefix", "")
    return [name for name, mod in model.named_children()
            if name != prefix and any(True for _ in mod.parameters())
            and name not in ("lm_head",)]  # a causal LM's head is tied to the embeddings


def full(model, cfg: MethodConfig, task: str):
    """Every weight trains."""
    for p in model.parameters():
        p.requires_grad = True
    return model


def pooler_name(model) -> str | None:
    """The backbone's pooler (BERT: dense + tanh on [CLS], which only its classification head
    reads), as a parameter-name prefix; None when there is none."""
    prefix = getattr(model, "base_model_prefix", "")
    base = getattr(model, prefix, None) if prefix else None
    pooler = getattr(base, "pooler", None) if base is not None else None
    return f"{prefix}.pooler" if pooler is not None and any(True for _ in pooler.parameters()) else None


def head(model, cfg: MethodConfig, task: str):
    """Frozen backbone (features), only the task head (and BERT's pooler) trains. Its record reads
    the mean of the token states (pooling="mean": the fixed layer of adapt/pooling.py, appended by
    registry.apply_method before this runs)."""
    heads = head_module_names(model)
    if not heads:
        raise TunesmithError("method 'head' needs a task head, but this model has none outside its backbone")
    trains = tuple(heads + [p for p in [pooler_name(model)] if p])
    for name, p in model.named_parameters():
        p.requires_grad = any(name == t or name.startswith(t + ".") for t in trains)
    return model


def default_targets(model) -> list[str]:
    mtype = getattr(model.config, "model_type", "")
    if mtype in LORA_DEFAULT_TARGETS:
        return LORA_DEFAULT_TARGETS[mtype]
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    for pair in (["query", "value"], ["q_proj", "v_proj"], ["q_lin", "v_lin"]):
        if set(pair) <= names:
            return pair
    raise TunesmithError(f"no default LoRA target modules for model type '{mtype}'; "
                         "name them with --method.target_modules=a,b")


def _check_targets(model, targets: list[str]) -> None:
    names = {n for n, _ in model.named_modules()}
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        short = sorted({n.rsplit(".", 1)[-1] for n in names})
        raise TunesmithError(f"target module(s) {missing} not found in this model; "
                             f"module names include e.g. {short[:20]}")


def _heads_to_save(model, task: str) -> list[str] | None:
    # The task head is new and must train and be saved with the adapter (a classic PEFT pitfall:
    # without modules_to_save the reloaded model has a random head).
    return head_module_names(model) if task != "generation" else None


def _pooler_if_mean(model) -> list[str] | None:
    """Prompt methods on the mean of the token states train (and save) BERT's pooler with the
    classifier, as `head` does: between the fixed mean and the classifier it is the head's hidden
    layer (measured: docs/strategy.md); on [CLS], and where there is no pooler, nothing more."""
    from .pooling import MARK

    if getattr(model.config, MARK, None) is None:
        return None
    name = pooler_name(model)
    return [name.split(".")[-1]] if name else None


def _pooling_exclude(model) -> str | None:
    """peft's exclude_modules for the appended mean-pooling layer (its weights *are* the pooling:
    LoRA and IA3 leave it as it is); None on [CLS]."""
    from .pooling import MARK

    index = getattr(model.config, MARK, None)
    return None if index is None else rf".*\.layer\.{index}\..*"


def _lora_config(model, cfg: MethodConfig, task: str, dora: bool):
    from peft import LoraConfig

    targets = cfg.target_modules or default_targets(model)
    _check_targets(model, targets)
    return LoraConfig(task_type=PEFT_TASK[task], r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                      lora_dropout=cfg.lora_dropout, target_modules=list(targets),
                      exclude_modules=_pooling_exclude(model), modules_to_save=_heads_to_save(model, task),
                      use_dora=dora)


def lora(model, cfg: MethodConfig, task: str):
    """LoRA adapters on the target modules (peft); the new task head trains and is saved too."""
    from peft import get_peft_model

    return get_peft_model(model, _lora_config(model, cfg, task, dora=False))


def dora(model, cfg: MethodConfig, task: str):
    """DoRA: LoRA on the direction plus a trainable magnitude per output feature (peft use_dora)."""
    from peft import get_peft_model

    return get_peft_model(model, _lora_config(model, cfg, task, dora=True))


def ia3(model, cfg: MethodConfig, task: str):
    """IA3: learned rescaling vectors on keys, values and the feed-forward input (peft);
    targets default to peft's table per architecture (BERT: key, value, output.dense)."""
    from peft import IA3Config, get_peft_model

    if cfg.target_modules:
        _check_targets(model, cfg.target_modules)
    targets, ff = cfg.target_modules, cfg.ia3_feedforward_modules
    extra = IA3_EXTRA_TARGETS.get(getattr(model.config, "model_type", ""))
    if not targets and extra is not None:
        targets, ff = extra[0], ff if ff is not None else extra[1]
    if targets and ff is None:
        ff = []  # user targets without feed-forward modules: scale outputs only
    config = IA3Config(task_type=PEFT_TASK[task], target_modules=targets,
                       feedforward_modules=ff, exclude_modules=_pooling_exclude(model),
                       modules_to_save=_heads_to_save(model, task))
    return get_peft_model(model, config)


def prompt(model, cfg: MethodConfig, task: str):
    """Prompt tuning: num_virtual_tokens trainable input embeddings; backbone frozen, head trains."""
    from peft import PromptTuningConfig, get_peft_model

    how, ids = _start_words(model, cfg, task)
    init = "SAMPLE_VOCAB" if how == "vocab" else "RANDOM"
    config = PromptTuningConfig(task_type=PEFT_TASK[task], num_virtual_tokens=cfg.num_virtual_tokens,
                                prompt_tuning_init=init, modules_to_save=_pooler_if_mean(model))
    model = get_peft_model(model, config)
    if ids is not None:  # peft's TEXT init would tokenise with [CLS] ... [SEP]: the words alone here
        model.prompt_encoder["default"].embedding.weight.data.copy_(_word_rows(model, ids))
    return model


def _start_words(model, cfg: MethodConfig, task: str) -> tuple[str, list[int] | None]:
    """(how the virtual tokens start, the token ids whose word embeddings start them or None)."""
    how = prompt_init_of(cfg, task)
    try:
        return how, (_prompt_init_ids(model, cfg, how) if how in ("labels", "text") else None)
    except TunesmithError as e:
        if cfg.prompt_init != "auto":
            raise
        print(f"{cfg.name}: virtual tokens start random, not as the label names ({e})")
        return "random", None


def _word_rows(model, ids: list[int]):
    import torch

    return model.get_input_embeddings().weight[torch.tensor(ids)].detach().float()


def prompt_init_of(cfg: MethodConfig, task: str) -> str:
    """What method.prompt_init=auto means: the label names on a classifier (at the compare budget on
    movie-reviews, 3 seeds, the best mean validation F1 of random, vocab and labels: docs/strategy.md),
    random vectors elsewhere (not measured there, so unchanged)."""
    if cfg.prompt_init != "auto":
        return cfg.prompt_init
    return "labels" if task == "classification" else "random"


def _prompt_init_ids(model, cfg: MethodConfig, how: str) -> list[int]:
    """Token ids whose word embeddings start the virtual tokens (method.prompt_init labels / text),
    repeated to fill num_virtual_tokens. Lester et al. (2021): virtual tokens that start as real words,
    best the class labels, learn faster than random vectors."""
    if how == "labels":
        names = [str(v) for _, v in sorted((getattr(model.config, "id2label", None) or {}).items())]
        text = " ".join(n.replace("_", " ").replace("-", " ") for n in names)
    else:
        text = (cfg.prompt_init_text or "").strip()
        if not text:
            raise TunesmithError('method.prompt_init=text needs --method.prompt_init_text "..."')
    path = getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "")
    if not path:
        raise TunesmithError(f"method.prompt_init={how} reads the model's tokenizer, and this model was built "
                             "without a path; use --method.prompt_init=vocab or random")
    from transformers import AutoTokenizer

    try:
        ids = AutoTokenizer.from_pretrained(path)(text, add_special_tokens=False)["input_ids"]
    except (OSError, ValueError) as e:
        raise TunesmithError(f"method.prompt_init={how} reads the model's tokenizer, which did not load from "
                             f"'{path}' ({e}); use --method.prompt_init=vocab or random") from None
    if not ids:
        raise TunesmithError(f"method.prompt_init={how}: '{text}' has no tokens")
    return [ids[i % len(ids)] for i in range(cfg.num_virtual_tokens)]


def ptuning(model, cfg: MethodConfig, task: str):
    """P-tuning: virtual tokens produced by a small MLP prompt encoder (peft PromptEncoder). With a
    word start (method.prompt_init labels / text / vocab) the encoder's inputs are those words and
    its MLP is fitted, before training, to give them back (_fit_to_words)."""
    import torch
    from peft import PromptEncoderConfig, get_peft_model

    how, ids = _start_words(model, cfg, task)
    if how == "vocab":
        vocab = model.get_input_embeddings().weight.shape[0]
        ids = torch.randint(0, vocab, (cfg.num_virtual_tokens,)).tolist()
    config = PromptEncoderConfig(task_type=PEFT_TASK[task], num_virtual_tokens=cfg.num_virtual_tokens,
                                 modules_to_save=_pooler_if_mean(model))
    model = get_peft_model(model, config)
    if ids is not None:
        _fit_to_words(model.prompt_encoder["default"], _word_rows(model, ids))
    return model


def _fit_to_words(encoder, words, max_steps: int = 3000, tol: float = 1e-4) -> float:
    """Start p-tuning from real words: the encoder's embedding rows become `words` and its MLP is
    fitted (full-batch Adam until the relative error is under `tol`: about 160 steps, 0.4-0.5 s on minilm's
    label names) so that its outputs, the virtual tokens the model reads, are those words too. The
    MLP keeps peft's shape, so the artifact loads as any p-tuning adapter. Returns the error left."""
    import torch

    encoder.embedding.weight.data.copy_(words)
    mlp = encoder.mlp_head  # encoder(arange(n)) is mlp(embedding rows) = mlp(words)
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-3)
    for _ in range(max_steps):
        out = mlp(words)
        err = float((out.detach() - words).norm() / words.norm())
        if err < tol:
            break
        opt.zero_grad()
        torch.nn.functional.mse_loss(out, words).backward()
        opt.step()
    mlp.zero_grad(set_to_none=True)
    print(f"p-tuning: the prompt encoder starts at the words (relative error {err:.1e})")
    return err


def prefix(model, cfg: MethodConfig, task: str):
    """Prefix tuning: trainable keys and values prepended in every layer (peft PrefixTuning); the
    backbone must have gone through prefix.expose_past_key_values (the registry does it)."""
    from peft import PrefixTuningConfig, get_peft_model

    config = PrefixTuningConfig(task_type=PEFT_TASK[task], num_virtual_tokens=cfg.num_virtual_tokens,
                                prefix_projection=cfg.prefix_projection,
                                encoder_hidden_size=cfg.prefix_hidden_size, modules_to_save=_pooler_if_mean(model))
    return get_peft_model(model, config)


def adapter(model, cfg: MethodConfig, task: str):
    """Bottleneck adapter layers (adapt/bottleneck.py): adapters and the head train; with Houlsby
    the LayerNorms train too; everything else is frozen."""
    from .bottleneck import add_adapters, layer_norm_names

    for p in model.parameters():
        p.requires_grad = False
    add_adapters(model, cfg.adapter_type, cfg.adapter_size)
    trains = set(layer_norm_names(model, cfg.adapter_type))
    heads = set(head_module_names(model))
    for name, p in model.named_parameters():
        p.requires_grad = ".adapter." in name or name in trains or name.split(".")[0] in heads
    model.tunesmith_adapter_layers = {"type": cfg.adapter_type, "size": cfg.adapter_size}
    return model


def check_method_targets(model_or_config, cfg: MethodConfig, task: str = "classification") -> None:
    """Stop before any data is read when the method cannot wrap this architecture.

    Checks what `apply_method` would find only after loading and tokenising the data: an
    unknown method; LoRA/DoRA without default target modules for the model type, or targets the
    model lacks; IA3 on a type peft has no default targets for. `model_or_config` is a model, its
    config, or a model directory: from a config the task's model is built on the meta device
    (module names only; no weights are read or allocated). A directory whose config cannot be
    read here (a hub id offline, an adapter directory) is left to the full check in apply_method.

    Example:
        >>> check_method_targets(ModernBertConfig(...), MethodConfig(name="lora"))  # Wqkv, Wo: fine
        >>> check_method_targets(cfg, MethodConfig(name="lora", target_modules=["nope"]))
        TunesmithError: target module(s) ['nope'] not found in this model; ...
    """
    from .registry import REGISTRY

    if cfg.name not in REGISTRY:
        raise TunesmithError(f"unknown method '{cfg.name}'; methods: {', '.join(REGISTRY)}")
    if cfg.name not in ("lora", "dora", "ia3"):
        return
    model = _module_tree(model_or_config, task)
    if model is None:
        return
    if cfg.name in ("lora", "dora"):
        _check_targets(model, cfg.target_modules or default_targets(model))
    elif cfg.target_modules:
        _check_targets(model, cfg.target_modules)
    else:
        from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as IA3_DEFAULTS

        mtype = getattr(model.config, "model_type", "")
        if mtype not in IA3_DEFAULTS and mtype not in IA3_EXTRA_TARGETS:
            raise TunesmithError(f"IA3 has no default target modules for model type '{mtype}' (peft's table); "
                                 "name them with --method.target_modules=a,b "
                                 "(and --method.ia3_feedforward_modules=...)")


def _module_tree(model_or_config, task: str):
    """A model whose module names can be read: the model itself, or one built on the meta device."""
    import torch
    from transformers import PretrainedConfig

    if isinstance(model_or_config, torch.nn.Module):
        return model_or_config
    config = model_or_config
    if not isinstance(config, PretrainedConfig):
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(str(model_or_config))
        except (OSError, ValueError):
            return None
    import transformers

    auto = TASKS[task].auto_class() if task in TASKS else transformers.AutoModel
    try:
        with torch.device("meta"):  # (no storage: a 7B model costs nothing here)
            return auto.from_config(config)
    except Exception:  # noqa: BLE001 - an architecture without this head: apply_method says it later
        return None
