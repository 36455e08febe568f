"""basicgan's CPU dropout draws its mask from torch.rand: it must behave exactly like nn.Dropout in law."""

import pytest
import torch

from ganzoo_plugins.basicgan import Dropout


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_keeps_one_minus_p_and_rescales(dtype):
    torch.manual_seed(0)
    x = torch.ones(400, 500, dtype=dtype, requires_grad=True)
    y = Dropout(0.3)(x)
    kept = y != 0
    assert y.dtype == dtype
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.005)        # 200,000 draws: sd 0.001
    assert torch.allclose(y[kept].float(), torch.full_like(y[kept].float(), 1 / 0.7), rtol=1e-2)
    y.float().sum().backward()
    assert torch.equal(x.grad != 0, kept)                                    # the gradient passes the kept units only
    assert Dropout(0.3)(x).ne(0).ne(kept).any()                              # a fresh mask per call


def test_dropout_is_the_identity_in_eval_and_follows_the_seed():
    x = torch.randn(64, 32)
    assert torch.equal(Dropout(0.3).eval()(x), x)
    torch.manual_seed(5)
    a = Dropout(0.3)(x)
    torch.manual_seed(5)
    assert torch.equal(Dropout(0.3)(x), a)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x)) and torch.equal(Dropout(0.0)(x), x)
    assert Dropout(0.3).state_dict() == {}                                   # weights files unchanged
