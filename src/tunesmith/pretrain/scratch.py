"""From-scratch models and tokenizers: BERT-style (MLM, NSP) or GPT-style (CLM) configs by size,
and a WordPiece or byte-level BPE tokenizer trained on the corpus with `tokenizers`."""
from __future__ import annotations

SIZES = {  # layers, hidden, heads, feed-forward
    "tiny": (2, 128, 2, 512),
    "small": (4, 256, 4, 1024),
    "base": (12, 768, 12, 3072),
}


def scratch_config(objective: str, size: str, tokenizer, max_positions: int = 512):
    """A randomly initialisable config sized for `size`, matching the tokenizer's vocabulary.

    Example:
        >>> scratch_config("mlm", "tiny", tok).num_hidden_layers
        2
    """
    from transformers import BertConfig, GPT2Config

    layers, hidden, heads, ffn = SIZES[size]
    if objective == "clm":
        return GPT2Config(vocab_size=len(tokenizer), n_positions=max_positions, n_embd=hidden, n_layer=layers,
                          n_head=heads, n_inner=ffn, bos_token_id=tokenizer.bos_token_id or tokenizer.eos_token_id,
                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=max_positions,
                      pad_token_id=tokenizer.pad_token_id)


def train_tokenizer(kind: str, docs: list[str], vocab_size: int, objective: str):
    """A WordPiece (BERT, uncased) or byte-level BPE (GPT/RoBERTa) tokenizer trained on docs.

    Example:
        >>> tok = train_tokenizer("wordpiece", ["some text", "more text"], 200, "mlm")
        >>> tok.mask_token
        '[MASK]'
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "wordpiece":
        specials = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                    "mask_token": "[MASK]"}
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(specials.values()))
        bos, eos = "[CLS]", "[SEP]"
    else:
        specials = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>",
                    "mask_token": "<mask>"}
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials.values()),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        bos, eos = "<s>", "</s>"
    tok.train_from_iterator(docs, trainer)
    if objective != "clm":  # encoders see [CLS] A [SEP] (B [SEP]); a causal LM sees raw text
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} $B:1 {eos}:1",
            special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **specials)
