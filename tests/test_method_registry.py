"""Every registered method, tested by being registered (peft's TEST_CASES idea): its formula
matches what it builds, only its trainable weights get gradients, a run of it saves and reloads to
the same logits through the Predictor, and its model card's plain code loads the same model."""
import copy
import json

import pytest
import torch

from tunesmith import runs
from tunesmith.adapt import param_table
from tunesmith.adapt.registry import reads_mean, REGISTRY, apply_method, card_code, get, library_name
from tunesmith.config import MethodConfig
from tunesmith.errors import TunesmithError
from tunesmith.infer.predictor import Predictor

ALL = list(REGISTRY)
TEXTS = ["the film was great and lovely", "boring and awful acting", "a dull plot", "superb cast"]
LABELS = ["neg", "neu", "pos"]
SMALL = dict(vocab_size=100, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=16, max_position_embeddings=40, type_vocab_size=2)


def options(name: str) -> MethodConfig:
    return MethodConfig(name=name, lora_r=2, num_virtual_tokens=3, adapter_size=4)


def test_registry_is_the_one_list():
    from tunesmith.adapt import METHODS, PEFT_METHODS
    from tunesmith.commands.methods import table
    from tunesmith.commands.params import ALL as PARAMS_ALL

    assert list(METHODS) == ALL == PARAMS_ALL
    assert {"prefix", "adapter"} <= set(ALL)
    assert set(PEFT_METHODS) == {n for n, r in REGISTRY.items() if r.artifact == "peft"}
    lines = table()
    for name, r in REGISTRY.items():
        row = next(line.split() for line in lines if line.split()[0] == name)
        assert row[1] == f"{r.lr:g}" and row[2] == (f"{r.head_lr:g}" if r.head_lr else "-")
        assert row[3] == ("mean" if r.pooling == "mean" else "[CLS]")


@pytest.mark.parametrize("name", ALL)
def test_record_is_complete(name):
    r = get(name)
    assert r.lr > 0 and r.description and r.name == name
    assert r.library_name == ("peft" if r.artifact == "peft" else "transformers")
    assert not (r.mergeable and not r.peft)  # only peft folds adapters into the base


@pytest.mark.parametrize("task", ["classification", "token-classification"])
@pytest.mark.parametrize("name", ALL)
def test_formula_matches_what_it_builds_and_only_trainable_weights_learn(name, task):
    from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification

    from tunesmith.strategy.formulas import count_method

    cfg = BertConfig(**SMALL, num_labels=3)
    torch.manual_seed(0)
    cls = BertForSequenceClassification if task == "classification" else BertForTokenClassification
    if task not in get(name).tasks:
        with pytest.raises(TunesmithError, match="does not support"):
            apply_method(cls(cfg), options(name), task)
        return
    model = apply_method(cls(copy.deepcopy(cfg)), options(name), task)  # mean pooling edits model.config
    real = param_table(model)
    if task == "classification":  # the formulas count a sequence classifier
        c = count_method(cfg, name, num_labels=3, r=2, num_virtual_tokens=3, adapter_size=4)
        assert (real["trainable"], real["total"]) == (c.trainable, c.total)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.randint(5, 100, (2, 6))
    labels = torch.tensor([0, 2]) if task == "classification" else torch.randint(0, 3, (2, 6))
    model.train()
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
    out.loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5).step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable


def fake_run(root, tiny_bert, name: str, task: str = "classification"):
    """A finished run of `name` without training: trainable weights set to random values."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(3)
    kw = dict(num_labels=3, id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    model = apply_method(AutoModelForSequenceClassification.from_pretrained(tiny_bert, **kw), options(name), task)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.3)
    model.eval()
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        want = model(**enc).logits
    run = root / f"run-{name}"
    run.mkdir()
    info = {"task": task, "method": name, "labels": LABELS, "base_model": "tiny", "data": "toy",
            "base_model_path": str(tiny_bert), "max_length": 32,
            "pooling": "mean" if reads_mean(model) else "cls"}  # what finetune records
    runs.start(run, info)
    runs.save_artifacts(run, model, tok, name, merge=False)
    runs.finish(run)
    return run, info, want, enc


@pytest.mark.parametrize("name", ALL)
def test_run_saves_and_the_predictor_reloads_it(tmp_path, tiny_bert, name):
    run, _, want, _ = fake_run(tmp_path, tiny_bert, name)
    p = Predictor.load(str(run))  # the exact fp32 path: what evaluate and serve use
    assert p.labels == LABELS
    assert torch.allclose(p.logits(TEXTS), want, atol=1e-4)
    auto = Predictor.load(str(run), fast="auto")  # `tunesmith predict`'s default path
    assert (auto.logits(TEXTS).argmax(-1) == want.argmax(-1)).all()


@pytest.mark.parametrize("name", ALL)
def test_model_card_code_loads_the_same_model(tmp_path, tiny_bert, name):
    run, info, want, enc = fake_run(tmp_path, tiny_bert, name)
    code = card_code(json.loads((run / "run.json").read_text()), run, "AutoModelForSequenceClassification")
    scope: dict = {}
    exec(compile(code, "model-card", "exec"), scope)  # the user's plain transformers/peft/torch code
    model = scope["model"]
    with torch.no_grad():
        got = model(**enc).logits
    assert torch.allclose(got, want, atol=1e-4)
    assert [model.config.id2label[i] for i in range(3)] == LABELS  # DoRA once lost them
    assert library_name(info) == get(name).library_name


@pytest.mark.parametrize("name", ALL)
def test_is_peft_is_one_answer_for_name_record_run_files_and_model(tmp_path, tiny_bert, name):
    """"Is this a peft run?" has one answer (adapt.registry.is_peft / is_peft_model), the same from
    the method's name, its record, the run's info, the run's model/ files and the built model."""
    from transformers import BertConfig, BertForSequenceClassification

    from tunesmith.adapt import PEFT_METHODS
    from tunesmith.adapt.registry import is_peft, is_peft_model

    want = get(name).artifact == "peft"
    run, info, _, _ = fake_run(tmp_path, tiny_bert, name)
    assert is_peft(name) == is_peft(get(name)) == is_peft(info) == want
    assert is_peft({}, run / "model") == is_peft(info, run / "model") == want  # what the files say
    assert (name in PEFT_METHODS) == want
    model = apply_method(BertForSequenceClassification(BertConfig(**SMALL, num_labels=3)), options(name), "classification")
    assert is_peft_model(model) == want  # adapter layers (ours) leave a plain transformers model


@pytest.mark.parametrize("name", ALL)
def test_method_tasks_are_fine_tunable_task_records(name):
    from tunesmith.tasks.registry import finetunable

    assert get(name).tasks and set(get(name).tasks) <= set(finetunable())


def test_register_rejects_a_task_without_a_record():
    from dataclasses import replace

    from tunesmith.adapt.registry import register

    with pytest.raises(ValueError, match="fine-tunable task records"):
        register(replace(get("lora"), name="lora-ner-typo", tasks=("ner-typo",)))
    assert "lora-ner-typo" not in REGISTRY
