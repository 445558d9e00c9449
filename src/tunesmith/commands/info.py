"""`tunesmith info MODEL [--text ...]`: the facts of a model and how it tokenises a text."""
import json

from ..models import load_config, load_tokenizer, resolve, model_facts


def register(sub) -> None:
    p = sub.add_parser("info", help="show a model's vocabulary, parameters, layers, heads, hidden size; "
                                    "tokenise a text", description=__doc__)
    p.add_argument("model", help="built-in name (minilm, smollm2), run directory, local path or hub id")
    p.add_argument("--text", action="append", help="show tokens, ids and attention mask (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def count_params(ref) -> int:
    """Parameters from the weights' shapes; builds the model on the meta device (no memory)."""
    import torch
    from transformers import AutoModel

    cfg = load_config(ref)
    with torch.device("meta"):
        model = AutoModel.from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def run(args) -> int:
    ref = resolve(args.model)
    cfg = load_config(ref)
    tok = load_tokenizer(ref)
    facts = {"model": args.model, "path": ref.path, **model_facts(cfg, count_params(ref)),
             "tokenizer": type(tok).__name__, "tokenizer_vocab": len(tok),
             "special_tokens": {k: f"{v} (id {tok.convert_tokens_to_ids(v)})"
                                for k, v in tok.special_tokens_map.items() if isinstance(v, str)}}
    texts = []
    for text in args.text or []:
        enc = tok(text)
        texts.append({"text": text, "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
                      "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    if args.json:
        print(json.dumps({**facts, "texts": texts}, indent=2))
        return 0
    for k, v in facts.items():
        if k == "special_tokens":
            print(f"{'special tokens':<18} " + ", ".join(f"{a}={b}" for a, b in v.items()))
        else:
            print(f"{k.replace('_', ' '):<18} {v:,}" if isinstance(v, int) else f"{k.replace('_', ' '):<18} {v}")
    for t in texts:
        print(f"\ntext:            {t['text']}\ntokens:          {t['tokens']}\n"
              f"input_ids:       {t['input_ids']}\nattention_mask:  {t['attention_mask']}")
    return 0
