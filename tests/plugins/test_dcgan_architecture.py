"""DCGAN's architecture guidelines (Radford et al. 2015, section 3), checked on the module tree."""

import pytest
import torch
from torch import nn

from ganzoo import GanzooError
from ganzoo.plugins import registries

REGS = registries()
POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.MaxPool1d, nn.AvgPool1d)


def make(size=64, channels=3, width=64):
    G = REGS.generators.get("dcgan").factory(image_size=size, channels=channels, z_dim=100, width=width)
    D = REGS.discriminators.get("dcgan").factory(image_size=size, channels=channels, width=width)
    return G, D


def layers(module):
    return [m for m in module.modules() if not list(m.children())]


@pytest.mark.parametrize("size", [32, 64, 128])
def test_no_pooling_no_fully_connected(size):
    for net in make(size):
        kinds = {type(m) for m in layers(net)}
        assert not kinds & set(POOLING)
        assert nn.Linear not in kinds


@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_layout(size):
    G, _ = make(size)
    seq = layers(G)
    convs = [m for m in seq if isinstance(m, nn.ConvTranspose2d)]
    assert not any(isinstance(m, nn.Conv2d) for m in seq)                  # only fractionally-strided convolutions
    assert len(convs) == int(torch.log2(torch.tensor(size))) - 1          # 4x4 projection + one per doubling
    assert convs[0].stride == (1, 1) and convs[0].kernel_size == (4, 4)    # z (1x1) -> 4x4 projection
    assert all(c.stride == (2, 2) for c in convs[1:])
    # every conv but the last is followed by BatchNorm then ReLU; the last by Tanh (no BatchNorm at the output)
    for conv in convs[:-1]:
        i = seq.index(conv)
        assert isinstance(seq[i + 1], nn.BatchNorm2d) and isinstance(seq[i + 2], nn.ReLU)
    assert isinstance(seq[-1], nn.Tanh) and seq[-2] is convs[-1]
    assert not any(isinstance(m, (nn.LeakyReLU, nn.Sigmoid)) for m in seq)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_discriminator_layout(size):
    _, D = make(size)
    seq = layers(D)
    convs = [m for m in seq if isinstance(m, nn.Conv2d)]
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in seq)
    assert all(c.stride == (2, 2) for c in convs[:-1])                      # strided convolutions down to 4x4
    assert convs[-1].kernel_size == (4, 4) and convs[-1].stride == (1, 1)   # 4x4 -> one logit
    # input layer: conv then LeakyReLU directly (no BatchNorm); the others: conv, BatchNorm, LeakyReLU
    assert isinstance(seq[1], nn.LeakyReLU)
    for conv in convs[1:-1]:
        i = seq.index(conv)
        assert isinstance(seq[i + 1], nn.BatchNorm2d) and isinstance(seq[i + 2], nn.LeakyReLU)
    assert all(m.negative_slope == 0.2 for m in seq if isinstance(m, nn.LeakyReLU))
    assert seq[-1] is convs[-1]                                             # a raw logit: no sigmoid
    assert not any(isinstance(m, (nn.ReLU, nn.Sigmoid, nn.Tanh)) for m in seq)


def test_widths_double_towards_4x4():
    G, D = make(64, width=64)
    assert [m.out_channels for m in layers(G) if isinstance(m, nn.ConvTranspose2d)] == [512, 256, 128, 64, 3]
    assert [m.out_channels for m in layers(D) if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512, 1]


def test_weights_drawn_from_normal_0_002():
    torch.manual_seed(0)
    G, D = make(64)
    for net in (G, D):
        conv = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
        assert abs(conv.mean().item()) < 1e-3
        assert abs(conv.std().item() - 0.02) < 1e-3
        bn = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
        assert abs(bn.mean().item() - 1) < 5e-3 and abs(bn.std().item() - 0.02) < 5e-3
        assert all((m.bias == 0).all() for m in net.modules() if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize("size", [0, 28, 48, 4])
def test_impossible_sizes_are_one_sentence(size):
    with pytest.raises(GanzooError, match="power of two and at least 8"):
        make(size)
