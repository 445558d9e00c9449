"""Training machinery shared by every task: Trainer arguments, the optimizer, callbacks.

We use `transformers.Trainer` (what the field uses, and what `accelerate launch` drives) and
add what it lacks: layer-wise learning-rate decay, a progress bar with the running loss and
the validation metric, and a metrics log in the run directory.
"""
from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from . import runs, tracking
from .config import TrainConfig
from .errors import TunesmithError

_LAYER = re.compile(r"(?:layer|layers|h|block|blocks)\.(\d+)\.")


def head_prefixes(model) -> tuple[str, ...]:
    """Module paths of the task head (and the backbone's pooler) in the plain model under any peft
    wrapper; a parameter belongs to it when `.{prefix}.` is in `.{its name}` (peft's names keep the
    path: base_model.model.classifier.modules_to_save.default.weight)."""
    from .adapt.methods import head_module_names, pooler_name

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return tuple(head_module_names(base) + [p for p in [pooler_name(base)] if p])


def layer_index(name: str, n_layers: int) -> int:
    """Depth of a parameter: 0 for embeddings, i+1 for transformer layer i, n+1 for heads."""
    m = _LAYER.search(name)
    if m:
        return int(m.group(1)) + 1
    if "embed" in name or "wte" in name or "wpe" in name:
        return 0
    return n_layers + 1


