"""advise: memory estimates by hand, the textbook's three scenarios, where the advice changes."""
from transformers import BertConfig

from tunesmith.cli import main
from tunesmith.strategy.advise import Situation, recommend
from tunesmith.strategy.formulas import count_method
from tunesmith.strategy.memory import activation_bytes, estimate

GB = 10**9
SMALL = dict(vocab_size=100, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
             max_position_embeddings=20)


def test_memory_terms_by_hand():
    cfg = BertConfig(**SMALL)
    s, b, h, i, a, L = 10, 4, 8, 16, 2, 2
    per_layer = s * b * (18 * h + 4 * i) + 5 * a * s * s * b
    assert activation_bytes(cfg, b, s, "mixed") == L * per_layer + 2 * s * b * h
    assert activation_bytes(cfg, b, s, "fp32") == 2 * (L * per_layer + 2 * s * b * h)
    full = count_method(cfg, "full")
    m = estimate(cfg, full, b, s)
    assert (m.weights, m.gradients, m.optimizer) == (4 * full.total, 4 * full.total, 8 * full.total)
    lora = count_method(cfg, "lora", r=2)
    m = estimate(cfg, lora, b, s)
    assert m.gradients == 4 * lora.trainable and m.weights == 4 * lora.total
    assert estimate(cfg, count_method(cfg, "head"), b, s).activations < m.activations


def test_textbook_scenarios():
    bert = BertConfig()
    large = recommend(bert, Situation(samples=100_000, memory_bytes=16 * GB, hours=72))
    assert large.method == "full"
    small = recommend(bert, Situation(samples=500, memory_bytes=8 * GB))
    assert small.method == "lora"
    assert small.settings["train.early_stopping_patience"] and small.settings["augment.ops"] == "eda"
    assert any("overfit" in r for r in small.reasons)
    multi = recommend(bert, Situation(samples=5_000, memory_bytes=16 * GB, tasks=20, storage_bytes=1 * GB))
    assert multi.method == "lora"
    assert multi.storage["full"] == 20 * 4 * 109_483_778 and multi.storage["lora"] < 1 * GB


def test_where_the_advice_changes():
    bert = BertConfig()
    need = recommend(bert, Situation(samples=100_000, memory_bytes=16 * GB)).memory["full"].total
    below = recommend(bert, Situation(samples=100_000, memory_bytes=int(need / 0.9) - 1))
    above = recommend(bert, Situation(samples=100_000, memory_bytes=int(need / 0.9) + 1))
    assert below.method != "full" and above.method == "full"
    assert recommend(bert, Situation(samples=50, memory_bytes=16 * GB)).method == "head"
    assert recommend(bert, Situation(samples=100_000, memory_bytes=16 * GB, tasks=3)).method == "lora"
    def tight(limit):
        return recommend(bert, Situation(samples=100_000, memory_bytes=16 * GB, tasks=20,
                                         storage_bytes=int(limit * GB))).method
    assert (tight(0.47), tight(0.445), tight(0.44)) == ("lora", "ia3", "prompt")


def test_probe_measures_a_tiny_model():
    from tunesmith.strategy.probe import probe

    r = probe(BertConfig(**SMALL), "lora", batch=2, seq=8, steps=2)
    assert r.seconds_per_step > 0 and r.samples_per_second > 0 and r.steps == 2
    assert r.epoch_seconds(10, 2) == 5 * r.seconds_per_step


def test_advise_command(capsys):
    assert main(["advise", "--scenario", "small", "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "recommendation: lora" in out and "what would change the advice" in out
    assert "--augment.ops=eda" in out
    assert main(["advise", "--no-probe"]) == 2  # no data size given: a clear error


def test_probe_memory_does_not_depend_on_which_method_is_probed_first():
    """Each CPU probe runs in a fresh process: two orders give the same figures within 10%."""
    from tunesmith.strategy.probe import probe

    cfg = BertConfig(vocab_size=8000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=256)
    first = {m: probe(cfg, m, batch=8, seq=32, steps=1).peak_bytes for m in ("full", "lora")}
    second = {m: probe(cfg, m, batch=8, seq=32, steps=1).peak_bytes for m in ("lora", "full")}
    for m in first:
        assert abs(first[m] - second[m]) <= 0.1 * max(first[m], second[m]), (m, first[m], second[m])
    assert first["full"] > first["lora"]  # full fine-tuning keeps AdamW state for every weight
