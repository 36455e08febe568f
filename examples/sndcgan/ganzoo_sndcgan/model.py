"""SN-DCGAN's discriminator and the hinge loss, standing alone (torch and einops only, plus ganzoo's error type).

Spectral normalisation (Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for
Generative Adversarial Networks", arXiv:1802.05957) divides every weight matrix of D by its largest
singular value, estimated with one power iteration per training step. Each layer is then at most
1-Lipschitz, so D cannot sharpen without bound and G keeps getting useful gradients; unlike a
gradient penalty it costs one matrix-vector product per layer, and it needs no BatchNorm in D.

The discriminator is the paper's "standard CNN" (Table 3b), for 32x32 images:

    3x3 conv 64, 4x4/2 conv 64, 3x3 conv 128, 4x4/2 conv 128, 3x3 conv 256, 4x4/2 conv 256,
    3x3 conv 512, dense -> 1; LeakyReLU(0.1) after every convolution; spectral norm on every layer.

Other sizes (powers of two from 8) get one (3x3, 4x4/2) pair per halving down to 4x4, so the
pattern above is `width` = 64 at 32x32. The loss is the hinge loss the paper reports its best
scores with (Lim & Ye 2017, "Geometric GAN", arXiv:1705.02894; Miyato et al. eq. 17).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganzoo import GanzooError, PowersOfTwo

IMAGE_SIZES = PowersOfTwo(8)
LEAK = 0.1   # the paper's LeakyReLU slope (DCGAN uses 0.2)


def _halvings(image_size: int) -> int:
    """How many stride-2 convolutions take image_size down to 4x4."""
    if image_size not in IMAGE_SIZES:
        raise GanzooError(f"SN-DCGAN's discriminator needs an image size that is {IMAGE_SIZES}, got {image_size}.")
    return image_size.bit_length() - 3


class SNDCGANDiscriminator(nn.Module):
    """SN-DCGAN discriminator (Miyato et al. 2018): spectrally normalised convolutions, no BatchNorm, LeakyReLU(0.1)."""

    def __init__(self, *, image_size: int = 32, channels: int = 3, width: int = 64):
        super().__init__()
        widths = [width * 2 ** i for i in range(_halvings(image_size))]      # 32x32: 64, 128, 256
        layers: list[nn.Module] = []
        w_in = channels
        for w in widths:                                  # each pair: [B, w_in, s, s] -> [B, w, s/2, s/2]
            layers += [spectral_norm(nn.Conv2d(w_in, w, 3, 1, 1)), nn.LeakyReLU(LEAK),
                       spectral_norm(nn.Conv2d(w, w, 4, 2, 1)), nn.LeakyReLU(LEAK)]
            w_in = w
        layers += [spectral_norm(nn.Conv2d(w_in, 2 * w_in, 3, 1, 1)), nn.LeakyReLU(LEAK)]   # [B, 2w, 4, 4]
        self.features = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(2 * w_in * 4 * 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:                 # [B, C, S, S] -> [B] logits
        h = rearrange(self.features(x), "b c h w -> b (c h w)")
        return self.head(h).flatten()


class HingeLoss:
    """Hinge loss (Lim & Ye 2017): D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], G minimises -E[D(G(z))]."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        # D stops pushing a sample once it is classified with margin 1: real above +1, fake below -1
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()
