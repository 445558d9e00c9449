"""Every registered task, tested by being registered: its record is complete and each table that
used to be written out by hand (Auto classes, peft task types, the Predictor's dispatch, the
server's endpoints, finetune's and evaluate's handlers) now comes from it."""
import importlib

import pytest

from tunesmith.tasks.registry import REGISTRY, canonical, finetunable, get

ALL = list(REGISTRY)
SMALL_BERT = dict(vocab_size=64, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=16, max_position_embeddings=32)


def resolves(target: str) -> bool:
    module, _, name = target.partition(":")
    return callable(getattr(importlib.import_module(module), name, None))


@pytest.mark.parametrize("name", ALL)
def test_record_is_complete(name):
    t = get(name)
    assert t.name == name and canonical(name) == name
    assert all(canonical(a) == name for a in t.aliases)
    assert t.pipeline_tag and t.arch_suffixes
    import transformers

    assert hasattr(transformers, t.auto)
    if t.peft_task:
        from peft import TaskType

        assert t.peft_task in TaskType.__members__
    for target in (t.finetune, t.evaluate):
        assert target is None or resolves(target)
        assert target is None or not target.startswith("tunesmith.commands.")  # the core, not the CLI layer


@pytest.mark.parametrize("name", ALL)
def test_auto_class_builds_the_head_guess_task_recognises(name):
    from transformers import BertConfig, GPT2Config

    from tunesmith.infer.predictor import guess_task

    t = get(name)
    cfg = GPT2Config(n_embd=8, n_layer=1, n_head=2, vocab_size=64) if name == "generation" else BertConfig(**SMALL_BERT)
    model = t.auto_class().from_config(cfg)
    arch = type(model).__name__
    assert arch.endswith(t.arch_suffixes)
    cfg.architectures = [arch]
    assert guess_task(cfg) == name


@pytest.mark.parametrize("name", ALL)
def test_predictor_and_server_read_the_record(name):
    from tunesmith.infer.predictor import Predictor, canonical_task
    from tunesmith.serve.app import TASK_METHODS
    from tunesmith.serve.registry import TASK_OF_ENDPOINT

    t = get(name)
    assert callable(getattr(Predictor, t.predict, None))
    assert all(canonical_task(a) == name for a in t.aliases)
    if t.endpoint and not t.batched_endpoint:
        assert TASK_METHODS[t.endpoint] == (t.predict,) and name in TASK_OF_ENDPOINT[t.endpoint]


def test_finetune_and_peft_tables_come_from_the_records():
    from tunesmith.adapt.methods import PEFT_TASK
    from tunesmith.finetune import pipelines

    assert set(pipelines()) == set(finetunable()) == {n for n, t in REGISTRY.items() if t.finetune}
    assert PEFT_TASK == {n: t.peft_task for n, t in REGISTRY.items() if t.peft_task}


def test_unknown_task_names_the_known_ones():
    from tunesmith.errors import TunesmithError

    with pytest.raises(TunesmithError, match="tasks: classification, token-classification"):
        canonical("telepathy")


FAKE_REPORTS = {
    "classification": {"evaluation": {"test": {"accuracy": 0.9, "f1": 0.8, "n": 10}}},
    "token-classification": {"evaluation": {"test": {"f1": 0.5, "precision": 0.4, "recall": 0.6, "n": 3}}},
    "generation": {"evaluation": {"test": {"before": {"perplexity": 9.0}, "after": {"perplexity": 5.0}}}},
}


@pytest.mark.parametrize("method", ["full", "lora", "adapter"])
@pytest.mark.parametrize("name", list(finetunable()))
def test_one_model_card_writer_reads_the_records(tmp_path, name, method):
    from tunesmith.adapt.registry import get as get_method
    from tunesmith.evaluate.report import CARDS, MARKDOWN, model_card

    assert name in CARDS and name in MARKDOWN  # a new task must say how it reports
    labels = ["O", "B-X", "I-X"] if get(name).labelled else None
    info = {"task": name, "method": method, "base_model": "tiny", "base_model_path": str(tmp_path),
            "data": "d", "labels": labels, "kind": "text"}
    model_card(tmp_path, info, FAKE_REPORTS[name])
    card = (tmp_path / "README.md").read_text()
    assert f"pipeline_tag: {get(name).pipeline_tag}\n" in card and get(name).auto in card
    assert f"library_name: {get_method(method).library_name}\n" in card
    if labels and method == "lora":  # the peft base is built with the label map
        assert "id2label={0: 'O', 1: 'B-X', 2: 'I-X'}" in card
