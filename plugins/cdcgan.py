"""Conditional DCGAN: DCGAN's networks conditioned on the class (Mirza & Osindero 2014, arXiv:1411.1784).

As the TensorFlow DCGAN conditions on MNIST's digit: the one-hot class y is concatenated to z at G's
input and, broadcast as constant feature maps, to the input of every later layer of G and D
(conv_cond_concat), so every layer sees which class it draws or judges. Layers, widths, BatchNorm
placement, activations and initialisation are DCGAN's (plugins/dcgan.py); only the input channels
grow by num_classes.

The discriminator's second form, ``--options discriminator.projection=true``, is the projection
discriminator (Miyato & Koyama 2018, arXiv:1802.05637): D's features h(x) of the last 4x4 layer give
the logit psi(h) + <embed(y), sum h>, an inner product with a learned class embedding instead of
concatenated inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.api import ModelSpec, PowersOfTwo, hookimpl

from .dcgan import _doublings, init_dcgan_weights


def class_maps(y: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot y [B] as constant feature maps [B, num_classes, H, W] the size of `like`, in its dtype."""
    one_hot = F.one_hot(y, num_classes).to(like.dtype)                   # [B, K]
    return one_hot[:, :, None, None].expand(-1, -1, *like.shape[2:])


def with_class(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, C + K, H, W]: the class maps concatenated to the features (conv_cond_concat)."""
    return torch.cat([x, class_maps(y, num_classes, x)], dim=1)


class ConditionalGenerator(nn.Module):
    """DCGAN's generator taking (z, y): [z; one-hot y] projected to 4x4, y concatenated before every later layer."""

    def __init__(self, *, image_size: int = 64, channels: int = 3, z_dim: int = 100, width: int = 64,
                 num_classes: int = 10):
        super().__init__()
        n = _doublings(image_size)
        self.z_dim, self.num_classes = z_dim, num_classes
        K = num_classes
        widths = [width * 2 ** i for i in reversed(range(n))]           # e.g. 32x32: 256, 128, 64
        # project and reshape: [B, z_dim + K, 1, 1] -> [B, widths[0], 4, 4]
        self.project = nn.Sequential(nn.ConvTranspose2d(z_dim + K, widths[0], 4, 1, 0, bias=False),
                                     nn.BatchNorm2d(widths[0]), nn.ReLU(True))
        self.ups = nn.ModuleList(                                       # each: [B, w_in + K, s, s] -> [B, w_out, 2s, 2s]
            nn.Sequential(nn.ConvTranspose2d(w_in + K, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True))
            for w_in, w_out in zip(widths, widths[1:]))
        self.out = nn.Sequential(nn.ConvTranspose2d(widths[-1] + K, channels, 4, 2, 1, bias=False), nn.Tanh())
        init_dcgan_weights(self)

    def forward(self, z, y):                                            # [B, z_dim], [B] -> [B, C, S, S]
        x = self.project(with_class(z[:, :, None, None], y, self.num_classes))
        for up in self.ups:
            x = up(with_class(x, y, self.num_classes))
        return self.out(with_class(x, y, self.num_classes))


class ConditionalDiscriminator(nn.Module):
    """DCGAN's discriminator judging (x, y): y's maps concatenated to the image and to every later layer's input
    (or, with projection=True, a projection discriminator's class embedding on the last features)."""

    def __init__(self, *, image_size: int = 64, channels: int = 3, width: int = 64, num_classes: int = 10,
                 projection: bool = False, batchnorm: bool = True):
        super().__init__()
        n = _doublings(image_size)
        self.num_classes, self.projection = num_classes, projection
        K = 0 if projection else num_classes                            # channels the class adds to each input
        widths = [width * 2 ** i for i in range(n)]                     # e.g. 32x32: 64, 128, 256
        norm = nn.BatchNorm2d if batchnorm else lambda w: nn.Identity()
        self.downs = nn.ModuleList([nn.Sequential(                      # input layer: no BatchNorm
            nn.Conv2d(channels + K, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True))])
        self.downs.extend(                                              # each: [B, w_in + K, s, s] -> [B, w_out, s/2, s/2]
            nn.Sequential(nn.Conv2d(w_in + K, w_out, 4, 2, 1, bias=False), norm(w_out), nn.LeakyReLU(0.2, inplace=True))
            for w_in, w_out in zip(widths, widths[1:]))
        self.logit = nn.Conv2d(widths[-1] + K, 1, 4, 1, 0, bias=False)   # [B, w + K, 4, 4] -> [B, 1, 1, 1]
        self.embed = nn.Embedding(num_classes, widths[-1]) if projection else None
        init_dcgan_weights(self)
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x, y):                                            # [B, C, S, S], [B] -> [B] logits
        for down in self.downs:
            x = down(x if self.projection else with_class(x, y, self.num_classes))
        if self.projection:                                             # psi(h) + <embed(y), sum over positions of h>
            return self.logit(x).flatten() + (self.embed(y).to(x.dtype) * x.sum(dim=(2, 3))).sum(1)
        return self.logit(with_class(x, y, self.num_classes)).flatten()


@hookimpl
def register_generators(register):
    register("cdcgan", ConditionalGenerator, image_sizes=PowersOfTwo(8), conditional=True)


@hookimpl
def register_discriminators(register):
    register("cdcgan", ConditionalDiscriminator, image_sizes=PowersOfTwo(8), conditional=True)


@hookimpl
def register_models(register):
    register("cdcgan", ModelSpec(generator="cdcgan", discriminator="cdcgan", loss="nonsaturating"),
             "Conditional DCGAN (Mirza & Osindero 2014): G(z, y) and D(x, y) with the class concatenated to every "
             "layer's input; --options discriminator.projection=true for a projection D (Miyato & Koyama 2018)")
