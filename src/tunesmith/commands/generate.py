"""`tunesmith generate MODEL PROMPT ...`: continue prompts with a causal LM (built-in smollm2,
a generation run, a local directory or a hub id)."""
from __future__ import annotations

import argparse
import json

from ..errors import TunesmithError


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate text with a causal LM (greedy or sampling)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  tunesmith generate smollm2 \"Artificial intelligence will\"\n"
                              "  tunesmith generate runs/RUN \"Once upon a time\" --sample --temperature 0.8 "
                              "--top-p 0.9 -n 3 --seed 1\n"
                              "  tunesmith generate smollm2 \"What is transfer learning?\" --chat --stop \"\\n\\n\"")
    p.add_argument("model", help="smollm2, a generation run directory, a local model directory or hub id")
    p.add_argument("prompts", nargs="+", metavar="PROMPT", help="one or more prompts")
    p.add_argument("--max-new-tokens", type=int, default=50, help="tokens to generate per prompt [50]")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature [1.0]")
    p.add_argument("--top-k", type=int, default=50, help="sample from the k most likely tokens [50]")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold [1.0]")
    p.add_argument("-n", "--num-return-sequences", type=int, default=1, help="completions per prompt (needs --sample)")
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible sampling")
    p.add_argument("--stop", action="append", default=None, help="stop string (repeatable); cut from the output")
    p.add_argument("--chat", action=argparse.BooleanOptionalAction, default=None,
                   help="wrap prompts in the tokenizer's chat template (default: when it has one)")
    p.add_argument("--system", default=None, help="system message for --chat")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.set_defaults(func=run)


def load_causal_lm(spec: str):
    """(model, tokenizer) for a built-in, a generation run (LoRA merged), a directory or hub id."""
    from pathlib import Path

    from .. import runs
    from ..infer.predictor import load_run_model
    from ..models import ModelRef, load_for_task, load_tokenizer, resolve

    path = Path(spec)
    if path.is_dir() and (path / "run.json").is_file():
        info = runs.load_run(path, task="generation")
        return load_run_model(path, info), load_tokenizer(ModelRef(spec, str(path / "model"), "run", run=path))
    ref = resolve(spec)
    model, _ = load_for_task(ref, "generation")
    return model, load_tokenizer(ref)


def run(args) -> int:
    from ..infer.generation import generate, uses_chat

    if args.num_return_sequences > 1 and not args.sample:
        raise TunesmithError("-n/--num-return-sequences > 1 needs --sample (greedy decoding gives one answer)")
    model, tok = load_causal_lm(args.model)
    try:
        outs = generate(model, tok, args.prompts, max_new_tokens=args.max_new_tokens, do_sample=args.sample,
                        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                        num_return_sequences=args.num_return_sequences, seed=args.seed, stop=args.stop,
                        chat=args.chat, system=args.system)
    except ValueError as e:
        raise TunesmithError(str(e)) from None
    chat = uses_chat(tok, args.chat)
    for prompt, completions in zip(args.prompts, outs):
        for c in completions:
            print(json.dumps({"prompt": prompt, "completion": c, "chat": chat}) if args.json
                  else show(prompt, c, chat))
    return 0


def show(prompt: str, completion: str, chat: bool) -> str:
    """Plain text: the prompt and its continuation read as one text. Chat: the reply is an answer,
    not a continuation, so prompt and reply are printed apart (gluing them read 'AI willThe AI...')."""
    if not chat:
        return f"{prompt}{completion}\n"
    return f"user: {prompt}\nassistant: {completion.strip()}\n"
