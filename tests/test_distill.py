"""Knowledge distillation: the loss, the teacher-logit cache, and a whole `tunesmith distill` run on
tiny random models (teacher and student are tiny BERTs; the teacher is trained first)."""
import json

import pytest
import torch
import torch.nn.functional as F

from tunesmith.cli import main
from tunesmith.distill import align, kd_loss
from tunesmith.errors import TunesmithError
from conftest import write_csv


def test_alpha_zero_is_plain_cross_entropy():
    torch.manual_seed(0)
    s, t, y = torch.randn(5, 3), torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    assert torch.allclose(kd_loss(s, t, y, 2.0, 0.0), F.cross_entropy(s, y))


def test_soft_term_is_t_squared_kl_and_vanishes_when_student_matches_teacher():
    torch.manual_seed(0)
    s, t = torch.randn(4, 2), torch.randn(4, 2)
    want = 9.0 * F.kl_div(F.log_softmax(s / 3, -1), F.softmax(t / 3, -1), reduction="batchmean")
    assert torch.allclose(kd_loss(s, t, None, 3.0, 1.0), want, atol=1e-6)
    s = t.clone().requires_grad_(True)
    kd_loss(s, t, None, 3.0, 1.0).backward()
    assert s.grad.abs().max() < 1e-6


def test_unlabelled_rows_take_the_soft_term_only():
    torch.manual_seed(0)
    s, t = torch.randn(2, 2), torch.randn(2, 2)
    mixed = kd_loss(s, t, torch.tensor([1, -100]), 2.0, 0.5)
    row0 = kd_loss(s[:1], t[:1], torch.tensor([1]), 2.0, 0.5)
    row1 = kd_loss(s[1:], t[1:], None, 2.0, 0.5)
    assert torch.allclose(mixed, (row0 + row1) / 2)


def test_teacher_columns_are_aligned_by_label_name():
    assert align(["pos", "neg"], ["neg", "pos"], "t") == [1, 0]
    with pytest.raises(TunesmithError, match="labels"):
        align(["pos", "neg"], ["neg", "neutral"], "t")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    from conftest import make_tiny_bert, sentiment_rows

    root = tmp_path_factory.mktemp("distill")
    model = make_tiny_bert(root / "tiny")
    data = write_csv(root / "reviews.csv", sentiment_rows(120))
    run = root / "teacher"
    assert main(["finetune", "--model", str(model), "--data", str(data), "--output", str(run), "--epochs", "4",
                 "--batch-size", "16", "--lr", "5e-3", "--train.eval_every=8"]) == 0
    return {"root": root, "model": model, "data": data, "run": run}


def distill(teacher, out, *extra):
    return main(["distill", "--teacher", str(teacher["run"]), "--student", str(teacher["model"]),
                 "--data", str(teacher["data"]), "--output", str(out), "--epochs", "2", "--batch-size", "16",
                 "--lr", "5e-3", "--train.eval_every=8", *extra])


def test_distill_writes_an_ordinary_run_naming_its_teacher_and_reuses_the_cache(teacher, tmp_path, capsys):
    unlabelled = tmp_path / "more.txt"
    unlabelled.write_text("great lovely superb film\nawful dull boring plot\n", encoding="utf-8")
    assert distill(teacher, tmp_path / "s1", "--unlabelled", str(unlabelled), "--alpha", "0.7") == 0
    first = capsys.readouterr().out
    assert "computing for" in first and "2 unlabelled texts" in first
    info = json.loads((tmp_path / "s1" / "run.json").read_text())
    assert info["status"] == "complete" and info["distillation"]["alpha"] == 0.7
    assert info["distillation"]["teacher"] == str(teacher["run"].resolve())
    card = (tmp_path / "s1" / "README.md").read_text()
    assert "Distilled from the teacher run" in card and str(teacher["run"].resolve()) in card
    report = json.loads((tmp_path / "s1" / "report.json").read_text())
    assert "test" in report["evaluation"]
    cached = list((teacher["run"] / "teacher_logits").glob("*.npy"))
    assert len(cached) == 1
    assert distill(teacher, tmp_path / "s2", "--unlabelled", str(unlabelled)) == 0
    assert "from the cache" in capsys.readouterr().out
    assert list((teacher["run"] / "teacher_logits").glob("*.npy")) == cached


def test_distill_refuses_a_teacher_trained_on_another_split(teacher, tmp_path, capsys):
    assert main(["distill", "--teacher", str(teacher["run"]), "--student", str(teacher["model"]),
                 "--data", str(teacher["data"]), "--output", str(tmp_path / "x"), "--seed", "1",
                 "--data.seed=7"]) != 0
    assert "another split" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_distill_without_a_teacher_run_says_what_to_give(teacher, tmp_path, capsys):
    assert main(["distill", "--teacher", str(tmp_path), "--student", str(teacher["model"]),
                 "--data", str(teacher["data"]), "--output", str(tmp_path / "y")]) != 0
    assert "not a tunesmith run" in capsys.readouterr().err


def test_unlabelled_texts_that_are_held_out_or_repeated_are_dropped_and_counted():
    from tunesmith.distill import drop_held_out

    extra = [{"text": t, "label": None} for t in ("A test  sentence", "fresh text", "fresh TEXT", "seen one")]
    kept, leaked, repeated = drop_held_out(extra, [{"text": "seen one", "label": "pos"}], ["a test sentence"])
    assert [r["text"] for r in kept] == ["fresh text"]
    assert (leaked, repeated) == (1, 2)


def test_unlabelled_sources_are_comma_separated_files_and_built_ins(tmp_path, monkeypatch):
    from tunesmith.data import builtin
    from tunesmith.distill import unlabelled_rows

    (tmp_path / "a.txt").write_text("one\n\ntwo\n", encoding="utf-8")
    write_csv(tmp_path / "b.csv", [{"text": "three", "label": "x"}])
    monkeypatch.setitem(builtin.LABELLED, "fake-set", lambda: ([{"text": "four", "label": "positive"}], {}))
    rows = unlabelled_rows(f"{tmp_path / 'a.txt'}, {tmp_path / 'b.csv'},fake-set", None, None)
    assert rows == [{"text": t, "label": None} for t in ("one", "two", "three", "four")]
    assert len(unlabelled_rows(f"{tmp_path / 'a.txt'},fake-set", None, 3)) == 3
    with pytest.raises(TunesmithError, match="neither a file nor a built-in"):
        unlabelled_rows("no-such-set", None, None)


def test_distill_drops_unlabelled_texts_of_the_test_split(teacher, tmp_path, capsys):
    """Soft targets on a test sentence would teach the student what it is judged on."""
    from tunesmith.data.labelled import load_labelled
    from tunesmith.config import DataConfig

    data = load_labelled(DataConfig(dataset=str(teacher["data"])))
    test_texts = [r["text"] for r in data.splits["test"]]
    unlabelled = tmp_path / "more.txt"
    unlabelled.write_text("\n".join([test_texts[0].upper(), "a brand new sentence"]) + "\n", encoding="utf-8")
    assert distill(teacher, tmp_path / "s3", "--unlabelled", str(unlabelled)) == 0
    assert "1 unlabelled texts" in (out := capsys.readouterr().out)
    assert "dropped 1 that are validation or test texts" in out
