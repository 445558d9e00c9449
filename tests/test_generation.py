"""Causal LM: generation (greedy, sampling, batches, stop strings, chat template) and the
`finetune --task generation` pipeline on plain text and prompt/response pairs, with tiny
GPT-2 and Llama models built from configs and a byte-level BPE trained in the test."""
from __future__ import annotations

import json
import random

import pytest

from tunesmith.cli import main

WORDS = ("the cat sat on a mat and the dog ran to the park while birds sang in trees "
         "question answer yes no red blue green one two three").split()
CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def corpus(n: int = 300, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))) for _ in range(n)]


def make_tokenizer(directory, chat: bool = False):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus(), vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                  unk_token="<|endoftext|>")
    if chat:
        tok.chat_template = CHAT
    tok.save_pretrained(directory)
    return tok


def make_tiny_lm(directory, arch: str = "gpt2", seed: int = 0):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(directory, chat=arch == "llama")
    torch.manual_seed(seed)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2,
                                           bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                             max_position_embeddings=128, bos_token_id=tok.eos_token_id,
                                             eos_token_id=tok.eos_token_id, tie_word_embeddings=True))
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("gpt2") / "m", "gpt2")


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return make_tiny_lm(tmp_path_factory.mktemp("llama") / "m", "llama")


def load(d):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(d), AutoTokenizer.from_pretrained(d)


# ----------------------------------------------------------------------------- generate()

def test_batched_greedy_equals_one_by_one(gpt2_dir):
    from tunesmith.infer.generation import generate

    model, tok = load(gpt2_dir)
    prompts = ["the cat", "a dog ran to the park while"]
    batched = generate(model, tok, prompts, max_new_tokens=8)
    single = [generate(model, tok, [p], max_new_tokens=8)[0] for p in prompts]
    assert batched == single  # left padding must not change what a prompt continues with
    assert all(len(tok(o[0])["input_ids"]) <= 8 for o in batched)


def test_sampling_with_seed_is_reproducible(llama_dir):
    from tunesmith.infer.generation import generate

    model, tok = load(llama_dir)
    kw = dict(max_new_tokens=6, do_sample=True, temperature=1.5, top_k=0, top_p=1.0, num_return_sequences=3)
    a = generate(model, tok, ["the cat"], seed=7, **kw)
    b = generate(model, tok, ["the cat"], seed=7, **kw)
    assert a == b and len(a[0]) == 3
    with pytest.raises(ValueError, match="needs sampling"):
        generate(model, tok, ["x"], num_return_sequences=2)


def test_stop_strings_cut_the_output(gpt2_dir):
    from tunesmith.infer.generation import cut_at_stop, generate

    model, tok = load(gpt2_dir)
    free = generate(model, tok, ["the cat"], max_new_tokens=12)[0][0]
    assert len(free) > 3
    stop = free[2:4]
    cut = generate(model, tok, ["the cat"], max_new_tokens=12, stop=[stop])[0][0]
    assert stop not in cut and free.startswith(cut) and len(cut) < len(free)
    assert cut_at_stop("one. two!", ["!", "."]) == "one"


def test_chat_template_is_applied_when_the_tokenizer_has_one(llama_dir, gpt2_dir):
    from tunesmith.infer.generation import format_prompt

    _, tok = load(llama_dir)
    assert format_prompt(tok, "hi") == "<|user|>hi<|end|><|assistant|>"
    assert format_prompt(tok, "hi", chat=False) == "hi"
    _, gtok = load(gpt2_dir)
    assert format_prompt(gtok, "hi") == "hi"
    with pytest.raises(ValueError, match="no chat template"):
        format_prompt(gtok, "hi", chat=True)


# ----------------------------------------------------------------------------- data encoding

def test_response_only_masks_the_prompt(gpt2_dir):
    from tunesmith.tasks.generation import IGNORE, pair_examples

    _, tok = load(gpt2_dir)
    row = {"prompt": "question the cat", "response": "answer yes"}
    cols = pair_examples(tok, [row], 64, response_only=True, chat=False)
    n_prompt = len(tok("question the cat")["input_ids"])
    ids, labels = cols["input_ids"][0], cols["labels"][0]
    assert ids == tok("question the cat answer yes<|endoftext|>")["input_ids"]
    assert labels[:n_prompt] == [IGNORE] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
    full = pair_examples(tok, [row], 64, response_only=False, chat=False)
    assert full["labels"][0] == ids


