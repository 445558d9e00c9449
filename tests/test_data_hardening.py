"""Issue 17 (data): hostile files that were misread silently, lines that aborted a whole predict
stream, messages that pointed the wrong way, and architectures (ModernBERT, GPT-2) that failed
late. Every hostile file is built here in tmp_path; models are tiny random ones from configs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tunesmith.cli import main
from tunesmith.config import DataConfig, MethodConfig
from tunesmith.data.labelled import load_labelled, read_labelled_file
from tunesmith.data.readers import read_records
from tunesmith.errors import TunesmithError
from tunesmith.infer.stream import stream_predict

from conftest import sentiment_rows


def rows_csv(n: int, start: int = 0) -> str:
    return "".join(f"review {i} was {'fine' if i % 2 else 'dull'},{'positive' if i % 2 else 'negative'}\n"
                   for i in range(start, start + n))


# ----------------------------------------------------------------------------- silent misreads

def test_unclosed_quote_closed_by_a_later_field_is_an_error_not_a_merged_text(tmp_path):
    """The issue's file: 83 rows, the 41st `"never closed,positive`; the next quoted field closed
    the quote, so the old reader returned 80 rows, four lines glued into one text, without a word."""
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + rows_csv(40) + '"never closed,positive\n' + rows_csv(2, 40)
                    + '"a quoted review",positive\n' + rows_csv(39, 42))
    with pytest.raises(TunesmithError, match=r"reviews.csv, line 42: field 'text' opens a quote that is not "
                                              r"closed on this line, so the rows up to line 45"):
        read_records(path)


def test_unclosed_quote_running_to_the_end_names_its_line_and_field(tmp_path):
    path = tmp_path / "reviews.tsv"
    path.write_text("label\ttext\n" + "positive\tfine\n" * 5 + 'negative\t"never closed\npositive\tok\n')
    with pytest.raises(TunesmithError, match=r"reviews.tsv, line 7: field 'text' opens a quote that is never "
                                              r"closed \(it would run to the end of the file, line 8\)"):
        read_records(path)


def test_text_after_a_closing_quote_is_an_error(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('text,label\nok,positive\n"quoted" and more,negative\n')
    with pytest.raises(TunesmithError, match=r"a.csv, line 3: field 'text': text after a closing quote"):
        read_records(path)


def test_legitimate_multi_line_and_doubled_quotes_still_read(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text('text,label\n"two\nlines, one review",positive\n"she said ""no""",negative\nplain,negative\n')
    recs = read_records(path)
    assert [r["text"] for r in recs] == ["two\nlines, one review", 'she said "no"', "plain"]
    assert [r["_line"] for r in recs] == [2, 4, 5]  # a record is named by the line it starts on


@pytest.mark.parametrize("record,field,what", [
    ({"text": 5, "label": "a"}, "text", r"a number \(5\)"),
    ({"text": True, "label": "a"}, "text", r"true/false \(true\)"),
    ({"text": ["x"], "label": "a"}, "text", r"a list"),
    ({"text": "fine", "label": ["x"]}, "label", r"a list \(\[\"x\"\]\).*multi-label"),
    ({"text": "fine", "label": {"a": 1}}, "label", r"an object \(\{\"a\": 1\}\)"),
    ({"text": "fine", "label": True}, "label", r"true/false \(true\)"),
    ({"text": "fine", "label": 0.5}, "label", r"a number \(0.5\), not a class"),
    ({"text": "fine", "label": float("nan")}, "label", r"a number \(NaN\), not a class"),
])
@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_non_string_json_values_name_file_line_and_field(tmp_path, record, field, what, fmt):
    good = {"text": "a good one", "label": "a"}
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n")
    else:
        path.write_text(json.dumps([good, record]))
    with pytest.raises(TunesmithError, match=rf"data.{fmt}, line 2: field '{field}' holds {what}"):
        read_labelled_file(str(path), None, None)


def test_parquet_values_follow_the_same_rules(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [1, 2], "label": ["a", "b"]}), tmp_path / "n.parquet")
    with pytest.raises(TunesmithError, match=r"n.parquet, line 1: field 'text' holds a number \(1\)"):
        read_labelled_file(str(tmp_path / "n.parquet"), None, None)
    pq.write_table(pa.table({"text": ["x", "y"], "label": [1.0, None]}), tmp_path / "f.parquet")
    with pytest.raises(TunesmithError, match=r"f.parquet, line 2: empty label"):
        read_labelled_file(str(tmp_path / "f.parquet"), None, None)


