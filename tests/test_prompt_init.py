"""Prompt tuning's virtual tokens can start as real word embeddings (method.prompt_init)."""
import pytest
import torch

from tunesmith.adapt.registry import apply_method
from tunesmith.config import MethodConfig
from tunesmith.errors import TunesmithError


def _apply(tiny_bert, method: str, num_virtual_tokens: int, **cfg):
    """(the peft model of `method` on a tiny labelled BERT, the base's word embeddings)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(tiny_bert, num_labels=2, id2label={0: "negative", 1: "positive"},
                                        label2id={"negative": 0, "positive": 1})
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, config=config)
    words = model.bert.embeddings.word_embeddings.weight.detach().clone()
    cfg = MethodConfig(name=method, num_virtual_tokens=num_virtual_tokens, pooling="cls", **cfg)
    return apply_method(model, cfg, "classification"), words


def _prompt_rows(tiny_bert, **cfg):
    peft_model, words = _apply(tiny_bert, "prompt", 5, **cfg)
    return peft_model.prompt_encoder["default"].embedding.weight.detach(), words


def test_vocab_and_label_init_start_from_word_embeddings(tiny_bert, tok):
    rows, words = _prompt_rows(tiny_bert, prompt_init="vocab")
    assert all(any(torch.equal(r, w) for w in words) for r in rows)
    rows, words = _prompt_rows(tiny_bert, prompt_init="labels")
    ids = tok("negative positive", add_special_tokens=False)["input_ids"]
    want = [words[ids[i % len(ids)]] for i in range(5)]
    assert all(torch.equal(r, w) for r, w in zip(rows, want))
    rows, words = _prompt_rows(tiny_bert, prompt_init="random")  # N(0, 1) rows, none a word's
    assert not any(torch.equal(rows[0], w) for w in words)


def test_text_init_needs_its_text(tiny_bert):
    with pytest.raises(TunesmithError, match="prompt_init_text"):
        _prompt_rows(tiny_bert, prompt_init="text")
    rows, words = _prompt_rows(tiny_bert, prompt_init="text", prompt_init_text="good film")
    assert torch.equal(rows[0], rows[2])  # two tokens, repeated to fill the five


def test_prompt_init_is_checked():
    with pytest.raises(ValueError, match="prompt_init"):
        MethodConfig(prompt_init="zeros")


def test_auto_is_labels_on_a_classifier_and_random_elsewhere(tiny_bert):
    from tunesmith.adapt.methods import prompt_init_of

    assert prompt_init_of(MethodConfig(name="prompt"), "classification") == "labels"
    assert prompt_init_of(MethodConfig(name="prompt"), "generation") == "random"
    assert prompt_init_of(MethodConfig(name="prompt", prompt_init="vocab"), "classification") == "vocab"
    auto, _ = _prompt_rows(tiny_bert)
    labels, _ = _prompt_rows(tiny_bert, prompt_init="labels")
    assert torch.equal(auto, labels)


def test_auto_without_a_tokenizer_starts_random_and_says_so(tiny_bert, tmp_path, capsys):
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig.from_pretrained(tiny_bert, num_labels=2))
    apply_method(model, MethodConfig(name="prompt", num_virtual_tokens=3, pooling="cls"), "classification")
    assert "start random" in capsys.readouterr().out
    model = BertForSequenceClassification(BertConfig.from_pretrained(tiny_bert, num_labels=2))
    with pytest.raises(TunesmithError, match="tokenizer"):
        apply_method(model, MethodConfig(name="prompt", prompt_init="labels", pooling="cls"), "classification")


def test_ptuning_starts_its_encoder_at_the_words(tiny_bert, tok):
    def outputs(**cfg):
        peft_model, words = _apply(tiny_bert, "ptuning", 4, **cfg)
        with torch.no_grad():
            return peft_model.prompt_encoder["default"](torch.arange(4)), words

    out, words = outputs()  # auto: the label names, through the fitted MLP
    ids = tok("negative positive", add_special_tokens=False)["input_ids"]
    want = torch.stack([words[ids[i % len(ids)]] for i in range(4)])
    assert torch.allclose(out, want, atol=1e-3 * float(want.abs().max()))
    out, words = outputs(prompt_init="vocab")
    nearest = torch.cdist(out, words).min(dim=1).values / words.norm(dim=1).mean()
    assert (nearest < 1e-2).all()  # each virtual token is some word of the vocabulary
    out, words = outputs(prompt_init="random")
    assert not torch.allclose(out, want, atol=1e-1)