def test_text_blocks_join_documents_with_eos(gpt2_dir):
    from tunesmith.tasks.generation import text_blocks

    _, tok = load(gpt2_dir)
    cols = text_blocks(tok, [{"text": "the cat sat"}, {"text": "a dog ran"}], block_size=4)
    flat = [t for b in cols["input_ids"] for t in b]
    expect = tok("the cat sat")["input_ids"] + [tok.eos_token_id] + tok("a dog ran")["input_ids"] + [tok.eos_token_id]
    assert flat == expect and all(len(b) <= 4 for b in cols["input_ids"])


# ----------------------------------------------------------------------------- CLI end to end

def test_cli_generation_finetune_on_text_then_generate(tmp_path, gpt2_dir, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("\n\n".join(["the cat sat on a mat and the dog ran to the park"] * 60), encoding="utf-8")
    run = tmp_path / "run"
    rc = main(["finetune", "--task", "generation", "--model", str(gpt2_dir), "--data", str(text), "--epochs", "4",
               "--batch-size", "4", "--lr", "3e-2", "--generation.block_size=16", "--method.lora_r=16",
               "--method.target_modules=c_attn,c_fc,c_proj", "--train.warmup_ratio=0", "--generation.max_new_tokens=5",
               "--output", str(run)])
    assert rc == 0
    for name in ("run.json", "report.json", "report.md", "README.md", "learning_curve.png", "params.json"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    assert report["method"] == "lora"  # LoRA is the default for generation
    assert (run / "model" / "adapter_config.json").is_file()
    val = report["evaluation"]["validation"]
    assert val["after"]["perplexity"] < 0.8 * val["before"]["perplexity"]  # learning (LoRA on a random tiny model is slow)
    assert len(report["samples"]) == 3 and "before" in report["samples"][0]
    capsys.readouterr()
    assert main(["generate", str(run), "the cat sat", "--max-new-tokens", "4", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["prompt"] == "the cat sat" and isinstance(line["completion"], str)
    # `tunesmith evaluate` on held-out text gives the run's perplexity
    held = tmp_path / "held.txt"
    held.write_text("\n\n".join(["the cat sat on a mat and the dog ran to the park"] * 8), encoding="utf-8")
    assert main(["evaluate", str(run), "--data", str(held), "--out", str(tmp_path / "ev")]) == 0
    ev = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert ev["tokens"] > 0 and ev["perplexity"] < val["before"]["perplexity"]


def test_cli_generation_full_on_prompt_response_pairs(tmp_path, llama_dir):
    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": f"question {w}", "response": f"answer {w} yes"} for w in WORDS] * 4
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    rc = main(["finetune", "--task", "generation", "--model", str(llama_dir), "--method", "full",
               "--data", str(data), "--epochs", "2", "--batch-size", "8", "--lr", "3e-3",
               "--generation.chat_template=true", "--generation.max_new_tokens=4", "--output", str(run)])
    assert rc == 0
    report = json.loads((run / "report.json").read_text())
    assert report["method"] == "full" and report["data_info"]["kind"] == "prompt/response"
    assert report["params"]["trainable"] == report["params"]["total"]
    val = report["evaluation"]["validation"]
    assert val["after"]["perplexity"] < val["before"]["perplexity"]


def test_bad_pair_rows_name_the_line(tmp_path, gpt2_dir, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "q", "response": "a"}\n{"prompt": "q", "response": ""}\n', encoding="utf-8")
    rc = main(["finetune", "--task", "generation", "--model", str(gpt2_dir), "--data", str(data),
               "--output", str(tmp_path / "run")])
    assert rc == 2 and "pairs.jsonl, line 2: needs non-empty string fields" in capsys.readouterr().err


def test_cli_prints_a_chat_reply_apart_and_a_plain_continuation_glued(llama_dir, gpt2_dir, capsys):
    from tunesmith.infer.generation import generate

    assert main(["generate", str(llama_dir), "the cat sat", "--max-new-tokens", "4"]) == 0  # has a template
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "user: the cat sat" and out[1].startswith("assistant: ")
    assert main(["generate", str(gpt2_dir), "the cat sat", "--max-new-tokens", "4"]) == 0  # plain text
    text = capsys.readouterr().out.strip()
    assert text.startswith("the cat sat") and "assistant:" not in text
    # the library's default is the CLI's: the chat template when the tokenizer has one
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(llama_dir), AutoTokenizer.from_pretrained(llama_dir)
    cli = out[1][len("assistant: "):]
    assert generate(model, tok, ["the cat sat"], max_new_tokens=4)[0][0].strip() == cli
    assert generate(model, tok, ["the cat sat"], max_new_tokens=4, chat=False) != \
        generate(model, tok, ["the cat sat"], max_new_tokens=4)
