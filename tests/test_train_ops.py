"""The fast training ops (train_ops.py): dropout keeps each element with probability 1 - p and
scales by 1 / (1 - p), reproducibly from torch's seed, with the matching gradient; attention equals
the eager formula and SDPA."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tunesmith import train_ops


def test_dropout_keeps_one_minus_p_independently_and_scales():
    torch.manual_seed(0)
    x = torch.ones(400, 1000)
    for p in (0.1, 0.5):
        y = train_ops.dropout(x, p)
        kept = y != 0
        rate = kept.float().mean().item()
        assert abs(rate - (1 - p)) < 4 * (p * (1 - p) / x.numel()) ** 0.5 + 1 / 65536  # within 4 sigma
        assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
        # rows and columns are independent: per-row rates spread like a binomial, not all equal
        rows = kept.float().mean(1)
        assert 0.5 * (p * (1 - p) / 1000) ** 0.5 < rows.std().item() < 2 * (p * (1 - p) / 1000) ** 0.5


def test_dropout_is_reproducible_from_torch_seed_and_differs_per_call():
    x = torch.randn(64, 64)
    torch.manual_seed(3)
    a, b = train_ops.dropout(x, 0.1), train_ops.dropout(x, 0.1)
    torch.manual_seed(3)
    assert torch.equal(a, train_ops.dropout(x, 0.1))
    assert not torch.equal(a, b)


def test_dropout_gradient_is_mask_times_scale_and_eval_is_identity():
    torch.manual_seed(1)
    x = torch.randn(50, 70, requires_grad=True)
    y = train_ops.dropout(x, 0.2)
    y.backward(torch.ones_like(y))
    assert torch.allclose(x.grad, (y != 0).float() / 0.8)
    assert train_ops.dropout(x, 0.2, training=False) is x


def test_patched_dropout_modules_follow_train_and_eval():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.5))
    assert train_ops.patch_dropouts(model) == 1
    x = torch.ones(100, 8)
    model.eval()
    assert torch.equal(model[1](x), x)
    model.train()
    assert (model[1](x) == 0).any()
    train_ops.unpatch_dropouts(model)
    assert "forward" not in vars(model[1])


def test_attention_equals_eager_formula_and_sdpa(monkeypatch):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8) for n in (5, 7, 7))
    mask = torch.zeros(2, 1, 1, 7)
    mask[1, ..., 5:] = torch.finfo(torch.float32).min
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3).transpose(1, 2)
    got = train_ops.attention(q, k, v, mask, 0.3, 0.1, training=False)
    assert torch.allclose(got, want, atol=1e-6)
    monkeypatch.setattr(train_ops, "SDPA_FROM", 1)
    assert torch.allclose(train_ops.attention(q, k, v, mask, 0.3, 0.1, training=False), want, atol=1e-6)
