"""Identity tests: the Predictor answers exactly what a plain transformers forward pass on each
text alone answers, for every task, in input order, whatever the batch composition."""
from __future__ import annotations

import json
import random

import pytest
import torch

from conftest import sentiment_rows

TEXTS = [r["text"] for r in sentiment_rows(24, seed=3)] + \
    ["good", "awful " * 40, "the plot was dull but the music was lovely and the cast charming"]
BUDGETS = [64, 300, 100_000]  # one text per batch ... everything in one batch


def shuffled(texts: list[str], seed: int) -> list[str]:
    out = list(texts)
    random.Random(seed).shuffle(out)
    return out


@pytest.fixture
def tok(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


def _cls_model(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"},
        label2id={"neg": 0, "neu": 1, "pos": 2}).eval()


@pytest.mark.parametrize("budget", BUDGETS)
def test_classification_logits_equal_one_text_forward(tiny_bert, tok, budget):
    from tunesmith.infer.predictor import Predictor

    model = _cls_model(tiny_bert)
    texts = shuffled(TEXTS, budget)
    with torch.no_grad():
        ref = torch.cat([model(**tok(t, return_tensors="pt", truncation=True, max_length=64)).logits
                         for t in texts])  # (n, 3)
    p = Predictor(model, tok, "classification", max_length=64, max_tokens=budget, max_batch=7)
    got = p.logits(texts)
    assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()
    labels = p.classify(texts, all_scores=True)
    assert [r["label"] for r in labels] == [["neg", "neu", "pos"][i] for i in ref.argmax(-1).tolist()]
    assert all(abs(sum(r["scores"].values()) - 1) < 1e-4 for r in labels)
    assert p.classify(texts[0]) == {k: v for k, v in labels[0].items() if k != "scores"}
    assert p.predict(texts[:2]) == p.classify(texts[:2])


def test_logits_of_empty_list_and_threads(tiny_bert, tok):
    from tunesmith.infer.predictor import Predictor

    p = Predictor(_cls_model(tiny_bert), tok, threads=1)
    assert p.classify([]) == [] and p.logits([]).shape == (0, 3)
    assert torch.get_num_threads() == 1 and p.threads == 1


def _tok_model(tiny_bert):
    from transformers import AutoModelForTokenClassification

    labels = ["O", "B-POS", "I-POS", "B-NEG", "I-NEG"]
    torch.manual_seed(1)
    model = AutoModelForTokenClassification.from_pretrained(
        tiny_bert, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={l: i for i, l in enumerate(labels)})
    with torch.no_grad():  # make entities frequent: B-POS on positive words via a biased head
        model.classifier.bias.copy_(torch.tensor([0.0, 0.3, 0.2, 0.3, 0.2]))
    return model.eval()


def _same_entities(a: list[list[dict]], b: list[list[dict]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert [{k: v for k, v in e.items() if k != "score"} for e in x] == \
               [{k: v for k, v in e.items() if k != "score"} for e in y]
        assert [e["score"] for e in x] == pytest.approx([e["score"] for e in y], abs=1e-5)


@pytest.mark.parametrize("budget", [64, 100_000])
@pytest.mark.parametrize("aggregation", ["simple", "first"])
def test_token_classification_equals_one_text_forward(tiny_bert, tok, budget, aggregation):
    from tunesmith.infer.ner_spans import predict_entities
    from tunesmith.infer.predictor import Predictor

    model = _tok_model(tiny_bert)
    texts = shuffled(TEXTS, 7)
    ref = [predict_entities(model, tok, [t], aggregation, max_length=64)[0] for t in texts]
    assert any(ref), "the fixture should produce entities"
    p = Predictor(model, tok, "token-classification", max_length=64, max_tokens=budget)
    _same_entities(p.entities(texts, aggregation=aggregation), ref)
    _same_entities([p.predict(texts[0], aggregation=aggregation)], ref[:1])


def test_fill_mask_equals_one_text_forward(tiny_bert, tok):
    from transformers import AutoModelForMaskedLM

    from tunesmith.infer.fill_mask import fill_mask
    from tunesmith.infer.predictor import Predictor

    torch.manual_seed(2)
    model = AutoModelForMaskedLM.from_pretrained(tiny_bert).eval()
    texts = ["the film was [MASK]", "a [MASK] plot and a [MASK] cast with very lovely music indeed",
             "[MASK]", "it was so " + "really " * 20 + "[MASK]"]
    ref = [fill_mask(model, tok, [t], top_k=3)[0] for t in texts]
    for budget in (16, 100_000):
        got = Predictor(model, tok, "fill-mask", max_length=128, max_tokens=budget).fill_mask(texts, top_k=3)
        assert [[[c["token"] for c in m] for m in r] for r in got] == \
               [[[c["token"] for c in m] for m in r] for r in ref]
        assert [c["score"] for r in got for m in r for c in m] == \
               pytest.approx([c["score"] for r in ref for m in r for c in m], abs=1e-5)


def test_generation_equals_one_prompt_generate(tiny_bert, tok):
    from transformers import LlamaConfig, LlamaForCausalLM

    from tunesmith.infer.generation import generate
    from tunesmith.infer.predictor import Predictor, prepare_tokenizer

    torch.manual_seed(3)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                      pad_token_id=tok.pad_token_id, bos_token_id=None, eos_token_id=None)
    model = LlamaForCausalLM(cfg).eval()
    tok = prepare_tokenizer(tok, "generation")
    tok.model_input_names = ["input_ids", "attention_mask"]  # a decoder takes no token_type_ids
    prompts = ["the film was", "a dull plot and a lovely cast with music", "good", "it was so very really"]
    ref = [generate(model, tok, [p], max_new_tokens=6)[0] for p in prompts]
    for batch in (1, 3):
        got = Predictor(model, tok, "generation", max_length=64).generate(prompts, max_new_tokens=6,
                                                                          batch_size=batch)
        assert got == ref


def _fake_run(tmp_path, tiny_bert, method: str = "full"):
    run = tmp_path / "run"
    model = _cls_model(tiny_bert)
    model.save_pretrained(run / "model")
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(run / "model")
    (run / "run.json").write_text(json.dumps({"status": "complete", "task": "classification",
                                              "method": method, "labels": ["neg", "neu", "pos"],
                                              "max_length": 32, "base_model_path": str(tiny_bert)}))
    return run, model


def test_load_run_directory(tmp_path, tiny_bert):
    from tunesmith.infer.predictor import Predictor

    run, model = _fake_run(tmp_path, tiny_bert)
    p = Predictor.load(run, fast="fp32")
    assert p.task == "classification" and p.max_length == 32 and p.labels == ["neg", "neu", "pos"]
    ref = Predictor(model, p.tokenizer, max_length=32).logits(TEXTS)
    assert torch.allclose(p.logits(TEXTS), ref, atol=1e-6)
    recs = p.records(TEXTS[:3])
    assert [set(r) for r in recs] == [{"label", "score"}] * 3
    # a plain model directory: task from the architecture name
    q = Predictor.load(run / "model", fast="fp32")
    assert q.task == "classification" and q.max_length == 128  # the tokenizer's limit
    assert torch.allclose(q.logits(TEXTS), Predictor(model, p.tokenizer).logits(TEXTS), atol=1e-6)


def test_lora_run_is_merged_and_adapter_kept(tmp_path, tiny_bert, tok):
    from peft import LoraConfig, get_peft_model

    from tunesmith.infer.predictor import Predictor

    base = _cls_model(tiny_bert)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["query", "value"],
                                                 modules_to_save=["classifier"], task_type="SEQ_CLS"))
    with torch.no_grad():  # a non-zero update, so merging matters
        for n, prm in peft_model.named_parameters():
            if "lora_B" in n:
                prm.normal_(0, 0.5)
    peft_model.eval()
    run = tmp_path / "lora-run"
    peft_model.save_pretrained(run / "model")
    tok.save_pretrained(run / "model")
    (run / "run.json").write_text(json.dumps({"status": "complete", "task": "classification", "method": "lora",
                                              "labels": ["neg", "neu", "pos"], "max_length": 64,
                                              "base_model_path": str(tiny_bert)}))
    with torch.no_grad():
        ref = torch.cat([peft_model(**tok(t, return_tensors="pt")).logits for t in TEXTS[:6]])
    p = Predictor.load(run, fast="fp32")
    assert not any("lora" in n for n, _ in p.model.named_parameters())  # merged
    assert p.adapter["dir"] == str(run / "model")
    assert torch.allclose(p.logits(TEXTS[:6]), ref, atol=1e-4)


