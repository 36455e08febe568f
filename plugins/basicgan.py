"""The original GAN (Goodfellow et al. 2014) as fully-connected networks, for comparison with DCGAN.

G: z -> 256 -> 512 -> 1024 -> pixels (ReLU, Tanh out); D: pixels -> 1024 -> 512 -> 256 -> logit
(LeakyReLU(0.2) and dropout, the common modern stand-in for the paper's maxout units).
The hidden sizes scale with `width` (4x, 8x, 16x of it; 64 gives the sizes above).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ganzoo.api import ModelSpec, hookimpl


class Dropout(nn.Dropout):
    """nn.Dropout whose mask comes from torch.rand on a CPU: the same distribution (each unit kept with
    probability 1 - p, the kept ones scaled by 1 / (1 - p)), drawn 2-3x faster. On a CPU, `bernoulli_` (what
    F.dropout draws with) takes about three times as long per element as `rand`, and it was a quarter of
    basicgan's bf16 step; elsewhere it is F.dropout itself. Same state dict as nn.Dropout (none)."""

    def forward(self, x):
        if not self.training or self.p in (0, 1) or x.device.type != "cpu":
            return super().forward(x)
        keep = torch.rand(x.shape, dtype=torch.float32) >= self.p             # [*x.shape] bool, fp32 draws
        return x * keep * (1.0 / (1.0 - self.p))


class MLPGenerator(nn.Module):
    """Fully-connected generator (Goodfellow et al. 2014): three ReLU hidden layers, Tanh output."""

    def __init__(self, *, image_size: int = 28, channels: int = 1, z_dim: int = 100, width: int = 64):
        super().__init__()
        self.z_dim, self.channels, self.image_size = z_dim, channels, image_size
        hidden = [4 * width, 8 * width, 16 * width]
        layers: list[nn.Module] = []
        for w_in, w_out in zip([z_dim] + hidden, hidden):
            layers += [nn.Linear(w_in, w_out), nn.ReLU(True)]
        layers += [nn.Linear(hidden[-1], channels * image_size * image_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):                                               # [B, z_dim] -> [B, C, S, S]
        return rearrange(self.net(z), "b (c h w) -> b c h w", c=self.channels, h=self.image_size)


class MLPDiscriminator(nn.Module):
    """Fully-connected discriminator (Goodfellow et al. 2014): three LeakyReLU + dropout hidden layers."""

    def __init__(self, *, image_size: int = 28, channels: int = 1, width: int = 64):
        super().__init__()
        hidden = [16 * width, 8 * width, 4 * width]
        layers: list[nn.Module] = []
        for w_in, w_out in zip([channels * image_size * image_size] + hidden, hidden):
            layers += [nn.Linear(w_in, w_out), nn.LeakyReLU(0.2, inplace=True), Dropout(0.3)]
        layers += [nn.Linear(hidden[-1], 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):                                               # [B, C, S, S] -> [B] logits
        return self.net(rearrange(x, "b c h w -> b (c h w)")).flatten()


@hookimpl
def register_generators(register):
    register("mlp", MLPGenerator)


@hookimpl
def register_discriminators(register):
    register("mlp", MLPDiscriminator)


@hookimpl
def register_models(register):
    register("basicgan", ModelSpec(generator="mlp", discriminator="mlp", loss="nonsaturating"),
             "The original GAN (Goodfellow et al. 2014): fully-connected G and D")
