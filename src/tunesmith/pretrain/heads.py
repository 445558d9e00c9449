"""Load the model a pre-training objective needs, and initialise heads the checkpoint lacks.

The bundled encoder (all-MiniLM-L6-v2) ships without its MLM head. What we do then:
  * decoder weight: tied to the word embeddings (transformers does this for BERT);
  * transform dense: the identity (the head starts as "compare the final hidden state with each
    word embedding" instead of passing it through a random projection); LayerNorm: ones/zeros;
  * output bias: the log unigram frequency of each token in the training corpus (add-one
    smoothed), so the untrained head predicts frequent tokens rather than arbitrary ones;
  * the NSP classifier (mlm+nsp): transformers' default N(0, 0.02) init.
Every newly initialised weight name is reported.
"""
from __future__ import annotations

import torch

from ..models import ModelRef, hub_hint

AUTO = {"mlm": "AutoModelForMaskedLM", "mlm+nsp": "AutoModelForPreTraining", "clm": "AutoModelForCausalLM"}


def load_continued(ref: ModelRef, objective: str):
    """(model, newly initialised weight names) for continued pre-training from `ref`."""
    import transformers

    auto = getattr(transformers, AUTO[objective])
    try:
        model, info = auto.from_pretrained(ref.path, output_loading_info=True)
    except (OSError, ValueError) as e:
        raise hub_hint(ref, e) from None
    return model, sorted(info.get("missing_keys", []))


def token_prior(tokenizer, docs: list[str], limit: int = 2000) -> torch.Tensor:
    """log p(token) over (at most `limit`) documents, add-one smoothed: (vocab,)."""
    counts = torch.ones(len(tokenizer))
    enc = tokenizer(docs[:limit], add_special_tokens=False, return_attention_mask=False, verbose=False)
    for ids in enc["input_ids"]:
        counts += torch.bincount(torch.tensor(ids, dtype=torch.long), minlength=len(tokenizer)).float()
    return (counts / counts.sum()).log()


def init_mlm_head(model, new_weights: list[str], prior: torch.Tensor | None = None) -> list[str]:
    """Initialise the parts of a BERT-style MLM head listed in new_weights; returns what was set."""
    head = getattr(getattr(model, "cls", None), "predictions", None)
    if head is None:
        return []
    done = []
    with torch.no_grad():
        if any("transform.dense" in w for w in new_weights):
            dense = head.transform.dense
            dense.weight.copy_(torch.eye(dense.weight.shape[0], dense.weight.shape[1]))
            dense.bias.zero_()
            done.append("transform.dense = identity")
        if any(w.endswith("predictions.bias") or w.endswith("decoder.bias") for w in new_weights):
            bias = torch.zeros_like(head.bias)
            if prior is not None:  # ids the tokenizer never produces keep the rarest prior
                n = min(len(prior), len(bias))
                bias.fill_(prior.min())
                bias[:n] = prior[:n]
            head.bias.copy_(bias - bias.mean())
            done.append("output bias = log unigram prior" if prior is not None else "output bias = 0")
    if head.decoder.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr():
        done.append("decoder tied to word embeddings")
    return done


def carry_pooler(base_path: str, out_dir, model) -> list[str]:
    """Copy the base checkpoint's pooler into a saved MLM model that has no place for it.

    `BertForMaskedLM` drops the pooler, so a classifier fine-tuned from the saved run would start
    from a random pooler while one fine-tuned from the base starts from the trained one. Carrying
    the (unchanged: MLM never trains it) pooler keeps the chained comparison fair.
    """
    from pathlib import Path

    from safetensors.torch import load_file, save_file

    src, dst = Path(base_path) / "model.safetensors", Path(out_dir) / "model.safetensors"
    if not src.is_file() or not dst.is_file():
        return []
    base, saved = load_file(src), load_file(dst)
    prefix = getattr(model, "base_model_prefix", "bert")
    carried = {}
    for key, tensor in base.items():
        if ".pooler." in f".{key}":
            name = key if key.startswith(prefix + ".") else f"{prefix}.{key}"
            if name not in saved:
                carried[name] = tensor
    if carried:
        save_file({**saved, **carried}, dst, metadata={"format": "pt"})
    return sorted(carried)


# ---- a trained MLM head for an encoder that ships without one (the built-in minilm) ------------
# The head's own weights (transform dense + LayerNorm + output bias; the decoder stays tied to the
# frozen word embeddings) train together with the encoder's top layers: pretrain/top_layers.py,
# prepared once and cached by mlm_cache.py.
HEAD_PARAMS = ("transform.dense", "transform.LayerNorm", "bias")


def head_module(model):
    """The MLM head mapping hidden states to vocabulary logits (BERT: model.cls)."""
    head = getattr(model, "cls", None)
    if head is None or not hasattr(head, "predictions"):
        raise ValueError(f"{type(model).__name__} has no BERT-style MLM head (model.cls.predictions)")
    return head