@pytest.mark.parametrize("path", ["int8", "onnx", "onnx-int8"])
def test_fast_paths_stay_close_to_fp32(tiny_bert, tok, path, tmp_path, monkeypatch):
    from tunesmith.infer.predictor import Predictor

    if path.startswith("onnx"):
        pytest.importorskip("onnxruntime")
        monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path))
    model = _cls_model(tiny_bert)
    ref = Predictor(model, tok, max_length=64).logits(TEXTS)
    got = Predictor(model, tok, max_length=64, fast=path, max_tokens=200).logits(TEXTS)
    tol = 1e-4 if path == "onnx" else 0.05  # int8 rounds weights and activations
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=tol), (got - ref).abs().max()


def test_unknown_fast_path_and_task_errors(tiny_bert, tok):
    from tunesmith.errors import TunesmithError
    from tunesmith.infer.predictor import Predictor

    with pytest.raises(TunesmithError, match="unknown fast path"):
        Predictor(_cls_model(tiny_bert), tok, fast="warp")
    with pytest.raises(TunesmithError, match="no predictor"):
        Predictor(_cls_model(tiny_bert), tok, task="summarise")


def test_token_budget_batches_cover_every_index_once():
    from tunesmith.infer.batching import token_budget_batches

    rng = random.Random(0)
    lengths = [rng.randint(1, 60) for _ in range(500)]
    for budget in (60, 500, 5000):
        batches = token_budget_batches(lengths, budget, max_batch=32)
        assert sorted(i for b in batches for i in b) == list(range(500))
        assert all(len(b) <= 32 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget)
                   for b in batches)


def test_threads_choice(monkeypatch):
    from tunesmith.infer.threads import choose_threads, usable_cpus

    monkeypatch.setenv("TUNESMITH_THREADS", "3")
    assert choose_threads() == 3 and choose_threads(2) == 2
    monkeypatch.delenv("TUNESMITH_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert 1 <= choose_threads() <= usable_cpus()


