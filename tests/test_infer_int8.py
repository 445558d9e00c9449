"""Per-token int8 (infer/int8_lean.py) and the held-out check that lets `--fast auto` use it
(infer/verify.py)."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import sentiment_rows, tiny_classifier as _cls

int8_lean = pytest.importorskip("tunesmith.infer.int8_lean")
pytestmark = pytest.mark.skipif(not int8_lean.supported(), reason="no oneDNN int8 linear in this torch")

TEXTS = [r["text"] for r in sentiment_rows(30, seed=7)] + ["ok", "bad " * 50]


def test_int8_linear_is_close_to_the_float_matmul_row_by_row():
    torch.manual_seed(0)
    # rows of very different scales: one scale per row keeps the small ones accurate
    x = torch.randn(5, 7, 96) * torch.logspace(-3, 2, 5)[:, None, None]
    w = torch.randn(80, 96) * 0.05
    packed = int8_lean.pack(w)
    ref = torch.nn.functional.linear(x, w)
    got = int8_lean.int8_linear(x.bfloat16(), *packed, torch.zeros(80)).float()
    assert got.shape == ref.shape
    for row in range(5):
        err = (got[row] - ref[row]).norm() / ref[row].norm()
        assert err < 0.03, (row, err)
    b = torch.randn(80)  # the bias is added after the row scales
    with_bias = int8_lean.int8_linear(x[4].bfloat16(), *packed, b).float()
    assert torch.allclose(with_bias, got[4] + b, rtol=0.01, atol=0.05)


def test_int8_row_classifier_tracks_fp32_and_keeps_input_order(tiny_bert, tok):
    from tunesmith.infer.predictor import Predictor

    model = _cls(tiny_bert)
    ref = Predictor(model, tok, max_length=64).logits(TEXTS)
    p = Predictor(model, tok, max_length=64, fast="int8-row", max_tokens=200)
    assert p.engine.info["int8_matmuls"] == 2 * 4  # QKV (K/V in the last layer), out, up, down
    got = p.logits(TEXTS)
    assert got.dtype == torch.float32 and got.shape == ref.shape
    assert torch.allclose(got, ref, atol=0.08), (got - ref).abs().max()
    assert torch.equal(p.logits(list(reversed(TEXTS))), got.flip(0))  # order-independent batching


def test_int8_row_refuses_layouts_it_does_not_cover(tmp_path, tok):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from tunesmith.errors import TunesmithError
    from tunesmith.infer.fast import build_engine

    model = DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=100, dim=32, n_layers=1, n_heads=2, hidden_dim=37)).eval()
    with pytest.raises(TunesmithError, match="int8-row covers BERT-style sequence classifiers"):
        build_engine("int8-row", model, torch.device("cpu"))


def test_compiled_int8_row_matches_eager(tiny_bert, tok):
    from tunesmith.infer.predictor import Predictor

    model = _cls(tiny_bert)
    eager = Predictor(model, tok, max_length=64, fast="int8-row", max_tokens=200).logits(TEXTS)
    p = Predictor(model, tok, max_length=64, fast="int8-row-compile", max_tokens=200)
    with _no_compile_fallback():
        got = p.logits(TEXTS)
    assert torch.allclose(got, eager, atol=0.03), (got - eager).abs().max()


class _no_compile_fallback:
    """Fails the test if the compiled path fell back to eager (the custom op must compile)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings(record=True)
        self.caught = self._w.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
        assert not [w for w in self.caught if "torch.compile failed" in str(w.message)], \
            [str(w.message) for w in self.caught]