def test_numbers_as_labels_the_documented_rule(tmp_path):
    """Integers, integral floats and their strings are one label each: 1, 1.0, "1" -> "1"."""
    rows = [{"text": f"text {i}", "label": [1, 1.0, "1", 10, 10.0, "2", 2, -1][i % 8]} for i in range(64)]
    path = tmp_path / "n.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = load_labelled(DataConfig(dataset=str(path)))
    assert data.labels == ["-1", "1", "2", "10"]  # numerically sorted, no "1.0", no "10.0"
    assert sum(data.info["label_counts"]["train"].values()) == len(data.splits["train"])


# ------------------------------------------------------------------------- messages that point right

def test_headerless_tsv_says_so_and_the_advice_works(tmp_path):
    body = "".join(f"{'a lovely film' if i % 2 else 'dull'} {i}\t{'pos' if i % 2 else 'neg'}\n" for i in range(20))
    path = tmp_path / "noheader.tsv"
    path.write_text(body)
    with pytest.raises(TunesmithError) as e:
        read_labelled_file(str(path), None, None)
    msg = str(e.value)
    assert "seems to have no header" in msg and "name it with --text-column" not in msg
    assert f"sed -i '1i text\\tlabel' {path}" in msg
    path.write_text("text\tlabel\n" + body)  # what the sed command does
    rows, info = read_labelled_file(str(path), None, None)
    assert len(rows) == 20 and info["text_column"] == "text"


def test_headerless_csv_with_numeric_labels_in_front(tmp_path):
    path = tmp_path / "noheader.csv"
    path.write_text("".join(f"{i % 2},review number {i}\n" for i in range(10)))
    with pytest.raises(TunesmithError, match=r"no header.*sed -i '1i label,text'"):
        read_labelled_file(str(path), None, None)


def test_a_real_header_with_odd_names_keeps_the_column_message(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("body_text,verdict\ngood one,yes\nbad one,no\n")
    with pytest.raises(TunesmithError, match=r"cannot tell which column holds the text.*--text-column"):
        read_labelled_file(str(path), None, None)


@pytest.mark.parametrize("name", ["stars", "rating", "score", "Stars"])
def test_rating_columns_are_label_columns(tmp_path, name):
    path = tmp_path / "r.csv"
    path.write_text(f"review,{name}\ngood,5\nbad,1\n")
    assert read_labelled_file(str(path), None, None)[1]["label_column"] == name


def test_a_label_column_wins_over_a_score_column(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("text,label,score\ngood,pos,0.91\nbad,neg,0.12\n")
    assert read_labelled_file(str(path), None, None)[1]["label_column"] == "label"


def fake_classification_run(tmp_path: Path, model_dir: Path) -> Path:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = tmp_path / "run"
    AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1}).save_pretrained(run / "model")
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(run / "model")
    (run / "run.json").write_text(json.dumps({"status": "complete", "task": "classification", "method": "full",
                                              "labels": ["negative", "positive"], "max_length": 32}))
    return run


