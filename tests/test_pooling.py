"""adapt/pooling.py: the appended fixed layer turns BERT's [CLS] read-out into mean pooling, and the
model stays an ordinary BertForSequenceClassification (saved, reloaded, lean paths)."""
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, MPNetConfig, MPNetForSequenceClassification

from tunesmith.adapt import pooling
from tunesmith.adapt.registry import apply_method
from tunesmith.config import MethodConfig

SMALL = dict(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=32, max_position_embeddings=40, type_vocab_size=2, num_labels=3)


def batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return ids, mask


def test_every_position_reads_the_layer_norm_of_the_masked_mean():
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**SMALL)).eval()
    ids, mask = batch()
    with torch.no_grad():
        h = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state  # before: 2 layers
    assert pooling.append_mean_pooling(model) == 2 and model.config.num_hidden_layers == 3
    with torch.no_grad():
        out = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    mean = (h * m).sum(1) / m.sum(1)
    want = torch.nn.functional.layer_norm(mean, (16,), eps=model.config.layer_norm_eps)
    for row in range(3):
        real = int(mask[row].sum())
        # every position, padding included, holds LN(mean of the real tokens), to h / SCALE
        assert torch.allclose(out[row, :real], want[row].expand(real, -1), atol=2e-2)
    # and not the [CLS] state: the read-out changed
    cls = torch.nn.functional.layer_norm(h[:, 0], (16,), eps=model.config.layer_norm_eps)
    assert not torch.allclose(out[:, 0], cls, atol=1e-1)


def test_saved_model_reloads_with_plain_transformers_and_lean_paths_apply(tmp_path):
    from tunesmith.infer import encoder

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**SMALL)).eval()
    pooling.append_mean_pooling(model)
    model.save_pretrained(tmp_path)
    again = BertForSequenceClassification.from_pretrained(tmp_path).eval()
    ids, mask = batch()
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask).logits
        assert torch.allclose(again(input_ids=ids, attention_mask=mask).logits, want, atol=1e-6)
    lean, why = encoder.build(again)
    assert lean is not None, why
    assert pooling.problem(again) == "the model already ends in a mean-pooling layer"


def test_refuses_encoders_whose_attention_has_a_position_bias():
    cfg = MPNetConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=40)
    model = MPNetForSequenceClassification(cfg)
    assert "mpnet" in pooling.problem(model)
    with pytest.raises(ValueError, match="mean pooling layer"):
        pooling.append_mean_pooling(model)


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_head_method_trains_only_pooler_and_classifier(pool):
    torch.manual_seed(0)
    model = apply_method(BertForSequenceClassification(BertConfig(**SMALL)),
                         MethodConfig(name="head", pooling=pool), "classification")
    trainable = {n.split(".")[0] if n.startswith("classifier") else n.rsplit(".", 2)[0]
                 for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier", "bert.pooler"}
    assert model.config.num_hidden_layers == (3 if pool == "mean" else 2)


def test_the_model_cards_plain_code_builds_the_same_layer():
    torch.manual_seed(0)
    ours = BertForSequenceClassification(BertConfig(**SMALL)).eval()
    plain = BertForSequenceClassification(BertConfig(**SMALL)).eval()
    plain.load_state_dict(ours.state_dict())
    pooling.append_mean_pooling(ours)
    exec(pooling.PLAIN_CODE, {"base": plain})
    ids, mask = batch()
    with torch.no_grad():
        assert torch.equal(ours(input_ids=ids, attention_mask=mask).logits, plain(input_ids=ids, attention_mask=mask).logits)


def test_lora_reads_the_mean_and_leaves_the_pooling_layer_alone():
    torch.manual_seed(0)
    model = apply_method(BertForSequenceClassification(BertConfig(**SMALL)), MethodConfig(name="lora", lora_r=2),
                         "classification")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert model.config.num_hidden_layers == 3 and not [n for n in trainable if ".layer.2." in n]
    assert any(".layer.1." in n and "lora_" in n for n in trainable)
    cls = apply_method(BertForSequenceClassification(BertConfig(**SMALL)),
                       MethodConfig(name="lora", lora_r=2, pooling="cls"), "classification")
    assert cls.config.num_hidden_layers == 2


def test_adapter_layers_refuse_mean_pooling():
    from tunesmith.errors import TunesmithError

    with pytest.raises(TunesmithError, match="pooling=mean is not available for 'adapter'"):
        apply_method(BertForSequenceClassification(BertConfig(**SMALL)), MethodConfig(name="adapter", pooling="mean"),
                     "classification")
