"""ganzoo-sndcgan's own tests: ganzoo's conformance kit, then what makes SN-DCGAN what it is.

Run after installing the package (pip install -e examples/sndcgan): python -m pytest examples/sndcgan
"""

import pytest
import torch
from torch import nn

from ganzoo import GanzooError
from ganzoo.testing import check_plugin

from ganzoo_sndcgan.model import HingeLoss, SNDCGANDiscriminator


def test_conforms_to_ganzoo():
    check_plugin("sndcgan")   # every contract ganzoo relies on; a failure says what to fix


def test_standard_cnn_of_the_paper_at_32x32():
    """Miyato et al. 2018, Table 3b: 3x3/1 64, 4x4/2 64, 3x3/1 128, 4x4/2 128, 3x3/1 256, 4x4/2 256, 3x3/1 512."""
    D = SNDCGANDiscriminator(image_size=32, channels=3, width=64)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (64, 3, 1), (64, 4, 2), (128, 3, 1), (128, 4, 2), (256, 3, 1), (256, 4, 2), (512, 3, 1)]
    assert D.head.in_features == 512 * 4 * 4 and D.head.out_features == 1
    acts = [m for m in D.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 7 and all(a.negative_slope == 0.1 for a in acts)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())


def test_every_weight_has_spectral_norm_one_after_power_iterations():
    torch.manual_seed(0)
    D = SNDCGANDiscriminator(image_size=16, channels=1, width=8).train()
    x = torch.randn(4, 1, 16, 16)
    for _ in range(200):                      # each training-mode forward runs one power iteration per layer
        D(x)
    D.eval()
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 6
    for layer in layers:
        assert torch.nn.utils.parametrize.is_parametrized(layer, "weight")
        with torch.no_grad():
            raw = layer.parametrizations.weight.original
            sigma_raw = torch.linalg.matrix_norm(raw.flatten(1), ord=2).item()
            sigma = torch.linalg.matrix_norm(layer.weight.flatten(1), ord=2).item()   # the weight D uses
        assert sigma_raw > 1.05 or sigma_raw < 0.95                        # normalising changes something
        assert sigma == pytest.approx(1.0, abs=2e-3)


def test_hinge_loss_values():
    loss = HingeLoss()
    assert loss.d_loss(torch.tensor([2.0, 1.0]), torch.tensor([-1.0, -3.0])) == 0      # beyond the margin: no loss
    assert loss.d_loss(torch.zeros(3), torch.zeros(3)) == 2                             # undecided: 1 + 1
    assert loss.d_loss(torch.tensor([0.5]), torch.tensor([0.0])) == pytest.approx(1.5)
    assert loss.g_loss(torch.tensor([3.0, -1.0])) == -1


def test_unsupported_size_is_a_clear_error():
    with pytest.raises(GanzooError, match="power of two"):
        SNDCGANDiscriminator(image_size=28, channels=1, width=8)