def test_evaluate_empty_texts_does_not_suggest_an_option_evaluate_rejects(tmp_path, tiny_bert, capsys):
    run = fake_classification_run(tmp_path, tiny_bert)
    data = tmp_path / "test.csv"
    data.write_text("text,label\ngreat,positive\n ,negative\n")
    assert main(["evaluate", str(run), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "test.csv: 1 empty text(s) in column 'text' at line(s) 3" in err
    assert "drop_empty" not in err and "remove those rows" in err
    with pytest.raises(SystemExit):  # what the old hint led to: argparse rejects the option
        main(["evaluate", str(run), "--data", str(data), "--data.drop_empty=true"])
    assert "unrecognized arguments: --data.drop_empty=true" in capsys.readouterr().err


# ------------------------------------------------------------------------------- the predict stream

def hostile_jsonl(path: Path) -> Path:
    lines = [b'{"text": "great film"}',
             b"[" * 5000,                                   # RecursionError in json.loads
             b'{"text": "a", "id": ' + b"9" * 5000 + b"}",  # ValueError: over 4,300 digits
             b'{"text": 5}', b'{"text": ["x"]}', b'{"text": {"a": 1}}', b'{"text": true}',
             b'{"text": "\\ud800 lone"}',                    # a lone surrogate escape
             b'{"text": "dull plot"}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_predict_cli_turns_every_bad_line_into_an_error_record(tmp_path, tiny_bert, capsys):
    run = fake_classification_run(tmp_path, tiny_bert)
    inp, out = hostile_jsonl(tmp_path / "in.jsonl"), tmp_path / "preds.jsonl"
    assert main(["predict", str(run), "--input", str(inp), "--output", str(out), "--no-progress",
                 "--fast", "fp32"]) == 0
    recs = [json.loads(l) for l in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in recs] == list(range(1, 10))
    errors = {r["line"]: r["error"] for r in recs if "error" in r}
    assert set(errors) == {2, 3, 4, 5, 6, 7, 8}
    assert "nested too deeply" in errors[2] and "4300 digits" in errors[3]
    assert errors[4] == "field 'text' holds a number (5), not text" and "a list" in errors[5]
    assert "an object" in errors[6] and "true/false" in errors[7] and "lone surrogate" in errors[8]
    assert recs[0]["label"] in ("negative", "positive") and recs[8]["text"] == "dull plot"
    assert "7 bad line(s)" in capsys.readouterr().err


class Breaks:
    """A fake task that raises for texts containing 'boom' (or for every text)."""

    def __init__(self, always: bool = False):
        self.always = always

    def __call__(self, texts: list[str]) -> list[dict]:
        if self.always or any("boom" in t for t in texts):
            raise RuntimeError("the model broke")
        return [{"label": "x"} for _ in texts]


def test_a_text_that_breaks_the_model_is_an_error_record(tmp_path):
    inp, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    inp.write_text("fine\nboom here\nalso fine\n" + "more\n" * 5 + "boom again\n")
    counts = stream_predict(Breaks(), inp, out, chunk_size=3, progress=False)
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(recs) == 9 and counts["errors"] == 2
    assert [r["line"] for r in recs if "error" in r] == [2, 9]  # the last chunk holds only the bad text
    assert recs[1]["error"] == "prediction failed (RuntimeError: the model broke)"


def test_a_model_that_always_fails_stops_and_leaves_no_empty_output(tmp_path, capsys):
    inp, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    inp.write_text("a\nb\n")
    with pytest.raises(RuntimeError, match="the model broke"):
        stream_predict(Breaks(always=True), inp, out, progress=False)
    assert not out.exists() and f"removed the empty {out}" in capsys.readouterr().err


@pytest.mark.parametrize("name,content", [
    ("bad.csv", b'text\n"never closed\nok\n'),
    ("bad.parquet", b"PAR1 this is not parquet PAR1"),
    ("noheader.tsv", b"a lovely film\tpos\ndull\tneg\nfun\tpos\n"),
])
def test_whole_read_inputs_that_fail_leave_no_output_file(tmp_path, tiny_bert, capsys, name, content):
    run = fake_classification_run(tmp_path, tiny_bert)
    inp, out = tmp_path / name, tmp_path / "preds.jsonl"
    inp.write_bytes(content)
    assert main(["predict", str(run), "--input", str(inp), "--output", str(out), "--no-progress",
                 "--fast", "fp32"]) == 2
    err = capsys.readouterr().err
    assert name in err and "unexpected" not in err
    assert not out.exists()


def test_ner_jsonl_hostile_lines_name_their_line(tmp_path):
    from tunesmith.data.conll import read_ner_file

    good = json.dumps({"tokens": ["Ann", "runs"], "tags": ["B-PER", "O"]})
    cases = {"deep.jsonl": b"[" * 5000, "big.jsonl": b'{"tokens": [' + b"9" * 5000 + b'], "tags": ["O"]}',
             "ids.jsonl": b'{"tokens": ["Ann", "runs"], "tags": [1, 0]}',
             "numtok.jsonl": b'{"tokens": ["in", 1999], "tags": ["O", "O"]}',
             "sep.jsonl": '{"tokens": ["Bo"], "tags": ["B-PER"], "note": "a\u2028b"}'.encode()}
    patterns = {"deep.jsonl": "nested too deeply", "big.jsonl": "4300 digits",
                "ids.jsonl": r"tags\[0\] is a number \(1\), not a string; give tag names",
                "numtok.jsonl": r"tokens\[1\] is a number \(1999\)"}
    for name, raw in cases.items():
        path = tmp_path / name
        path.write_bytes(good.encode() + b"\n" + raw + b"\n")
        if name == "sep.jsonl":  # U+2028 inside a JSON string is one line, not two
            assert read_ner_file(path)[1]["tokens"] == ["Bo"]
            continue
        with pytest.raises(TunesmithError, match=rf"{name}, line 2: .*{patterns[name]}"):
            read_ner_file(path)


# ------------------------------------------------------------------------------ architectures

def tiny_modernbert_config(vocab: int, **kw):
    from transformers import ModernBertConfig

    return ModernBertConfig(vocab_size=vocab, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                            num_attention_heads=2, max_position_embeddings=128, local_attention=16,
                            pad_token_id=0, cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3, **kw)


@pytest.fixture(scope="module")
def modernbert_dir(tmp_path_factory) -> Path:
    """A 2-layer ModernBERT with the tiny WordPiece tokenizer ([PAD]=0, [CLS]=2, [SEP]=3)."""
    import torch
    from transformers import AutoTokenizer, ModernBertModel

    from conftest import make_tiny_bert

    root = tmp_path_factory.mktemp("modernbert")
    bert = make_tiny_bert(root / "bert")
    out = root / "model"
    tok = AutoTokenizer.from_pretrained(bert)
    torch.manual_seed(0)
    ModernBertModel(tiny_modernbert_config(len(tok))).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory) -> Path:
    """A 2-layer GPT-2 and a byte-level BPE trained here: an EOS token and no pad token."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    from conftest import WORDS

    out = tmp_path_factory.mktemp("gpt2") / "model"
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(WORDS)] * 20, vocab_size=300, min_frequency=1,
                            special_tokens=["<unk>", "<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                  unk_token="<unk>")
    assert tok.pad_token is None and tok.eos_token_id == 1  # not 0: a pad id falling back to 0 would show
    tok.save_pretrained(out)
    torch.manual_seed(0)
    GPT2Model(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                         bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)).save_pretrained(out)
    return out


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    import csv

    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        w.writerows(sentiment_rows(48))
    return path


def finetune_argv(model: Path, data: Path, out: Path, method: str, *extra: str) -> list[str]:
    return ["finetune", "--model", str(model), "--data", str(data), "--method", method, "--output", str(out),
            "--epochs", "1", "--batch-size", "16", "--lr", "5e-3", *extra]


def test_check_method_targets_from_configs_without_weights():
    from transformers import GPT2Config, LlamaConfig

    from tunesmith.adapt.methods import check_method_targets

    check_method_targets(tiny_modernbert_config(100), MethodConfig(name="lora"))  # Wqkv, Wo by default
    check_method_targets(tiny_modernbert_config(100), MethodConfig(name="dora", target_modules=["Wqkv"]))
    check_method_targets(GPT2Config(n_embd=32, n_layer=1, n_head=2), MethodConfig(name="lora"))
    with pytest.raises(TunesmithError, match=r"target module\(s\) \['query'\] not found.*Wqkv"):
        check_method_targets(tiny_modernbert_config(100), MethodConfig(name="lora", target_modules=["query"]))
    with pytest.raises(TunesmithError, match="IA3 has no default target modules for model type 'modernbert'"):
        check_method_targets(tiny_modernbert_config(100), MethodConfig(name="ia3"))
    with pytest.raises(TunesmithError, match="unknown method 'magic'"):
        check_method_targets(tiny_modernbert_config(100), MethodConfig(name="magic"))
    # ~1.6 B parameters (6.4 GB in fp32): built on the meta device, nothing is allocated
    big = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=8, num_attention_heads=32,
                      vocab_size=32000)
    check_method_targets(big, MethodConfig(name="lora"))
    check_method_targets("no/such/dir/anywhere", MethodConfig(name="lora"))  # left to apply_method


def test_wrong_targets_fail_before_the_data_is_read(tmp_path, modernbert_dir, capsys):
    missing = tmp_path / "not-there.csv"  # were the data read first, this would be the error
    argv = finetune_argv(modernbert_dir, missing, tmp_path / "run", "lora", "--method.target_modules=query")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "target module(s) ['query'] not found" in err and "not-there" not in err


def test_modernbert_lora_with_default_targets_completes(tmp_path, modernbert_dir, reviews_csv):
    run = tmp_path / "run"
    assert main(finetune_argv(modernbert_dir, reviews_csv, run, "lora")) == 0
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    adapter = json.loads(next(run.rglob("adapter_config.json")).read_text())
    assert sorted(adapter["target_modules"]) == ["Wo", "Wqkv"]


def test_gpt2_classification_pads_with_eos_and_reads_the_last_real_token(tmp_path, gpt2_dir, reviews_csv):
    from transformers import AutoConfig, AutoTokenizer

    from tunesmith.infer.predictor import Predictor

    run = tmp_path / "run"
    assert main(finetune_argv(gpt2_dir, reviews_csv, run, "full")) == 0
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    tok, cfg = AutoTokenizer.from_pretrained(run / "model"), AutoConfig.from_pretrained(run / "model")
    assert tok.pad_token == tok.eos_token and cfg.pad_token_id == tok.eos_token_id
    texts = ["great", "the film was dull and boring and the plot was weak", "fun"]
    predictor = Predictor.load(str(run), fast="fp32")
    batched = predictor.logits(texts)  # padded to the longest text
    one_by_one = [predictor.logits([t])[0] for t in texts]  # no padding at all
    for b, o in zip(batched, one_by_one):
        assert abs(b - o).max() < 1e-4
