"""Typed configs: dataclasses per concern, a YAML file, and `--section.key=value` overrides.

Every field carries its help text in `metadata["help"]`; the CLI turns that into `--help`.
Unknown keys are errors that list the valid ones, never silently ignored.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from . import tracking
from .data.builtin import LABELLED as _BUILTIN_DATA
from .errors import TunesmithError

T = TypeVar("T")


def opt(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with its help text (lists and dicts get a default_factory)."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kw)
    return dataclasses.field(default=default, metadata={"help": help}, **kw)


def _base_type(tp: Any) -> Any:
    """The concrete type under Optional[...] / X | None."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    return tp


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a string (from the command line) or YAML value to the field's type."""
    base = _base_type(tp)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")
                         and base is not str):
        return None
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if base in (int, float):
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            if base is int:
                if number != int(number):
                    raise ValueError(value)
                return int(number)
            return number
        if typing.get_origin(base) is list or base is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return list(value)
        if base is str:
            return str(value)
    except (TypeError, ValueError):
        raise TunesmithError(f"{where}: cannot read {value!r} as {getattr(base, '__name__', base)}") from None
    return value


def field_help(cls: type) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def sections(cls: type) -> dict[str, type]:
    """Section name -> section dataclass, for a top-level config made of sections."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def build(cls: type[T], values: dict[str, dict[str, Any]], source: str) -> T:
    """Make a sectioned config from nested dicts; unknown sections/keys raise with the valid list."""
    secs = sections(cls)
    unknown = set(values) - set(secs)
    if unknown:
        raise TunesmithError(f"{source}: unknown section(s) {sorted(unknown)}; valid: {sorted(secs)}")
    parts = {}
    for name, sec_cls in secs.items():
        given = values.get(name) or {}
        if not isinstance(given, dict):
            raise TunesmithError(f"{source}: section '{name}' must be a mapping of keys to values")
        hints = typing.get_type_hints(sec_cls)
        if name == "method" and "head_pooling" in given:  # its name before it applied to every method
            given = {("pooling" if k == "head_pooling" else k): v for k, v in given.items()}
        bad = set(given) - set(hints)
        if bad:
            raise TunesmithError(f"{source}: unknown key(s) {sorted(f'{name}.{b}' for b in bad)}; "
                                 f"valid keys in '{name}': {sorted(hints)}")
        kwargs = {k: coerce(v, hints[k], f"{source}: {name}.{k}") for k, v in given.items()}
        try:
            parts[name] = sec_cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise TunesmithError(f"{source}: section '{name}': {e}") from None
    return cls(**parts)


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """['train.epochs=2', 'method.name=lora'] -> {'train': {'epochs': '2'}, 'method': {'name': 'lora'}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.lstrip("-").partition("=")
        if not sep or "." not in key:
            raise TunesmithError(f"override '{item}' must look like --section.key=value (e.g. --train.epochs=2)")
        section, _, name = key.partition(".")
        out.setdefault(section, {})[name.replace("-", "_")] = value
    return out


def load(cls: type[T], path: str | None, overrides: dict[str, dict[str, Any]]) -> T:
    """YAML file (optional) then overrides, into a typed config."""
    values: dict[str, dict[str, Any]] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise TunesmithError(f"config file {path} not found")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise TunesmithError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise TunesmithError(f"{path}: top level must be a mapping of sections")
        values = {k: dict(v or {}) for k, v in loaded.items()}
    for sec, kv in overrides.items():
        values.setdefault(sec, {}).update(kv)
    return build(cls, values, path or "command line")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The fine-tuning config: one dataclass per concern.
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class DataConfig:
    dataset: str = opt("movie-reviews", f"built-in data set ({', '.join(_BUILTIN_DATA)}; `tunesmith datasets`) "
                       "or a file (.csv .tsv .json .jsonl .parquet) that is split into train/validation/test")
    train: str | None = opt(None, "training file; with it, separate files per split instead of `dataset`")
    validation: str | None = opt(None, "validation file (else carved from train with val_size)")
    test: str | None = opt(None, "test file (optional)")
    text_column: str | None = opt(None, "column holding the text (auto-detected from common names)")
    label_column: str | None = opt(None, "column holding the label (auto-detected from common names)")
    val_size: float = opt(0.1, "share of the data for validation when splitting one file")
    test_size: float = opt(0.1, "share of the data for test when splitting one file")
    seed: int = opt(42, "seed of the stratified split and of subsampling")
    max_train: int | None = opt(None, "use at most this many training examples (random, seeded)")
    max_eval: int | None = opt(None, "use at most this many validation and test examples")
    drop_empty: bool = opt(False, "drop rows with empty text instead of stopping with an error")


@dataclasses.dataclass
class ModelConfig:
    name: str = opt("minilm", "built-in model (see `tunesmith models`), a run directory, a local "
                    "path or a hub id")
    task: str = opt("classification", "classification | token-classification | generation")
    max_length: int = opt(128, "truncate inputs to this many tokens (texts are padded per batch, not to this)")


LORA_DEFAULT_TARGETS = {
    "bert": ["query", "value"], "roberta": ["query", "value"], "distilbert": ["q_lin", "v_lin"],
    "electra": ["query", "value"], "deberta-v2": ["query_proj", "value_proj"],
    "albert": ["query", "value"], "xlm-roberta": ["query", "value"], "gpt2": ["c_attn"],
    "llama": ["q_proj", "v_proj"], "mistral": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"],
    "modernbert": ["Wqkv", "Wo"], "mpnet": ["q", "v"],
}

# IA3 targets (all, feed-forward) for types peft 0.21's table lacks.
IA3_EXTRA_TARGETS = {
    "mpnet": (["k", "v", "output.dense"], ["output.dense"]),
}


@dataclasses.dataclass
class MethodConfig:
    name: str = opt("full", "adaptation method: full | lora | head | dora | ia3 | prompt | ptuning | prefix | "
                    "adapter (see `tunesmith methods`)")
    lora_r: int = opt(8, "LoRA rank r")
    lora_alpha: int = opt(16, "LoRA scaling alpha (update scaled by alpha / r)")
    lora_dropout: float = opt(0.1, "dropout on the LoRA branch")
    target_modules: list[str] | None = opt(None, "modules LoRA wraps, comma-separated; default by "
                                           "architecture (BERT: query,value; Llama: q_proj,v_proj)")
    num_virtual_tokens: int = opt(20, "prompt / p-tuning: number of trainable virtual tokens put "
                                  "before the input")
    prompt_init: str = opt("auto", "prompt / p-tuning: how the virtual tokens start: random | vocab (random "
                           "vocabulary words) | labels (the label names' word embeddings, repeated) | text "
                           "(prompt_init_text's) | auto (labels for classification, measured best; random otherwise); "
                           "p-tuning fits its MLP to give those words back before training")
    prompt_init_text: str | None = opt(None, "prompt / p-tuning: the text whose tokens start the virtual tokens "
                                       "(prompt_init=text), e.g. \"classify the sentiment of this review\"")
    ia3_feedforward_modules: list[str] | None = opt(None, "IA3: which target modules are feed-forward "
                                                    "(scaled on their input); default by architecture")
    prefix_projection: bool = opt(False, "prefix: produce the prefix through a 2-layer MLP (reparametrisation) "
                                  "instead of learning it directly")
    prefix_hidden_size: int | None = opt(None, "prefix: hidden size of that MLP (default: the model's hidden size)")
    adapter_type: str = opt("houlsby", "adapter: houlsby (after attention and feed-forward, LayerNorms train) "
                            "| pfeiffer (after feed-forward only)")
    pooling: str = opt("auto", "what a BERT classifier reads: mean (the mean of the token states, through an "
                       "appended fixed layer plain transformers loads; how sentence encoders such as minilm were "
                       "trained) | cls ([CLS]) | auto (the method's measured choice, `tunesmith methods`: "
                       "[CLS] for full, dora, ia3 and adapter, the mean for the others); other architectures read "
                       "[CLS]")
    adapter_size: int = opt(64, "adapter: bottleneck size (64 on BERT-base: 2.17 percent of its weights)")

    def __post_init__(self) -> None:
        if self.lora_r < 1:
            raise ValueError("lora_r must be >= 1")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError("lora_dropout must be in [0, 1)")
        if self.num_virtual_tokens < 1:
            raise ValueError("num_virtual_tokens must be >= 1")
        if self.prompt_init not in ("auto", "random", "vocab", "labels", "text"):
            raise ValueError("prompt_init must be auto, random, vocab, labels or text")
        if self.pooling not in ("auto", "mean", "cls"):
            raise ValueError("pooling must be auto, mean or cls")
        if self.adapter_type not in ("houlsby", "pfeiffer"):
            raise ValueError("adapter_type must be houlsby or pfeiffer")
        if self.adapter_size < 1 or (self.prefix_hidden_size is not None and self.prefix_hidden_size < 1):
            raise ValueError("adapter_size and prefix_hidden_size must be >= 1")


@dataclasses.dataclass
class TrainConfig:
    epochs: float = opt(3.0, "number of passes over the training data")
    max_steps: int = opt(-1, "stop after this many optimizer steps (overrides epochs when > 0)")
    batch_size: int = opt(32, "examples per device per step")
    eval_batch_size: int = opt(128, "examples per evaluation batch")
    learning_rate: float | None = opt(None, "peak learning rate; default per method and task, measured "
                                      "(`tunesmith methods` lists them; docs/strategy.md the sweep)")
    head_lr: float | None = opt(None, "peak learning rate of the task head (the classifier, and BERT's pooler "
                                "where it trains) apart from the rest; default: the method record's for "
                                "classification (prompt methods: their virtual tokens want a far larger rate "
                                "than a head), else train.learning_rate")
    weight_decay: float = opt(0.01, "AdamW weight decay (never applied to biases and LayerNorm weights)")
    warmup_ratio: float = opt(0.1, "share of steps for the linear warm-up")
    max_grad_norm: float = opt(1.0, "gradient clipping norm (0 turns it off)")
    grad_accum: int = opt(1, "gradient accumulation steps (effective batch = batch_size x grad_accum)")
    layer_lr_decay: float = opt(1.0, "layer-wise learning-rate decay: layer i of L gets lr x decay^(L-i); "
                                "1.0 turns it off")
    eval_every: int | None = opt(None, "evaluate (and checkpoint) every N steps (default: about 4 times per epoch)")
    early_stopping_patience: int | None = opt(None, "stop after N evaluations without improvement")
    metric: str = opt("f1", "validation metric for early stopping and best model: accuracy | f1")
    group_by_length: bool = opt(True, "batch texts of similar length together (less padding)")
    seed: int = opt(42, "seed for weights of new heads, dropout and data order")
    logging_steps: int = opt(10, "log the training loss every N steps")
    save_total_limit: int = opt(2, "keep at most this many checkpoints")
    precision: str = opt("auto", "auto | fp32 | bf16 | fp16. auto: bf16 autocast on CPUs with AVX512-BF16 or "
                         "AMX and on CUDA GPUs with native bf16, fp16 with loss scaling on older GPUs, fp32 "
                         "otherwise (TF32 matmuls on CUDA); the run log and run.json say which ran and why")
    time_budget: str | None = opt(None, "wall-time budget of the whole run, e.g. 5m, 90s, 1h30m: the run "
                                  "measures its step and evaluation speed first and plans its steps, warm-up "
                                  "and evaluations so that training, evaluation and saving end within it "
                                  "(train.epochs stays the upper bound)")
    budget_evals: int = opt(5, "with train.time_budget: evaluations (each a validation pass and a checkpoint) "
                            "spread over the run; fewer leave more of the budget to training")
    lean: bool = opt(True, "sequence classifiers of the BERT family: compute the last layer for [CLS] only "
                     "(same loss and gradients; other models always train with the plain forward)")
    report_to: list[str] | None = opt(None, "experiment tracking, comma-separated: none | tensorboard | mlflow "
                                      "(logs in the run directory; pip install 'tunesmith[tracking]')")

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError("precision must be auto, fp32, bf16 or fp16")
        if self.precision == "fp16":
            import torch  # only here: --help and config parsing stay torch-free

            if not torch.cuda.is_available():
                raise ValueError("precision fp16 needs a CUDA GPU (loss-scaled fp16 autocast); on the CPU use "
                                 "bf16 (fast with AVX512-BF16 or AMX) or fp32")
        if self.time_budget is not None:
            from .budget import parse_duration

            parse_duration(self.time_budget)  # raises with the accepted forms
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("batch_size and grad_accum must be >= 1")
        if self.budget_evals < 1:
            raise ValueError("budget_evals must be >= 1 (the last evaluation picks and saves the kept model)")
        if self.metric not in ("accuracy", "f1"):
            raise ValueError("metric must be accuracy or f1")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if not 0 < self.layer_lr_decay <= 1:
            raise ValueError("layer_lr_decay must be in (0, 1]")
        tracking.validate(self.report_to)  # unknown names, or a missing package: stop before any loading


@dataclasses.dataclass
class DistillConfig:
    teacher: str | None = opt(None, "distil from this finished classification run (its soft targets plus the "
                              "gold labels train the model); `tunesmith distill` sets it")
    temperature: float = opt(2.0, "softmax temperature of the soft targets (higher: softer)")
    alpha: float = opt(0.5, "weight of the soft-target loss; 1 - alpha goes to the gold labels (0.5 measured "
                       "against 0.9: docs/quality.md)")
    unlabelled: str | None = opt(None, "extra texts without labels the student learns from the teacher's soft "
                                 "targets alone, comma-separated: .txt files (one per line), tables with a text "
                                 "column, built-in data sets (labels dropped, e.g. amazon-reviews,nyt-editorials,"
                                 "tweets); texts of the validation or test split are dropped")
    unlabelled_column: str | None = opt(None, "text column of distill.unlabelled (default: text)")
    max_unlabelled: int | None = opt(None, "use at most this many unlabelled texts")

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        if not 0 <= self.alpha <= 1:
            raise ValueError("alpha must be in [0, 1]")


@dataclasses.dataclass
class AugmentConfig:
    ops: list[str] = opt([], "augmentations of the training split, comma-separated: eda (= synonym,insert,"
                         "swap,delete), synonym, insert, swap, delete, mixup, back-translation, paraphrase; "
                         "empty = none")
    copies: int = opt(4, "EDA: augmented copies made per training example")
    p_synonym: float = opt(0.1, "EDA: share of the words replaced by a WordNet synonym")
    p_insert: float = opt(0.1, "EDA: share of the words for which a synonym is inserted")
    p_swap: float = opt(0.1, "EDA: share of the words swapped")
    p_delete: float = opt(0.1, "EDA: probability that each word is deleted")
    wordnet: str | None = opt(None, "WordNet dict folder (default: $TUNESMITH_WORDNET, /usr/share/wordnet "
                              "from Debian's wordnet-base, nltk_data)")
    mixup_alpha: float = opt(0.4, "mixup: lambda ~ Beta(alpha, alpha) mixes embeddings and labels in a batch")
    paraphrase_model: str | None = opt(None, "paraphrase: a local seq2seq or causal LM (none is bundled)")
    translation_models: list[str] | None = opt(None, "back-translation: TO,BACK model paths (e.g. en->de, de->en)")

    def __post_init__(self) -> None:
        for name in ("p_synonym", "p_insert", "p_swap", "p_delete"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1)")
        if self.copies < 0 or self.mixup_alpha < 0:
            raise ValueError("copies and mixup_alpha must be >= 0")


@dataclasses.dataclass
class OutputConfig:
    dir: str | None = opt(None, "run directory (default: runs/<model>-<data>-<method>-<time>)")
    resume: bool = opt(False, "continue an interrupted run in `dir` from its newest checkpoint")
    merge: bool = opt(False, "for LoRA runs, also write a plain merged model to <run>/merged")
    overwrite: bool = opt(False, "allow writing into an existing finished run directory")


@dataclasses.dataclass
class NerConfig:
    scheme: str = opt("auto", "tag scheme of the NER files: auto | iob1 | iob2 (bio) | bilou (iobes); "
                      "read, validated and normalised to IOB2")
    repair: bool = opt(False, "repair tag sequences that break the scheme (e.g. I- after O in IOB2 "
                       "becomes B-) instead of stopping with an error")
    label_all_subtokens: bool = opt(False, "label every sub-token (B- becomes I- after the first) "
                                    "instead of only the first sub-token of each word")
    stride: int = opt(32, "tokens of overlap between windows when a sentence is longer than max_length")
    aggregation: str = opt("first", "how sub-token predictions become entities: simple | first | max | average")
    strict: bool = opt(False, "make seqeval's strict mode the headline metric (default mode is also reported)")
    news_size: int = opt(2000, "sentences in the built-in news-ner silver set (built with spaCy on first use)")

    def __post_init__(self) -> None:
        if self.aggregation not in ("simple", "first", "max", "average"):
            raise ValueError("aggregation must be simple, first, max or average")
        if self.stride < 0:
            raise ValueError("stride must be >= 0")


@dataclasses.dataclass
class GenerationConfig:
    block_size: int = opt(256, "plain text: tokens per training block (texts are joined and cut into blocks)")
    response_only: bool = opt(True, "prompt/response data: compute the loss on the response tokens only")
    prompt_column: str = opt("prompt", "JSONL field holding the prompt")
    response_column: str = opt("response", "JSONL field holding the response")
    chat_template: bool = opt(False, "format prompt/response pairs with the tokenizer's chat template")
    max_docs: int | None = opt(2000, "built-in news corpus: use at most this many articles")
    sample_prompts: list[str] = opt(["Artificial intelligence will", "The president said",
                                     "The stock market"],
                                    "fixed prompts whose generations are shown before and after training")
    max_new_tokens: int = opt(30, "tokens generated per sample prompt in the report")

    def __post_init__(self) -> None:
        if self.block_size < 8:
            raise ValueError("block_size must be >= 8")


@dataclasses.dataclass
class FinetuneConfig:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    method: MethodConfig = dataclasses.field(default_factory=MethodConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    ner: NerConfig = dataclasses.field(default_factory=NerConfig)
    generation: GenerationConfig = dataclasses.field(default_factory=GenerationConfig)
    distill: DistillConfig = dataclasses.field(default_factory=DistillConfig)

    def learning_rate(self) -> float:
        from .adapt.registry import default_lr  # the method's record holds its default lr

        return self.train.learning_rate or default_lr(self.method.name, self.model.task)

    def head_learning_rate(self) -> float | None:
        """train.head_lr, else the method record's head lr for classification; None: one lr for all."""
        from .adapt.registry import default_head_lr

        return self.train.head_lr or default_head_lr(self.method.name, self.model.task)
