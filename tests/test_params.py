"""Parameter counts from a config: hand-computed values, the textbook's BERT-base numbers, and
every formula checked against the model peft actually builds."""
import pytest
from transformers import BertConfig

from tunesmith.adapt import REGISTRY, apply_method, param_table
from tunesmith.cli import main
from tunesmith.config import MethodConfig
from tunesmith.strategy.formulas import breakdown, count_method

SMALL = dict(vocab_size=100, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=16, max_position_embeddings=20, type_vocab_size=2)


def test_small_config_by_hand():
    h, i, L, V, P, T = 8, 16, 2, 100, 20, 2
    emb = (V + P + T) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    pooler = h * h + h
    rows = {name: n for name, n, _ in breakdown(BertConfig(**SMALL))}
    assert rows["embeddings"] == emb
    assert rows["encoder"] == L * layer
    assert rows["encoder total"] == emb + L * layer + pooler
    c = count_method(BertConfig(**SMALL), "lora", num_labels=3, r=2)
    assert c.head == h * 3 + 3
    assert c.adapter == L * 2 * 2 * (h + h)  # query+value per layer, r(d+k)
    assert count_method(BertConfig(**SMALL), "lora", r=2, targets=["intermediate.dense"]).adapter == L * 2 * (h + i)
    assert count_method(BertConfig(**SMALL), "prompt", num_virtual_tokens=3).adapter == 3 * h


def test_textbook_bert_base_numbers():
    cfg = BertConfig()  # bert-base-uncased: vocab 30,522, hidden 768, 12 layers
    rows = {name: n for name, n, _ in breakdown(cfg)}
    assert rows["encoder total"] == 109_482_240
    lora = count_method(cfg, "lora", num_labels=2, r=8, targets=["query", "value"], pooling="cls")  # the book reads [CLS]
    assert lora.base == 109_483_778
    assert lora.adapter == 294_912
    assert lora.total == 109_778_690
    assert round(100 * lora.adapter / lora.total, 4) == 0.2686  # the book prints 0.2687%
    assert lora.head == 1_538 and lora.trainable == 296_450
    big = count_method(cfg, "lora", r=16, targets=["query", "key", "value", "attention.output.dense"])
    assert big.adapter == 1_179_648
    assert big.adapted_weights == 28_311_552
    assert round(100 * big.adapter / big.adapted_weights, 2) == 4.17


@pytest.mark.parametrize("pool", ["cls", "mean"])
@pytest.mark.parametrize("method", list(REGISTRY))  # a registered method is tested by being registered
def test_formula_matches_what_peft_builds(method, pool):
    import torch
    from transformers import BertForSequenceClassification

    from tunesmith.errors import TunesmithError

    cfg = BertConfig(**SMALL, num_labels=3)
    torch.manual_seed(0)
    opts = MethodConfig(name=method, lora_r=2, num_virtual_tokens=3, adapter_size=3, pooling=pool)
    if method == "adapter" and pool == "mean":
        with pytest.raises(TunesmithError, match="mean"):
            apply_method(BertForSequenceClassification(BertConfig(**SMALL, num_labels=3)), opts, "classification")
        return
    model = apply_method(BertForSequenceClassification(BertConfig(**SMALL, num_labels=3)), opts, "classification")
    real = param_table(model)
    c = count_method(cfg, method, num_labels=3, r=2, num_virtual_tokens=3, adapter_size=3, pooling=pool)
    assert real["trainable"] == c.trainable
    assert real["total"] == c.total


def test_params_command_prints_textbook_numbers(capsys):
    assert main(["params", "bert-base-uncased", "--method", "lora,full,head", "--pooling", "cls"]) == 0
    out = capsys.readouterr().out
    for number in ("109,482,240", "109,483,778", "294,912", "109,778,690", "r·(d+k) = 8·(768+768)"):
        assert number in out
    assert main(["params", "--method", "lora", "--r", "16", "--targets",
                 "query,key,value,attention.output.dense"]) == 0
    out = capsys.readouterr().out
    assert "1,179,648 = 4.17% of their 28,311,552 weights" in out
