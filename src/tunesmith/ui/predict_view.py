"""The Try page: predictions through the same Predictor `tunesmith predict` uses, loaded once per
run or model and kept (the two most recent) so that typing another text answers at once."""
from __future__ import annotations

import threading
from collections import OrderedDict

from ..errors import TunesmithError

MAX_TEXTS = 64
MAX_CHARS = 10_000
KEEP = 2  # loaded predictors kept in memory


class Predictors:
    """An LRU of loaded Predictors keyed by (spec, task); one load at a time."""

    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self.loaded: OrderedDict[tuple[str, str | None], object] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, spec: str, task: str | None = None):
        from ..infer.predictor import Predictor

        key = (spec, task or None)
        with self.lock:
            if key in self.loaded:
                self.loaded.move_to_end(key)
                return self.loaded[key]
            predictor = Predictor.load(spec, task=task or None)
            self.loaded[key] = predictor
            while len(self.loaded) > self.keep:
                self.loaded.popitem(last=False)
            return predictor


def check_texts(texts: list[str]) -> list[str]:
    texts = [t for t in (texts or []) if isinstance(t, str) and t.strip()]
    if not texts:
        raise TunesmithError("type at least one text (one per line)")
    if len(texts) > MAX_TEXTS or max(map(len, texts)) > MAX_CHARS:
        raise TunesmithError(f"at most {MAX_TEXTS} texts of at most {MAX_CHARS:,} characters each")
    return texts


def predict(predictors: Predictors, spec: str, texts: list[str], task: str | None = None,
            max_new_tokens: int = 30, top_k: int = 5) -> dict:
    """{'task', 'results'}: one record per text, as `tunesmith predict` writes them (classification
    with every label's score; NER spans carry start/end offsets into the text for highlighting)."""
    texts = check_texts(texts)
    p = predictors.get(spec, task)
    kwargs = {"classification": {"all_scores": True}, "fill-mask": {"top_k": int(top_k)},
              "generation": {"max_new_tokens": int(max_new_tokens)}}.get(p.task, {})
    return {"task": p.task, "texts": texts, "results": _plain(p.records(texts, **kwargs))}


def _plain(obj):
    """numpy / torch scalars in the records -> JSON numbers."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    return obj
