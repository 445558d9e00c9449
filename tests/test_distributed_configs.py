"""The documented accelerate configs (configs/accelerate/*.yaml) parse, and accelerate's launcher
turns each into the environment its Trainer integration reads (DDP, FSDP, DeepSpeed ZeRO)."""
from __future__ import annotations

from pathlib import Path

import pytest

CONFIGS = sorted((Path(__file__).parents[1] / "configs" / "accelerate").glob("*.yaml"))
EXPECTED = {"multi-cpu": ("MULTI_GPU", 2), "multi-gpu": ("MULTI_GPU", 4), "multi-node": ("MULTI_GPU", 16),
            "fsdp": ("FSDP", 4), "deepspeed-zero2": ("DEEPSPEED", 4), "deepspeed-zero3": ("DEEPSPEED", 4)}


def test_every_documented_config_exists():
    assert {p.stem for p in CONFIGS} == set(EXPECTED)
    doc = (Path(__file__).parents[1] / "docs" / "scaling.md").read_text()
    for p in CONFIGS:
        assert f"configs/accelerate/{p.name}" in doc


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_parses_into_launcher_env(path, monkeypatch):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    cfg = load_config_from_file(str(path))
    kind, procs = EXPECTED[path.stem]
    assert cfg.distributed_type.value == kind and cfg.num_processes == procs
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(
        ["--config_file", str(path), "-m", "tunesmith.cli", "finetune"]))
    if kind == "DEEPSPEED":
        from accelerate.utils.launch import prepare_deepspeed_cmd_env

        args.deepspeed_fields_from_accelerate_config = ",".join(cfg.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
        assert env["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == str(cfg.deepspeed_config["zero_stage"])
        return
    from accelerate.utils.launch import prepare_multi_gpu_env

    env = prepare_multi_gpu_env(args)
    assert env["WORLD_SIZE"] == str(procs) if "WORLD_SIZE" in env else True
    if kind == "FSDP":
        from accelerate import FullyShardedDataParallelPlugin

        for k, v in env.items():
            monkeypatch.setenv(k, v)
        plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2 and "FULL_STATE_DICT" in str(plugin.state_dict_type)
