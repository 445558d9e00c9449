"""Text generation with a causal LM: batched prompts, KV cache, greedy or sampling, stop strings,
and the tokenizer's chat template for instruct models."""
from __future__ import annotations

import torch


def uses_chat(tokenizer, chat: bool | None = None) -> bool:
    """Whether prompts go through the chat template: `chat`, or (None) when the tokenizer has one."""
    return bool(getattr(tokenizer, "chat_template", None)) if chat is None else bool(chat)


def format_prompt(tokenizer, prompt: str, chat: bool | None = None, system: str | None = None) -> str:
    """The prompt as the model should see it: wrapped in the chat template when `chat` (None: when
    the tokenizer has one), else unchanged.

    Example:
        >>> format_prompt(tok, "Hi", chat=False)
        'Hi'
    """
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if chat is None:
        chat = has_template
    if not chat:
        return prompt
    if not has_template:
        raise ValueError("this tokenizer has no chat template; generate without chat formatting")
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """Text up to (not including) the earliest stop string.

    Example:
        >>> cut_at_stop("one. two.", ["."])
        'one'
    """
    ends = [text.find(s) for s in stop or [] if s and s in text]
    return text[:min(ends)] if ends else text


def _ensure_pad(tokenizer) -> None:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # decoders often have no pad token


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str] | str, max_new_tokens: int = 50, do_sample: bool = False,
             temperature: float = 1.0, top_k: int = 50, top_p: float = 1.0, num_return_sequences: int = 1,
             seed: int | None = None, stop: list[str] | None = None, chat: bool | None = None,
             system: str | None = None, batch_size: int = 8) -> list[list[str]]:
    """Continuations of each prompt (the new text only), `num_return_sequences` per prompt.

    Prompts are left-padded into batches and decoded with the KV cache (`model.generate`);
    generation of a sequence stops at EOS, at `max_new_tokens`, or at a stop string, which is cut
    from the text. With `seed`, sampling is reproducible (the global RNG is left untouched).

    Example:
        >>> generate(model, tok, ["Artificial intelligence will"], max_new_tokens=5)
        [[' change the way we live']]
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if max_new_tokens < 1 or num_return_sequences < 1:
        raise ValueError("max_new_tokens and num_return_sequences must be >= 1")
    if not do_sample and num_return_sequences > 1:
        raise ValueError("num_return_sequences > 1 needs sampling (greedy decoding gives one answer)")
    _ensure_pad(tokenizer)
    chat = uses_chat(tokenizer, chat)  # None (the default, as in the CLI): when the tokenizer has a template
    texts = [format_prompt(tokenizer, p, chat, system) for p in prompts]
    device = next(model.parameters()).device
    model.eval()
    kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, num_return_sequences=num_return_sequences,
                  pad_token_id=tokenizer.pad_token_id, use_cache=True)
    if do_sample:
        kwargs.update(temperature=temperature, top_k=top_k, top_p=top_p)
    else:  # silence the sampling defaults some generation configs carry
        kwargs.update(temperature=None, top_k=None, top_p=None)
    if stop:
        kwargs.update(stop_strings=list(stop), tokenizer=tokenizer)
    out: list[list[str]] = []
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # new tokens must follow each prompt directly
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(seed)
            for lo in range(0, len(texts), batch_size):
                chunk = texts[lo:lo + batch_size]
                enc = tokenizer(chunk, return_tensors="pt", padding=True,
                                add_special_tokens=not chat).to(device)
                seqs = model.generate(**enc, **kwargs)  # (batch * n_return, prompt + new)
                new = tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                for i in range(len(chunk)):
                    out.append([cut_at_stop(t, stop) for t in new[i * num_return_sequences:(i + 1) * num_return_sequences]])
    finally:
        tokenizer.padding_side = side
    return out
