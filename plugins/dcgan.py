"""DCGAN (Radford, Metz & Chintala 2015, arXiv:1511.06434), faithful to the paper's guidelines.

- all-convolutional: strided convolutions in D, fractionally-strided (transposed) in G, no pooling;
- no hidden fully-connected layers: G's projection of z to 4x4 is a transposed convolution on a
  1x1 input (a matrix multiply), D's last layer a 4x4 convolution to one logit;
- BatchNorm in every layer except G's output layer and D's input layer;
- ReLU in G with Tanh at the output, LeakyReLU(0.2) in D;
- weights drawn from N(0, 0.02) (BatchNorm scales from N(1, 0.02), as the reference code does,
  so the normalised activations are not scaled to near zero).

Depth follows the image size: G doubles 4x4 up to the size, D halves it back down to 4x4.

Two defaults differ from the paper (README, "Where the defaults differ from the paper"): the widths (width 64
gives 512, 256, 128, 64 at 64x64, half of Fig. 1's 1024, 512, 256, 128; width=128 builds the figure's), and
the latent prior (N(0, I) by default; the paper's U(-1, 1) is --latent uniform).
"""

from __future__ import annotations

import math

from torch import nn

from ganzoo.api import GanzooError, ModelSpec, PowersOfTwo, hookimpl


def _doublings(image_size: int) -> int:
    """How many 2x up-samplings take 4x4 to image_size (a power of two, >= 8)."""
    if not isinstance(image_size, int) or image_size < 8 or image_size & (image_size - 1):
        raise GanzooError(f"DCGAN needs an image size that is a power of two and at least 8 "
                          f"(e.g. 32, 64, 128), got {image_size}.")
    return int(math.log2(image_size)) - 2


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions; N(1, 0.02) scale and zero shift for BatchNorm."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """DCGAN generator: z -> 4x4 projection -> transposed convolutions doubling to the image size -> Tanh."""

    def __init__(self, *, image_size: int = 64, channels: int = 3, z_dim: int = 100, width: int = 64):
        super().__init__()
        n = _doublings(image_size)
        self.z_dim = z_dim
        widths = [width * 2 ** i for i in reversed(range(n))]           # e.g. 64x64: 512, 256, 128, 64
        layers: list[nn.Module] = [
            # project and reshape: [B, z_dim, 1, 1] -> [B, widths[0], 4, 4]
            nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU(True),
        ]
        for w_in, w_out in zip(widths, widths[1:]):                     # each: [B, w_in, s, s] -> [B, w_out, 2s, 2s]
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]  # output: no BatchNorm
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z):                                               # [B, z_dim] -> [B, C, S, S]
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: strided convolutions halving to 4x4, LeakyReLU(0.2), then a 4x4 convolution to a logit."""

    def __init__(self, *, image_size: int = 64, channels: int = 3, width: int = 64, batchnorm: bool = True):
        super().__init__()
        n = _doublings(image_size)
        widths = [width * 2 ** i for i in range(n)]                     # e.g. 64x64: 64, 128, 256, 512
        norm = nn.BatchNorm2d if batchnorm else lambda w: nn.Identity()  # a WGAN-GP critic has none
        layers: list[nn.Module] = [
            nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False),        # input layer: no BatchNorm
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for w_in, w_out in zip(widths, widths[1:]):                     # each: [B, w_in, s, s] -> [B, w_out, s/2, s/2]
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), norm(w_out), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)]       # [B, w, 4, 4] -> [B, 1, 1, 1]
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, x):                                               # [B, C, S, S] -> [B] logits
        return self.net(x).flatten()


@hookimpl
def register_generators(register):
    register("dcgan", DCGANGenerator, image_sizes=PowersOfTwo(8))


@hookimpl
def register_discriminators(register):
    register("dcgan", DCGANDiscriminator, image_sizes=PowersOfTwo(8))


@hookimpl
def register_models(register):
    register("dcgan", ModelSpec(generator="dcgan", discriminator="dcgan", loss="nonsaturating"),
             "DCGAN (Radford et al. 2015): all-convolutional G and D with BatchNorm, Adam 2e-4, beta1 0.5")
