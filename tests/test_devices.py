"""Devices and precision without a GPU: the auto-precision rule on faked CPUs and GPUs, explicit
precisions, --device parsing, and that every inference / held-out-metric path moves its CPU-built
inputs to the model's device (a model on the `meta` device records where its inputs were)."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from tunesmith import precision
from tunesmith.errors import TunesmithError


# ---- fakes -----------------------------------------------------------------------------------
def fake_cpu(monkeypatch, **caps):
    """torch.cpu.get_capabilities reporting `caps` (AVX-512 with VNNI, like this machine, plus caps)."""
    base = {"architecture": "x86_64", "avx512_f": True, "avx512_vnni": True, "avx512_bf16": False,
            "amx_bf16": False}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {**base, **caps})


def fake_gpus(monkeypatch, *capabilities: tuple[int, int], hip: str | None = None):
    """CUDA visible with one GPU per capability; is_bf16_supported behaves like torch's own:
    with emulation (the default) it says yes on pre-Ampere GPUs too."""
    current = {"index": 0}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(capabilities))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current["index"])
    monkeypatch.setattr(torch.cuda, "get_device_capability",
                        lambda d=None: capabilities[current["index"] if d is None else int(d)])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake GPU")
    monkeypatch.setattr(torch.version, "hip", hip)

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return capabilities[current["index"]][0] >= 8 or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    return current


# ---- the auto-precision rule ------------------------------------------------------------------
@pytest.mark.parametrize("caps,want", [({}, "fp32"), ({"avx512_bf16": True}, "bf16"),
                                       ({"amx_bf16": True}, "bf16")])
def test_cpu_auto_precision_needs_avx512_bf16_or_amx(monkeypatch, caps, want):
    fake_cpu(monkeypatch, **caps)
    # oneDNN's own probe says yes on AVX-512 CPUs without bf16 units: it must not be consulted
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    name, why = precision.auto_precision(torch.device("cpu"))
    assert name == want and precision.native_bf16("cpu") == (want == "bf16")
    assert ("no AVX512-BF16" in why) == (want == "fp32")


def test_cpu_without_the_capability_probe_reads_cpuinfo(monkeypatch, tmp_path):
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_vnni\n")
    read = precision._cpuinfo_flags
    monkeypatch.setattr(precision, "_cpuinfo_flags", lambda: read(str(info)))
    assert precision.auto_precision("cpu")[0] == "fp32"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert precision.auto_precision("cpu")[0] == "bf16"
    info.unlink()  # no /proc/cpuinfo (not Linux): fp32, the safe answer
    assert precision.auto_precision("cpu")[0] == "fp32"


@pytest.mark.parametrize("cap,want", [((9, 0), "bf16"), ((8, 0), "bf16"), ((8, 6), "bf16"),
                                      ((7, 5), "fp16"), ((7, 0), "fp16"), ((6, 0), "fp16"),
                                      ((6, 1), "fp32"), ((5, 2), "fp32")])
def test_cuda_auto_precision_by_compute_capability(monkeypatch, cap, want):
    fake_gpus(monkeypatch, cap)
    gpu = torch.device("cuda")
    name, why = precision.auto_precision(gpu)
    assert name == want and f"compute capability {cap[0]}.{cap[1]}" in why
    assert precision.native_bf16(gpu) == (want == "bf16")  # emulated bf16 (Volta) is not native
    assert precision.cuda_fp16_only(gpu) == (want == "fp16")


def test_cuda_n_is_judged_by_its_own_capability(monkeypatch):
    current = fake_gpus(monkeypatch, (7, 0), (8, 0))  # cuda:0 Volta (current), cuda:1 Ampere
    assert precision.auto_precision("cuda:1")[0] == "bf16"
    assert precision.auto_precision("cuda:0")[0] == "fp16"
    assert precision.auto_precision("cuda")[0] == "fp16"  # no index: the current device
    current["index"] = 1
    assert precision.auto_precision("cuda")[0] == "bf16"


def test_rocm_has_bf16(monkeypatch):
    fake_gpus(monkeypatch, (9, 4), hip="6.2")
    assert precision.auto_precision("cuda")[0] == "bf16"


def test_fast_auto_follows_the_precision_rule(monkeypatch):
    from tunesmith.infer.fast import COMPILE_FROM, default_path

    fake_gpus(monkeypatch, (7, 0))
    gpu = torch.device("cuda")
    assert default_path(gpu) == "fp16" and default_path(gpu, COMPILE_FROM) == "fp16-compile"
    # int8 paths are CPU kernels: a GPU never gets them, even for a run that cleared them
    assert default_path(gpu, 10**6, frozenset({"int8-row-compile"})) == "fp16-compile"
    fake_cpu(monkeypatch)
    assert default_path(torch.device("cpu")) == "fp32"
    fake_cpu(monkeypatch, avx512_bf16=True)
    assert default_path(torch.device("cpu")) == "bf16"


# ---- explicit choices and devices ---------------------------------------------------------------
def test_explicit_precisions(monkeypatch):
    fake_cpu(monkeypatch)
    assert precision.check_precision("fp32", "cpu") == ("fp32", "asked for")
    name, why = precision.check_precision("bf16", "cpu")
    assert name == "bf16" and "emulated" in why  # honoured, but the reason says it is slow here
    with pytest.raises(TunesmithError, match="CUDA GPUs only"):
        precision.check_precision("fp16", "cpu")
    with pytest.raises(TunesmithError, match="unknown"):
        precision.check_precision("fp8", "cpu")
    fake_gpus(monkeypatch, (7, 0))
    assert precision.check_precision("fp16", "cuda") == ("fp16", "asked for")
    assert precision.check_precision("AUTO", "cuda")[0] == "fp16"


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.resolve_device("auto") == torch.device("cpu") == precision.resolve_device(None)
    with pytest.raises(TunesmithError, match="no CUDA GPU is visible"):
        precision.resolve_device("cuda")
    with pytest.raises(TunesmithError, match="not understood"):
        precision.resolve_device("gpu0")
    with pytest.raises(TunesmithError, match="cpu or cuda"):
        precision.resolve_device("meta")
    fake_gpus(monkeypatch, (8, 0), (8, 0))
    assert precision.resolve_device("auto") == torch.device("cuda")
    assert precision.resolve_device("CUDA:1") == torch.device("cuda", 1)
    with pytest.raises(TunesmithError, match=r"only 2 CUDA device\(s\)"):
        precision.resolve_device("cuda:2")


# ---- engines --------------------------------------------------------------------------------------
TEXTS = ["the film was great and lovely", "boring and awful acting", "a dull plot", "superb cast", "it"]


def test_fp16_engine_refuses_the_cpu(tiny_bert, tok):
    from conftest import tiny_classifier
    from tunesmith.infer.fast import build_engine

    with pytest.raises(TunesmithError, match="CUDA GPUs only"):
        build_engine("fp16", tiny_classifier(tiny_bert), torch.device("cpu"))


def test_explicit_bf16_runs_emulated_with_a_warning_and_stays_close(monkeypatch, tiny_bert, tok):
    from conftest import tiny_classifier
    from tunesmith.infer.predictor import Predictor

    fake_cpu(monkeypatch)  # no native bf16: auto is fp32, an explicit bf16 still runs
    ref = Predictor(tiny_classifier(tiny_bert), tok, max_length=64).logits(TEXTS)
    with pytest.warns(UserWarning, match="emulated"):
        p = Predictor(tiny_classifier(tiny_bert), tok, max_length=64, fast="bf16")
    assert p.engine.name == "bf16" and next(p.model.parameters()).dtype == torch.bfloat16
    got = p.logits(TEXTS)
    assert got.dtype == torch.float32 and torch.allclose(got, ref, atol=0.05), (got - ref).abs().max()
    assert Predictor(tiny_classifier(tiny_bert), tok, max_length=64, fast="auto").engine.name == "fp32"


def test_fp16_classifier_pass_matches_fp32(tiny_bert, tok):
    """The fp16 engine's model and lean pass, built as on a GPU but run here (CPU fp16 kernels
    are slow, not wrong): the padding mask and head survive the cast."""
    from conftest import tiny_classifier
    from tunesmith.infer.fast import _classifier
    from tunesmith.infer.predictor import Predictor

    ref = Predictor(tiny_classifier(tiny_bert), tok, max_length=64).logits(TEXTS)
    model, forward, info = _classifier(tiny_classifier(tiny_bert), torch.float16)
    assert info == {"lean": "yes"} and next(model.parameters()).dtype == torch.float16
    batch = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        got = forward(dict(batch))
    assert got.dtype == torch.float32 and torch.allclose(got, ref, atol=0.02), (got - ref).abs().max()


# ---- inputs follow the model's device ---------------------------------------------------------------
class Recorded(Exception):
    """Raised by OnMeta after its first call: the test reads where the inputs were."""


class OnMeta(torch.nn.Module):
    """Stands in for a model on another device: its parameters are on `meta`, its forward and
    generate record the device of every tensor argument, then stop the caller."""

    def __init__(self, config=None):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.empty(2, device="meta"))
        self.config = config
        self.seen: dict[str, torch.device] = {}

    def forward(self, **inputs):
        self.seen = {k: v.device for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        raise Recorded

    generate = forward


def assert_inputs_on_meta(model: OnMeta, call) -> None:
    with pytest.raises(Recorded):
        call()
    assert model.seen and set(model.seen.values()) == {torch.device("meta")}, model.seen


def test_fill_mask_moves_inputs_to_the_model(tok):
    from tunesmith.infer.fill_mask import fill_mask

    model = OnMeta()
    assert_inputs_on_meta(model, lambda: fill_mask(model, tok, ["a [MASK] film"], top_k=2))


def test_predictor_fill_mask_moves_inputs_to_the_model(tiny_bert, tok):
    from transformers import AutoModelForMaskedLM

    from tunesmith.infer.predictor import Predictor

    p = Predictor(AutoModelForMaskedLM.from_pretrained(tiny_bert), tok, "fill-mask", max_length=32)
    p.engine.module = model = OnMeta(p.model.config)  # as if the Predictor had put it on a GPU
    assert_inputs_on_meta(model, lambda: p.fill_mask(["a [MASK] film"]))


def test_ner_and_generation_move_inputs_to_the_model(tok):
    from transformers import BertConfig

    from tunesmith.infer.generation import generate
    from tunesmith.infer.ner_spans import predict_entities

    model = OnMeta(BertConfig(id2label={0: "O", 1: "B-X"}))
    assert_inputs_on_meta(model, lambda: predict_entities(model, tok, ["the film"]))
    model = OnMeta()
    assert_inputs_on_meta(model, lambda: generate(model, tok, ["the film"], max_new_tokens=2))


def test_pretrain_metrics_move_batches_to_the_model(tiny_bert, tok):
    from tunesmith.pretrain.collators import MaskingSpec
    from tunesmith.pretrain.examples import clm_blocks, mlm_examples
    from tunesmith.pretrain.metrics import clm_metrics, mlm_metrics, pseudo_perplexity

    docs = ["the film was great and the acting was lovely", "a dull plot and boring music"] * 4
    examples = mlm_examples(tok, docs, 32)
    for call in (lambda m: mlm_metrics(m, tok, examples, MaskingSpec()),
                 lambda m: pseudo_perplexity(m, tok, examples[:2]),
                 lambda m: clm_metrics(m, clm_blocks(tok, docs, 8))):
        model = OnMeta()
        assert_inputs_on_meta(model, lambda: call(model))


# ---- predict --device, serve --model.dtype, bench infer's baseline ----------------------------------
@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    from conftest import make_tiny_bert, sentiment_rows
    from tunesmith.cli import main

    root = tmp_path_factory.mktemp("devices")
    make_tiny_bert(root / "base")
    data = root / "reviews.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(60))
    assert main(["finetune", "--model", str(root / "base"), "--data", str(data), "--method", "lora",
                 "--output", str(root / "run"), "--train.max_steps=3", "--batch-size", "16"]) == 0
    return root


def test_predict_device_flag(lora_run, capsys, monkeypatch):
    from tunesmith.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = str(lora_run / "run")
    assert main(["predict", run, "a lovely film", "--device", "cuda"]) == 2
    assert "no CUDA GPU is visible" in capsys.readouterr().err
    assert main(["predict", run, "a lovely film", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("positive", "negative")


def test_serve_dtype_is_checked():
    from tunesmith.serve.config import ServeConfig

    cfg = ServeConfig()
    cfg.model.dtype = "fp8"
    with pytest.raises(TunesmithError, match="model.dtype 'fp8' unknown"):
        cfg.__post_init__()


@pytest.mark.parametrize("native", [False, True])
def test_serve_and_predict_default_to_the_same_precision_and_scores(lora_run, monkeypatch, native):
    """serve's model.dtype=auto and predict's --fast auto apply one rule; on a CPU with native bf16
    (faked) both run bf16 and their scores agree to bf16 rounding, without it both run fp32."""
    from fastapi.testclient import TestClient

    from tunesmith.infer.predictor import Predictor
    from tunesmith.serve.app import create_app
    from tunesmith.serve.config import ServeConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fake_cpu(monkeypatch, avx512_bf16=native)
    pred = Predictor.load(str(lora_run / "run"), fast="auto", n_texts=len(TEXTS))
    cfg = ServeConfig()
    cfg.model.base, cfg.model.adapter_root = str(lora_run / "base"), str(lora_run)
    cfg.model.adapters = ["sent=run"]
    with TestClient(create_app(cfg)) as c:
        ready = c.get("/readyz").json()
        served = c.post("/v1/predict", json={"adapter": "sent", "inputs": TEXTS, "all_scores": True}).json()
    want = "bf16" if native else "fp32"
    assert pred.engine.name == want and ready["precision"] == want and ready["device"] == "cpu"
    tol = 2e-2 if native else 1e-5
    for got, ref in zip(served["predictions"], pred.classify(TEXTS, all_scores=True)):
        for label, score in ref["scores"].items():
            assert got["scores"][label] == pytest.approx(score, abs=tol)


def test_serve_whole_model_gets_the_server_precision(lora_run, monkeypatch):
    from tunesmith.serve.registry import Registry

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fake_cpu(monkeypatch)
    with pytest.warns(UserWarning, match="emulated"):
        reg = Registry(None, lora_run, device="cpu", dtype="bf16")
        entry = reg.load_model("whole", "run")
    assert reg.precision == "bf16" and entry.predictor.engine.name == "bf16"
    assert next(entry.predictor.model.parameters()).dtype == torch.bfloat16
    with pytest.raises(TunesmithError, match="CUDA GPUs only"):
        Registry(None, lora_run, device="cpu", dtype="fp16")


def test_bench_infer_pipeline_runs_on_the_given_device(monkeypatch, tiny_bert, tok):
    import transformers

    from conftest import tiny_classifier
    from tunesmith.bench.infer import hf_pipeline

    seen = {}

    def fake_pipeline(task, **kwargs):
        seen.update(kwargs)
        return lambda texts, **kw: [{"label": "LABEL_0"} for _ in texts]

    monkeypatch.setattr(transformers, "pipeline", fake_pipeline)
    predict = hf_pipeline(tiny_classifier(tiny_bert), tok, 64, torch.device("meta"))
    assert seen["device"] == torch.device("meta") and predict(["a"]) == [0]


# ---- scripts/gpu-check.sh: what can be checked without a GPU (the --dry-run runs it end to end) ---
def test_gpu_check_script_parses_and_explains_itself(tmp_path):
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu-check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    out = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--dry-run" in out.stdout and "Exit status" in out.stdout
    bad = subprocess.run(["bash", str(script), "--fast"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown argument" in bad.stderr
    nopy = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": str(tmp_path / "no-python"),
                               "GPU_CHECK_DIR": str(tmp_path / "work")})
    assert nopy.returncode == 2 and "no python" in nopy.stderr
