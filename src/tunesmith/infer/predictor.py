"""The Predictor: load a model once, classify texts fast, return results in input order."""
from __future__ import annotations

from pathlib import Path

import torch

from .. import runs
from ..errors import TunesmithError
from ..models import ModelRef, load_for_task, load_tokenizer, resolve
from .batching import token_budget_batches


def load_run_model(run: Path, info: dict, merge: bool = True):
    """The trained model of a run; LoRA adapters are merged for inference unless merge=False."""
    import transformers

    labels = info.get("labels")
    auto = {"classification": transformers.AutoModelForSequenceClassification,
            "token-classification": transformers.AutoModelForTokenClassification,
            "generation": transformers.AutoModelForCausalLM}.get(info["task"])
    if auto is None:
        raise TunesmithError(f"{run}: task '{info['task']}' has no predictor")
    if (run / "model" / "adapter_config.json").is_file():  # any peft method (lora, dora, ia3, prompt...)
        from peft import PeftModel

        base = info["base_model_path"]
        if not Path(base).exists() and info.get("base_model_source") != "hub":
            raise TunesmithError(f"{run}: base model {base} of this LoRA run is missing; reinstall it "
                                 f"or load a merged model (tunesmith finetune --output.merge=true)")
        kwargs = {}
        if labels is not None:
            kwargs = dict(num_labels=len(labels), id2label=dict(enumerate(labels)),
                          label2id={n: i for i, n in enumerate(labels)})
        model = auto.from_pretrained(base, **kwargs)
        model = PeftModel.from_pretrained(model, run / "model")
        return model.merge_and_unload() if merge and hasattr(model, "merge_and_unload") else model
    return auto.from_pretrained(run / "model")


class Predictor:
    """Loads a run, built-in, local path or hub id once; predicts lists of texts in batches.

    Example:
        >>> p = Predictor.load("runs/my-run")
        >>> p.classify(["a gorgeous, witty film", "dull and lifeless"])
        [{'label': 'positive', 'score': 0.97}, {'label': 'negative', 'score': 0.95}]
    """

    def __init__(self, model, tokenizer, task: str = "classification", max_length: int = 128,
                 max_tokens: int = 16384, device: str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.task = task
        self.max_length = max_length
        self.max_tokens = max_tokens
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)] \
            if task == "classification" else None

    @classmethod
    def load(cls, spec: str, **kwargs) -> "Predictor":
        path = Path(spec)
        if path.is_dir() and (path / "run.json").is_file():
            info = runs.load_run(path)
            model = load_run_model(path, info)
            tok = load_tokenizer(ModelRef(spec, str(path / "model"), "run", run=path))
            kwargs.setdefault("max_length", info.get("max_length", 128))
            return cls(model, tok, info["task"], **kwargs)
        ref = resolve(spec)
        model, _ = load_for_task(ref, "classification")
        return cls(model, load_tokenizer(ref), "classification", **kwargs)

    def _batches(self, texts: list[str]):
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)
        lengths = [len(ids) for ids in enc["input_ids"]]
        for idx in token_budget_batches(lengths, self.max_tokens):
            feats = [{k: enc[k][i] for k in enc.keys()} for i in idx]
            batch = self.tokenizer.pad(feats, return_tensors="pt")
            yield idx, {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def logits(self, texts: list[str]) -> torch.Tensor:
        """Logits for each text, in input order: (n_texts, num_labels)."""
        out = torch.empty((len(texts), self.model.config.num_labels), dtype=torch.float32)
        for idx, batch in self._batches(texts):
            out[idx] = self.model(**batch).logits.float().cpu()  # (batch, num_labels)
        return out

    def classify(self, texts: str | list[str], all_scores: bool = False) -> list[dict] | dict:
        """Label and probability per text (and every label's probability with all_scores)."""
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        if not items:
            return []
        probs = torch.softmax(self.logits(items), dim=-1)
        results = []
        for row in probs:
            best = int(row.argmax())
            res = {"label": self.labels[best], "score": round(float(row[best]), 6)}
            if all_scores:
                res["scores"] = {self.labels[i]: round(float(v), 6) for i, v in enumerate(row)}
            results.append(res)
        return results[0] if single else results
