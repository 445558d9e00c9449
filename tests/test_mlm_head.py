"""fill-mask for an encoder that ships without an MLM head: its top layer(s) and a head train on
cached lower-layer states. The top-layer forward equals the whole model's, only the top layers and
the head change, they beat the initialised head on held-out masks, and the result is prepared once
and then read from the cache (tiny model only; the real minilm is never trained inside the tests)."""
import pytest
import torch

from tunesmith.pretrain.heads import init_mlm_head, load_continued
from tunesmith.pretrain.top_layers import cached_states, top_accuracy, top_forward, train_top, trained_state

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
    return model.eval(), AutoTokenizer.from_pretrained(tiny_bert), new


@pytest.mark.parametrize("k", [1, 2])
def test_top_layers_on_cached_states_equal_the_whole_forward(tiny_bert, k):
    model, tok, _ = tiny_mlm(tiny_bert)
    texts = ["a superb cast", "the plot was dull and boring and long", "it is"]  # padding inside a batch
    (batch,) = cached_states(model, tok, texts, k, rate=0.3)
    enc = tok(sorted(texts, key=len), padding=True, return_tensors="pt")
    enc["input_ids"] = enc["input_ids"].masked_fill(batch["pick"], tok.mask_token_id)
    with torch.no_grad():
        want = model.bert(**enc).last_hidden_state
        got = top_forward(model, k, batch["hidden"], batch["attention"])
    real = batch["attention"].bool()
    torch.testing.assert_close(got[real], want[real], atol=1e-5, rtol=1e-5)
    assert (batch["targets"] != tok.mask_token_id).all() and batch["pick"].any(1).all()


def test_only_the_top_layers_and_head_train_and_they_beat_the_initialised_head(tiny_bert):
    model, tok, new = tiny_mlm(tiny_bert)
    assert any("cls.predictions" in w for w in new)  # the tiny BERT ships without a head, like minilm
    k, n_layers = 1, model.config.num_hidden_layers
    train, held = cached_states(model, tok, sentences(200, 0), k, rate=0.3), \
        cached_states(model, tok, sentences(60, 1), k, rate=0.3, seed=1)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    before = top_accuracy(model, held, k)
    losses = train_top(model, train, k, epochs=15, lr=1e-3, head_lr=1e-2)
    after = top_accuracy(model, held, k)
    assert losses[-1] < losses[0]
    assert after["top5"] > before["top5"] and after["top1"] > before["top1"]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, start[n])}
    top = f"bert.encoder.layer.{n_layers - 1}."
    assert changed and all(n.startswith((top, "cls.predictions.")) for n in changed)
    assert "bert.embeddings.word_embeddings.weight" not in changed  # the tied decoder stays frozen
    assert model.cls.predictions.decoder.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert changed <= set(trained_state(model, k))


def test_prepared_once_then_read_from_the_cache(tiny_bert, tmp_path, monkeypatch):
    from tunesmith import mlm_cache

    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(mlm_cache.RECIPE, "epochs", 3)
    monkeypatch.setitem(mlm_cache.RECIPE, "top_layers", 1)
    model, tok, _ = tiny_mlm(tiny_bert)
    first = mlm_cache.ensure_head("tiny", model, tok, sentences=(sentences(80, 0), sentences(20, 1)))
    assert (mlm_cache.head_dir("tiny") / mlm_cache.FILE).is_file()
    assert set(first) >= {"before", "after", "seconds", "recipe"}
    want = trained_state(model, 1)

    def no_training(*a, **k):
        raise AssertionError("the cached head must not be trained again")

    monkeypatch.setattr(mlm_cache, "prepare", no_training)
    again, tok, _ = tiny_mlm(tiny_bert)
    assert mlm_cache.ensure_head("tiny", again, tok) == first
    got = dict(again.named_parameters())
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_predictor_for_fill_mask_loads_through_the_trained_head(tiny_bert, monkeypatch):
    """Predictor.load(..., task='fill-mask') (so `predict` and `serve`) shares the CLI's loader, which
    gives the built-in encoder its trained head."""
    from tunesmith import mlm_cache
    from tunesmith.infer.predictor import Predictor

    seen = []
    real = mlm_cache.load_masked_lm

    def spy(spec, *a, **k):
        seen.append(spec)
        return real(spec, *a, **k)

    monkeypatch.setattr(mlm_cache, "load_masked_lm", spy)
    p = Predictor.load(str(tiny_bert), task="fill-mask")
    assert seen == [str(tiny_bert)]
    assert len(p.fill_mask(["a [MASK] film"], top_k=2)[0][0]) == 2
