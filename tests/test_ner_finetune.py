"""End to end: `tunesmith finetune --task token-classification` on CoNLL files with a tiny BERT
(full and LoRA), the run directory, the reloadable artifacts, and span prediction."""
from __future__ import annotations

import json

import pytest

from ner_fixtures import make_ner_bert, ner_sentences, write_conll_file
from tunesmith.cli import main
from tunesmith.errors import TunesmithError

TEXT = "Apple Inc. was founded by Steve Jobs in Cupertino, California."


@pytest.fixture(scope="module")
def ner_bert(tmp_path_factory):
    return make_ner_bert(tmp_path_factory.mktemp("ner-bert") / "m")


@pytest.fixture
def ner_files(tmp_path):
    return (write_conll_file(tmp_path / "train.conll", ner_sentences(120, 1)),
            write_conll_file(tmp_path / "test.conll", ner_sentences(30, 2)))


@pytest.mark.parametrize("method, lr, epochs", [("full", "5e-3", "3"), ("lora", "3e-2", "8"), ("head", "3e-2", "3")])
def test_cli_ner_finetune_end_to_end(tmp_path, ner_bert, ner_files, method, lr, epochs):
    run = tmp_path / f"run-{method}"
    rc = main(["finetune", "--task", "token-classification", "--model", str(ner_bert), "--method", method,
               "--train-file", str(ner_files[0]), "--test-file", str(ner_files[1]), "--epochs", epochs,
               "--batch-size", "16", "--lr", lr, "--max-length", "16", "--ner.stride=4",
               "--method.lora_r=4", "--output", str(run)])
    assert rc == 0
    for name in ("run.json", "config.yaml", "report.json", "report.md", "README.md", "confusion_matrix.png",
                 "learning_curve.png", "labels.json", "params.json", "metrics.jsonl", "token_stats.json"):
        assert (run / name).is_file(), name
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["task"] == "token-classification"
    report = json.loads((run / "report.json").read_text())
    test = report["evaluation"]["test"]
    assert set(test["per_type"]) == {"LOC", "ORG", "PER"}
    assert test["default"]["entities"] == 80  # 30 sentences: 30 PER + 30 LOC + 20 ORG
    # learnt (an untrained head scores ~0 on these templates); a frozen random backbone gives less
    assert test["f1"] > (0.3 if method == "head" else 0.5)
    assert "| PER |" in (run / "report.md").read_text()
    params = report["params"]
    if method == "lora":
        assert (run / "model" / "adapter_config.json").is_file()
        assert params["groups"]["backbone"]["trainable"] == 0 and params["groups"]["head"]["trainable"] > 0
    elif method == "head":
        assert params["groups"]["backbone"]["trainable"] == 0 and params["groups"]["head"]["trainable"] > 0
    else:
        assert params["trainable"] == params["total"]
    assert report["example"]["text"] == TEXT
    for e in report["example"]["entities"]:
        assert TEXT[e["start"]:e["end"]] == e["word"]


def test_artifact_loads_with_plain_transformers_and_predicts_spans(tmp_path, ner_bert, ner_files):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from tunesmith.infer.ner_spans import predict_entities

    run = tmp_path / "run"
    assert main(["finetune", "--task", "token-classification", "--model", str(ner_bert), "--train-file",
                 str(ner_files[0]), "--epochs", "4", "--batch-size", "16", "--lr", "5e-3", "--output", str(run)]) == 0
    model = AutoModelForTokenClassification.from_pretrained(run / "model")
    tok = AutoTokenizer.from_pretrained(run / "model")
    texts = ["Alice visited Paris yesterday.", "the acme met bob at london"]
    for agg in ("simple", "first", "max", "average"):
        out = predict_entities(model, tok, texts, agg)
        assert len(out) == 2
        for text, spans in zip(texts, out):
            for e in spans:
                assert text[e["start"]:e["end"]] == e["word"] and 0 < e["score"] <= 1
    from transformers import pipeline

    from tunesmith.tasks.ner import evaluate_file

    # the same spans, types, offsets and scores as the transformers pipeline, for every strategy
    for agg in ("simple", "first", "max", "average"):
        ref = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy=agg)(texts)
        ours = predict_entities(model, tok, texts, agg)
        key = lambda spans: [(e["entity_group"], e["start"], e["end"], round(float(e["score"]), 4)) for e in spans]
        assert [key(x) for x in ours] == [key(x) for x in ref], agg

    m = evaluate_file(run, ner_files[1])
    assert m["sentences"] == 30 and m["entities"] == 80 and 0 <= m["f1"] <= 1
    assert main(["evaluate", str(run), "--data", str(ner_files[1]), "--out", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["f1"] == m["f1"]
    first = predict_entities(model, tok, texts, "first")
    assert {(e["entity_group"], e["word"]) for e in first[1]} >= {("PER", "bob"), ("LOC", "london")}
    # a long text is read in windows: spans from the second window keep offsets into the whole text
    long_text = " ".join(["the acme met bob at london"] * 6)
    spans = predict_entities(model, tok, [long_text], "first", max_length=16, stride=4)[0]
    assert max(e["start"] for e in spans) > 100


def test_unknown_tag_at_evaluation_names_file_and_line(tmp_path):
    from tunesmith.data.conll import read_conll
    from tunesmith.tasks.ner import check_known_tags

    p = tmp_path / "eval.conll"
    p.write_text("Jo B-PER\nran O\n\nParis B-CITY\n", encoding="utf-8")
    with pytest.raises(TunesmithError, match=r"eval\.conll, line 4: tag 'B-CITY' is unknown to this model"):
        check_known_tags(read_conll(p), ["O", "B-PER", "I-PER"], p)


def test_broken_scheme_in_training_file_stops_with_line(tmp_path, ner_bert, capsys):
    p = tmp_path / "train.conll"
    p.write_text("Jo B-PER\nran O\n\n" * 5 + "Jo B-PER\nran O\nParis I-LOC\n", encoding="utf-8")
    rc = main(["finetune", "--task", "token-classification", "--model", str(ner_bert), "--train-file", str(p),
               "--ner.scheme=iob2", "--output", str(tmp_path / "run")])
    assert rc == 2
    assert "train.conll, line 18: tag sequence breaks IOB2" in capsys.readouterr().err


def test_every_mergeable_peft_method_writes_a_merged_model(tmp_path, ner_bert, ner_files):
    """--merge goes through the shared save path: IA3 (not only LoRA) is folded in and written."""
    from transformers import AutoModelForTokenClassification

    run = tmp_path / "run-ia3"
    assert main(["finetune", "--task", "token-classification", "--model", str(ner_bert), "--method", "ia3",
                 "--train-file", str(ner_files[0]), "--train.max_steps=2", "--batch-size", "16",
                 "--merge", "--output", str(run)]) == 0
    assert (run / "model" / "adapter_config.json").is_file()
    merged = AutoModelForTokenClassification.from_pretrained(run / "merged")
    assert not any("ia3" in n for n, _ in merged.named_parameters())
