"""Typed configs: YAML + overrides, unknown keys rejected with the valid ones listed."""
import pytest

from tunesmith import config as C
from tunesmith.errors import TunesmithError


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("method:\n  name: lora\n  lora_r: 4\ntrain:\n  epochs: 2\n")
    cfg = C.load(C.FinetuneConfig, str(p), C.parse_overrides(["--train.epochs=5", "method.target_modules=query,key"]))
    assert cfg.method.name == "lora" and cfg.method.lora_r == 4
    assert cfg.train.epochs == 5.0
    assert cfg.method.target_modules == ["query", "key"]
    from tunesmith.adapt.registry import get

    assert cfg.learning_rate() == get("lora").lr == 3e-3


def test_unknown_key_lists_valid_keys():
    with pytest.raises(TunesmithError, match=r"unknown key\(s\) \['train.epoch'\].*'epochs'"):
        C.load(C.FinetuneConfig, None, C.parse_overrides(["train.epoch=2"]))
    with pytest.raises(TunesmithError, match="unknown section"):
        C.load(C.FinetuneConfig, None, C.parse_overrides(["trian.epochs=2"]))


def test_bad_values_are_explained():
    with pytest.raises(TunesmithError, match="train.batch_size: cannot read 'many' as int"):
        C.load(C.FinetuneConfig, None, {"train": {"batch_size": "many"}})
    with pytest.raises(TunesmithError, match="metric must be accuracy or f1"):
        C.load(C.FinetuneConfig, None, {"train": {"metric": "auc"}})
    with pytest.raises(TunesmithError, match="must look like --section.key=value"):
        C.parse_overrides(["epochs=2"])


def test_resolved_config_round_trips(tmp_path):
    cfg = C.load(C.FinetuneConfig, None, {"data": {"max_train": "100"}, "output": {"merge": "true"}})
    C.dump_yaml(cfg, tmp_path / "c.yaml")
    again = C.load(C.FinetuneConfig, str(tmp_path / "c.yaml"), {})
    assert again == cfg