def test_judge_applies_the_rule():
    from tunesmith.infer.verify import MIN_TEXTS, judge

    n = MIN_TEXTS * 2
    gold = [i % 2 for i in range(n)]
    ref = list(gold)
    ok = judge(list(ref[:-1]) + [1 - ref[-1]], ref, gold)  # one label in 1,000 moved
    assert ok["default_ok"] and ok["labels_changed_pct"] == 0.1 and ok["accuracy"] == 99.9
    moved = [1 - g if i < n // 50 else g for i, g in enumerate(ref)]  # 2% moved
    assert not judge(moved, ref, gold)["default_ok"] and "labels changed" in judge(moved, ref, gold)["why"]
    few = judge(ref[:10], ref[:10], gold[:10])
    assert not few["default_ok"] and "only 10 held-out texts" in few["why"]


def test_auto_uses_int8_row_only_when_verified_and_long(tmp_path, monkeypatch):
    from tunesmith.infer.fast import COMPILE_FROM, INT8_COMPILE_FROM, default_path
    from tunesmith.infer.verify import RECORD, verified_paths, write_record

    cpu, cleared = torch.device("cpu"), frozenset({"int8-row-compile"})
    monkeypatch.setattr(int8_lean, "vnni", lambda: False)  # no int8 dot products: not worth it
    assert default_path(cpu, COMPILE_FROM, cleared) in ("bf16-compile", "compile")
    monkeypatch.setattr(int8_lean, "vnni", lambda: True)
    assert INT8_COMPILE_FROM < COMPILE_FROM  # it gains more than bf16-compile, so it pays off sooner
    assert default_path(cpu, INT8_COMPILE_FROM, cleared) == "int8-row-compile"
    assert default_path(cpu, INT8_COMPILE_FROM - 1, cleared) in ("bf16", "fp32")  # eager int8 is no faster
    assert default_path(cpu, INT8_COMPILE_FROM) in ("bf16", "fp32")
    assert default_path(cpu, COMPILE_FROM) in ("bf16-compile", "compile")  # not verified
    assert verified_paths(tmp_path) == frozenset()  # no record
    write_record(tmp_path, {"int8-row-compile": {"default_ok": True}, "other": {"default_ok": False}}, "test")
    assert verified_paths(tmp_path) == {"int8-row-compile"}
    (tmp_path / RECORD).write_text("{not json")
    assert verified_paths(tmp_path) == frozenset()  # a damaged record clears nothing


def test_finetune_records_the_check_and_predict_auto_reads_it(tmp_path, tiny_bert, monkeypatch):
    import csv

    from tunesmith.cli import main
    from tunesmith.infer import verify
    from tunesmith.infer.fast import INT8_COMPILE_FROM
    from tunesmith.infer.predictor import Predictor

    data = tmp_path / "reviews.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(120))
    monkeypatch.setattr(int8_lean, "vnni", lambda: True)  # whatever CPU runs the tests
    monkeypatch.setattr(verify, "MIN_TEXTS", 5)  # the tiny test split has 12 texts
    monkeypatch.setattr(verify, "MAX_CHANGED_PCT", 100.0)
    monkeypatch.setattr(verify, "MAX_ACCURACY_DROP", 100.0)
    run = tmp_path / "run"
    assert main(["finetune", "--model", str(tiny_bert), "--data", str(data), "--epochs", "1",
                 "--output", str(run)]) == 0
    record = json.loads((run / verify.RECORD).read_text())
    check = record["paths"]["int8-row-compile"]
    assert check["texts"] == 12 and check["default_ok"] and record["checked_on"].startswith("test split")
    assert json.loads((run / "report.json").read_text())["fast_paths"]["int8-row-compile"] == check
    assert Predictor.load(run, fast="auto", n_texts=INT8_COMPILE_FROM).engine.name == "int8-row-compile"
    assert Predictor.load(run, fast="auto", n_texts=10).engine.name in ("bf16", "fp32")


def test_bench_record_writes_the_check_for_an_existing_run(tmp_path, tiny_bert, tok, capsys, monkeypatch):
    from tunesmith.cli import main
    from tunesmith.infer import verify

    run = tmp_path / "run"
    _cls(tiny_bert).save_pretrained(run / "model")
    tok.save_pretrained(run / "model")
    (run / "run.json").write_text(json.dumps({"status": "complete", "task": "classification", "method": "full",
                                              "labels": ["LABEL_0", "LABEL_1", "LABEL_2"], "max_length": 32}))
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"\"{r['text']}\",LABEL_{i % 3}\n"
                                             for i, r in enumerate(sentiment_rows(40, seed=9))))
    argv = ["bench", "infer", "--model", str(run), "--data", str(data), "--rounds", "1",
            "--textbook-limit", "5", "--record"]
    assert main(argv + ["--paths", "bf16"]) == 2  # nothing to record: a clear error, no file
    assert "--record needs --paths to include int8-row-compile" in capsys.readouterr().err
    assert not (run / verify.RECORD).exists()
    monkeypatch.setattr(int8_lean, "vnni", lambda: True)
    monkeypatch.setattr(verify, "MIN_TEXTS", 5)
    monkeypatch.setattr(verify, "MAX_CHANGED_PCT", 100.0)
    monkeypatch.setattr(verify, "MAX_ACCURACY_DROP", 100.0)
    assert main(argv + ["--paths", "int8-row-compile"]) == 0
    out = capsys.readouterr().out
    record = json.loads((run / verify.RECORD).read_text())
    check = record["paths"]["int8-row-compile"]
    assert check["texts"] == 40 and check["default_ok"]
    assert "int8-row-compile cleared for --fast auto" in out
    assert "for streamed files of 100,000+ texts: int8-row-compile -> " in out


def test_the_int8_check_is_skipped_on_a_cpu_without_vnni(monkeypatch):
    """Without VNNI/AMX the int8 GEMM is a slow fallback that auto never picks: finetune's check of
    it must not run (it took over ten minutes per run on an AVX2-only CPU)."""
    from tunesmith.infer import fast_check

    def no_predictor(*a, **k):
        raise AssertionError("the int8 path was built")

    monkeypatch.setattr(int8_lean, "vnni", lambda: False)
    monkeypatch.setattr(fast_check, "Predictor", no_predictor)
    out = fast_check.check_paths(None, None, ["a"] * 500, [0] * 500, [0] * 500, 32)
    assert out["int8-row-compile"]["default_ok"] is False and "VNNI" in out["int8-row-compile"]["why"]


def test_a_time_budget_keeps_time_for_the_int8_check_only_where_it_runs(monkeypatch):
    """The budget reserves the check's compile and pass (~45 s cold) at the end of a run; on a CPU
    that skips the check, or with too few held-out texts, that time goes to training instead."""
    from tunesmith.infer import verify
    from tunesmith.tasks.classification import int8_check_seconds

    monkeypatch.setattr(int8_lean, "vnni", lambda: False)
    assert int8_check_seconds(1057) == 0.0
    monkeypatch.setattr(int8_lean, "vnni", lambda: True)
    assert int8_check_seconds(1057) >= 8.0
    assert int8_check_seconds(verify.MIN_TEXTS - 1) == 0.0
