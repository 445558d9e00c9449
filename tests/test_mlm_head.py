"""The trained MLM head for an encoder without one: only the head trains, it beats the initialised
head on held-out masks, and it is prepared once and then read from the cache (tiny model only;
the real head for minilm is never trained inside the tests)."""
import pytest
import torch

from tunesmith.pretrain.heads import (head_state, init_mlm_head, load_continued, masked_accuracy,
                                      masked_features, train_mlm_head)

FIXED = ["the film was great and lovely", "the plot was dull and boring", "a superb cast and music",
         "the acting was awful", "it is a charming film", "the script was weak and bland"]


def sentences(n: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [rng.choice(FIXED) for _ in range(n)]


def tiny_mlm(tiny_bert):
    from transformers import AutoTokenizer

    from tunesmith.models import ModelRef

    torch.manual_seed(0)
    model, new = load_continued(ModelRef("tiny", str(tiny_bert), "local"), "mlm")
    init_mlm_head(model, new)
    return model, AutoTokenizer.from_pretrained(tiny_bert), new


def test_only_the_head_trains_and_it_beats_the_initialised_head(tiny_bert):
    model, tok, new = tiny_mlm(tiny_bert)
    assert any("cls.predictions" in w for w in new)  # the tiny BERT ships without a head, like minilm
    feats, targets = masked_features(model, tok, sentences(200, 0), rate=0.3)
    h_feats, h_targets = masked_features(model, tok, sentences(60, 1), rate=0.3, seed=1)
    assert feats.shape == (len(targets), 32) and (targets != tok.mask_token_id).all()
    encoder = {n: p.detach().clone() for n, p in model.bert.named_parameters()}
    before = masked_accuracy(model, h_feats, h_targets)
    losses = train_mlm_head(model, feats, targets, epochs=20, lr=1e-2)
    after = masked_accuracy(model, h_feats, h_targets)
    assert losses[-1] < losses[0]
    assert after["top5"] > before["top5"] and after["top1"] > before["top1"]
    assert all(torch.equal(p, encoder[n]) for n, p in model.bert.named_parameters())  # frozen
    assert model.cls.predictions.decoder.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert set(head_state(model)) == {"cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
                                      "cls.predictions.transform.LayerNorm.weight",
                                      "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias"}


def test_head_is_prepared_once_then_read_from_the_cache(tiny_bert, tmp_path, monkeypatch):
    from tunesmith import mlm_cache

    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(mlm_cache.RECIPE, "epochs", 3)
    model, tok, _ = tiny_mlm(tiny_bert)
    first = mlm_cache.ensure_head("tiny", model, tok, sentences=(sentences(80, 0), sentences(20, 1)))
    assert (mlm_cache.head_dir("tiny") / "mlm_head.safetensors").is_file()
    assert set(first) >= {"before", "after", "seconds"}
    want = head_state(model)

    def no_training(*a, **k):
        raise AssertionError("the cached head must not be trained again")

    monkeypatch.setattr(mlm_cache, "prepare_head", no_training)
    again, tok, _ = tiny_mlm(tiny_bert)
    assert mlm_cache.ensure_head("tiny", again, tok) == first
    got = head_state(again)
    assert all(torch.equal(got[k], want[k]) for k in want)
