"""Model-based augmentation hooks: paraphrase with, or translate there and back through, any
local seq2seq or causal LM the user points at. tunesmith bundles no such model."""
from __future__ import annotations

import torch

from ..errors import TunesmithError

PARAPHRASE_PROMPT = "Paraphrase this sentence: {text}\nParaphrase:"


def load_generator(path: str):
    """(model, tokenizer, is_seq2seq) for a seq2seq or causal LM directory or hub id."""
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(path)
        tok = transformers.AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise TunesmithError(f"cannot load augmentation model '{path}': {e}") from None
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    auto = transformers.AutoModelForSeq2SeqLM if seq2seq else transformers.AutoModelForCausalLM
    model = auto.from_pretrained(path).eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok, seq2seq


@torch.inference_mode()
def generate(texts: list[str], path: str, prompt: str = "{text}", max_new_tokens: int = 64,
             batch_size: int = 16) -> list[str]:
    """Greedy generations, one per text; a causal LM continues `prompt` and only the new text is kept."""
    model, tok, seq2seq = load_generator(path)
    if not seq2seq:
        tok.padding_side = "left"  # continuation must follow the prompt directly
    out: list[str] = []
    for i in range(0, len(texts), batch_size):
        batch = [prompt.format(text=t) for t in texts[i:i + batch_size]]
        enc = tok(batch, return_tensors="pt", padding=True, truncation=True, max_length=256)
        ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        if not seq2seq:
            ids = ids[:, enc["input_ids"].shape[1]:]  # (batch, new_tokens)
        out += [t.strip().split("\n")[0] for t in tok.batch_decode(ids, skip_special_tokens=True)]
    return out


def paraphrase(texts: list[str], path: str) -> list[str]:
    """One paraphrase per text (seq2seq: the text itself is the input; causal LM: a prompt)."""
    model_is_causal = not getattr(__import__("transformers").AutoConfig.from_pretrained(path),
                                  "is_encoder_decoder", False)
    return generate(texts, path, PARAPHRASE_PROMPT if model_is_causal else "{text}")


def back_translate(texts: list[str], to_path: str, back_path: str) -> list[str]:
    """Translate with `to_path`, then back with `back_path` (e.g. en->de, de->en)."""
    return generate(generate(texts, to_path), back_path)