class EpochSeededLengthSampler(LengthGroupedSampler):
    """Length-grouped batches in a random order, drawn from a generator seeded by (seed, epoch).

    The stock sampler sorts each mega-batch (up to 50 batches) by length and hands its batches
    out longest first, so a run sees long, then ever shorter batches in a row. Where length goes
    with the label (spam is longer than ham) those runs are runs of one class: measured on
    sms-spam at the compare budget (2,000 examples, 1 epoch), LoRA at 1e-3, 3e-3 and 1e-2, DoRA,
    p-tuning and adapters never left the majority class (test 0.868), and LoRA reached 0.984
    with the same batches in this order (0.992 with no length grouping at all). So the
    batches stay what they were (same members, same padding), and only their order is shuffled;
    the batch with the longest text stays first, so running out of memory happens at once.

    The stock sampler also draws from the global RNG, whose state differs after a resume, so a
    resumed run saw another order (measured: losses diverged from the first step after the
    resume). The mega-batches span every process's batch, so N processes see the order one
    process sees."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, world_size: int = 1):
        super().__init__(batch_size * world_size, lengths=lengths)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:  # Trainer calls this at the start of every epoch
        self.epoch = epoch

    def __iter__(self):
        return iter(shuffled_length_batches(self.lengths, self.batch_size, self.seed * 100_003 + self.epoch))


def shuffled_length_batches(lengths: list[int], batch_size: int, seed: int) -> list[int]:
    """Indices in batches of similar length (transformers' mega-batch grouping), the batches in a
    random order but for the first (it holds the longest text) and a short last one (the data
    loader cuts this stream every batch_size indices, so a short batch stays at the end)."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    g = torch.Generator().manual_seed(seed)
    idx = get_length_grouped_indices(lengths, batch_size, generator=g)
    full = len(idx) // batch_size
    batches = [idx[i * batch_size:(i + 1) * batch_size] for i in range(full)]
    middle = [batches[k] for k in (torch.randperm(max(full - 1, 0), generator=g) + 1).tolist()]
    return [i for b in batches[:1] + middle for i in b] + idx[full * batch_size:]


TRAINABLE = "tunesmith-trainable.safetensors"


def prompt_learning(model) -> bool:
    """A PEFT prompt-learning model (prompt, prefix, p-tuning): its saved adapter is lossy to load."""
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def longest_first(ds):
    """`ds` reordered by the length of its input_ids, longest first (stable); anything else as is."""
    import numpy as np
    from datasets import Dataset

    if not isinstance(ds, Dataset) or "input_ids" not in ds.column_names or len(ds) < 2:
        return ds  # a streamed (iterable) or torch dataset keeps its order
    lengths = np.array([len(x) for x in ds["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    return ds if (order == np.arange(len(ds))).all() else ds.select(order.tolist())


class TunesmithTrainer(Trainer):
    """Trainer with layer-wise learning-rate decay (lr x decay^(L+1-depth)) and a learning rate of
    the task head's own (head_lr), on top of the stock grouping that skips weight decay for biases
    and LayerNorm weights."""

    layer_lr_decay: float = 1.0
    head_lr: float | None = None  # the task head's own peak lr (train.head_lr / the method record's)
    # Dataset columns the model's forward does not take but a compute_loss reads (distillation's
    # teacher logits): kept where Trainer would drop them. Set it; distill no longer reaches into
    # Trainer's column bookkeeping itself.
    extra_columns: tuple[str, ...] = ()

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        self._signature_columns += [c for c in self.extra_columns if c not in self._signature_columns]

    def create_optimizer(self, model=None):
        if (self.layer_lr_decay >= 1.0 and self.head_lr is None) or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        n_layers = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", 12)
        decay_names = set(self.get_decay_parameter_names(model))
        heads = head_prefixes(model) if self.head_lr is not None else ()
        groups: dict[tuple[int, bool, bool], list] = {}
        for name, p in model.named_parameters():
            if p.requires_grad:
                head = any(f".{h}." in f".{name}" for h in heads)
                groups.setdefault((layer_index(name, n_layers), name in decay_names, head), []).append(p)
        if self.head_lr is not None and not any(head for _, _, head in groups):
            raise TunesmithError("train.head_lr: this model has no trainable task head (classifier) to give "
                                 "its own learning rate; leave train.head_lr unset")
        lr = self.args.learning_rate
        param_groups = [{"params": ps,
                         "lr": self.head_lr if head else lr * self.layer_lr_decay ** (n_layers + 1 - depth),
                         "weight_decay": self.args.weight_decay if decay else 0.0}
                        for (depth, decay, head), ps in sorted(groups.items())]
        # fused: one kernel per step instead of a dozen passes over every weight (the stock
        # Trainer's default optimizer is the fused one too, from torch 2.8)
        self.optimizer = torch.optim.AdamW(param_groups, lr=lr, betas=(self.args.adam_beta1, self.args.adam_beta2),
                                           eps=self.args.adam_epsilon, fused=True)
        return self.optimizer

    def get_eval_dataloader(self, eval_dataset=None):
        # Validation in length order, longest first: each batch pads to its own longest text, and
        # in the split's order a batch of 128 pads to nearly max_length (movie-reviews: mean 27
        # tokens, batches padded to ~60). Sorted, a pass costs less (docs/training.md) and the
        # first batch shows the peak memory; the metrics are over the whole split, so the order
        # changes none of them.
        ds = self.eval_dataset if eval_dataset is None else eval_dataset
        key = getattr(ds, "_fingerprint", None)  # a datasets.Dataset's content hash: sort it once per run
        if key is None:
            return super().get_eval_dataloader(longest_first(ds))
        cache = self.__dict__.setdefault("_longest_first", {})
        if key not in cache:
            cache[key] = longest_first(ds)
        return super().get_eval_dataloader(cache[key])

    def _get_train_sampler(self, train_dataset=None):
        sampler = super()._get_train_sampler(train_dataset)
        if isinstance(sampler, LengthGroupedSampler):
            return EpochSeededLengthSampler(sampler.lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                            self.args.data_seed or self.args.seed, self.args.world_size)
        return sampler

    # PEFT saves a prompt-learning adapter in its inference form: prefix tuning with
    # `prefix_projection` keeps only the projected key/value table, not the embedding and MLP
    # that train (peft issue 2256). Trainer then cannot load its own checkpoint into the model it
    # is training (load_best_model_at_end and resume both fail with a shape error at the end of
    # the run). For these methods each checkpoint also holds the trainable tensors as they train,
    # and the best model / a resumed run loads those: exact, and the artifact PEFT writes is
    # unchanged (PeftModel.from_pretrained loads it).
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict)
        if prompt_learning(self.model) and self.args.should_save:
            from safetensors.torch import save_file

            trainable = {n: p.detach().contiguous().cpu() for n, p in self.model.named_parameters() if p.requires_grad}
            save_file(trainable, str(Path(output_dir or self.args.output_dir) / TRAINABLE))

    def _load_trainable(self, checkpoint: str | None) -> bool:
        path = Path(checkpoint or "") / TRAINABLE
        if not (checkpoint and prompt_learning(self.model) and path.is_file()):
            return False
        from safetensors.torch import load_file

        result = self.model.load_state_dict(load_file(str(path)), strict=False)
        if result.unexpected_keys:
            raise RuntimeError(f"{path}: tensors the model does not have: {result.unexpected_keys[:5]}")
        return True

    def _load_best_model(self) -> None:
        if not self._load_trainable(self.state.best_model_checkpoint):
            super()._load_best_model()

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        if not self._load_trainable(resume_from_checkpoint):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _save_checkpoint(self, model, trial) -> None:
        # The stock Trainer writes checkpoint-N file by file (and then deletes old ones); a kill
        # in between leaves a half-written folder. The marker written last, listing every file
        # with its size, is what `last_checkpoint` trusts.
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            mark_complete(Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}")


PROGRESS = "progress.json"
PROGRESS_EVERY_S = 0.5  # rewrite progress.json at most this often (a tiny model takes ms per step)


def write_progress(run: Path, state, phase: str) -> None:
    """<run>/progress.json: {phase, step, max_steps, epoch, pid, updated}, rewritten atomically.

    The run's live position for readers in other processes (`tunesmith ui` draws its progress bar
    from it; the pid tells a restarted UI whether the run is still alive)."""
    runs.write_json(Path(run) / PROGRESS, {
        "phase": phase, "step": state.global_step, "max_steps": state.max_steps,
        "epoch": round(state.epoch or 0, 4), "pid": os.getpid(), "updated": time.time()})


class RunLogCallback(TrainerCallback):
    """Progress bar with running loss and last validation metric; every log line to metrics.jsonl;
    the current step in progress.json (see `write_progress`)."""

    def __init__(self, run: Path, metric: str, enabled: bool = True):
        self.run, self.metric, self.enabled = run, metric, enabled
        self.bar = None
        self.postfix: dict[str, str] = {}
        self.progress_at = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            write_progress(self.run, state, "training")
            self.progress_at = time.monotonic()
        if state.is_world_process_zero and self.enabled:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training",
                            unit="step", dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and time.monotonic() - self.progress_at >= PROGRESS_EVERY_S:
            write_progress(self.run, state, "training")
            self.progress_at = time.monotonic()
        if self.bar is not None:
            if self.bar.total != state.max_steps:  # a time-budgeted run re-planned its length
                self.bar.total = state.max_steps
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        logs = dict(logs)
        if any(k.startswith("eval_") for k in logs):
            rec = {"kind": "eval", "step": state.global_step, "epoch": round(state.epoch or 0, 4)}
            rec.update({k[5:]: v for k, v in logs.items() if k.startswith("eval_")})
            if self.metric in rec:
                self.postfix[f"val_{self.metric}"] = f"{rec[self.metric]:.4f}"
        elif "loss" in logs:
            rec = {"kind": "train", "step": state.global_step, "epoch": round(state.epoch or 0, 4),
                   "loss": logs["loss"], "lr": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm")}
            self.postfix["loss"] = f"{logs['loss']:.4f}"
        elif "train_runtime" in logs:
            rec = {"kind": "summary", "step": state.global_step, **logs}
        else:
            return
        runs.append_metrics(self.run, rec)
        if self.bar is not None:
            self.bar.set_postfix(self.postfix, refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:  # training is over; evaluation and saving follow
            write_progress(self.run, state, "evaluating")
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def eval_cadence(cfg: TrainConfig, n_train: int, world: int = 1) -> int:
    """Steps between evaluations (and checkpoints): the user's, else about 4 per epoch."""
    steps_per_epoch = max(1, math.ceil(n_train / (cfg.batch_size * cfg.grad_accum * world)))
    return cfg.eval_every or max(5, math.ceil(steps_per_epoch / 4))


def resolve_precision(requested: str, device: torch.device | None = None) -> dict:
    """{"precision": what runs, "requested", "why", "tf32", "device"} for train.precision, by the
    one rule predict and serve use too (precision.py)."""
    from .precision import check_precision, cuda_capability, resolve_device

    device = device or resolve_device("auto")  # where Trainer will put the model
    name, why = check_precision(requested, device)  # fp16 without CUDA is refused here
    tf32 = device.type == "cuda" and cuda_capability(device)[0] >= 8
    return {"precision": name, "requested": requested, "why": f"auto: {why}" if requested == "auto" else why,
            "tf32": tf32, "device": device.type}


def announce_precision(cfg: TrainConfig, say) -> dict:
    """Resolve train.precision, say it in the run log; the dict goes into run.json."""
    p = resolve_precision(cfg.precision)
    say(f"precision: {p['precision']} ({p['why']})" + (", TF32 matmuls" if p["tf32"] else ""))
    return p


def training_args(cfg: TrainConfig, out: Path, lr: float, n_train: int, has_eval: bool,
                  greater_is_better: bool = True, metric: str | None = None) -> TrainingArguments:
    """TrainingArguments from our TrainConfig; checkpoints go to <run>/checkpoints."""
    every = eval_cadence(cfg, n_train, runs.world_size())  # same cadence as one process, same global batch
    metric = metric or cfg.metric
    prec = resolve_precision(cfg.precision)
    return TrainingArguments(
        bf16=prec["precision"] == "bf16",
        fp16=prec["precision"] == "fp16",
        tf32=prec["tf32"] or None,
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio of the total steps
        lr_scheduler_type="linear",
        max_grad_norm=cfg.max_grad_norm if cfg.max_grad_norm > 0 else 1e9,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=has_eval,
        metric_for_best_model=metric if has_eval else None,
        greater_is_better=greater_is_better,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        **tracking.trainer_kwargs(cfg.report_to, out),  # report_to + run_name
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        save_only_model=False,
    )


def quiet_trainer(trainer: Trainer) -> Trainer:
    """Drop the stock printing callbacks: RunLogCallback shows progress instead; point the
    tracking callbacks (train.report_to) at the run directory."""
    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    tracking.attach(trainer)
    return trainer


COMPLETE = "tunesmith-complete.json"
# Other ranks write their own RNG state concurrently; the main process cannot vouch for its size.
_RANK_FILE = re.compile(r"rng_state_\d+\.pth$")


def mark_complete(ckpt: Path) -> None:
    """Write the completion marker of a checkpoint folder (atomically, after every other file)."""
    files = {p.name: p.stat().st_size for p in sorted(ckpt.iterdir())
             if p.is_file() and p.name != COMPLETE and not _RANK_FILE.match(p.name)}
    runs.write_json(ckpt / COMPLETE, {"files": files})


def is_complete(ckpt: Path) -> bool:
    """True when the marker exists and every file it lists is there with its size (a kill while
    an old checkpoint was being deleted leaves some files missing) and trainer_state.json parses."""
    try:
        files = runs.read_json(ckpt / COMPLETE)["files"]
        runs.read_json(ckpt / "trainer_state.json")
        return all((ckpt / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def last_checkpoint(run: Path) -> str | None:
    """Newest complete checkpoint in <run>/checkpoints; half-written ones are never picked.

    Example:
        >>> last_checkpoint(Path("runs/my-run"))
        'runs/my-run/checkpoints/checkpoint-40'
    """
    def step(p: Path) -> int:
        tail = p.name.split("-")[-1]
        return int(tail) if tail.isdigit() else -1

    ckpts = sorted((Path(run) / "checkpoints").glob("checkpoint-*"), key=step)
    complete = [c for c in ckpts if c.is_dir() and is_complete(c)]
    return str(complete[-1]) if complete else None
