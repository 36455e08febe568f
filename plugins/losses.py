"""The two losses of Goodfellow et al. 2014, on logits (softplus forms: never sigmoid then log).

With l a logit and s the sigmoid: -log s(l) = softplus(-l) and -log(1 - s(l)) = softplus(l).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo.api import hookimpl


class NonSaturatingLoss:
    """Non-saturating GAN loss: G maximises log D(G(z)) (the DCGAN paper's practice).

    Options (the seed tutorials' label tricks): `real_label` < 1 is one-sided label smoothing (Salimans
    et al. 2016: real targets 0.9, fake targets stay 0); `instance_noise` > 0 adds N(0, sigma^2) noise to
    every image D judges, real and fake (Sonderby et al. 2017), re-running D through the step's context.
    """

    real_label, instance_noise = 1.0, 0.0       # the defaults, also for subclasses with an __init__ of their own

    def __init__(self, real_label: float = 1.0, instance_noise: float = 0.0):
        self.real_label, self.instance_noise = real_label, instance_noise

    def _noisy(self, logits, images, context):
        """D's outputs on noisy images when instance noise is on (and the step gave its context)."""
        if not self.instance_noise or context is None:
            return logits
        return context.discriminate(images + self.instance_noise * torch.randn_like(images)).float()

    def d_loss(self, real_logits, fake_logits, context=None):
        if context is not None and self.instance_noise:
            real_logits = self._noisy(real_logits, context.real, context)
            fake_logits = self._noisy(fake_logits, context.fake, context)
        if self.real_label != 1.0:                      # -[t log D(x) + (1 - t) log(1 - D(x))], t = real_label
            real_term = self.real_label * F.softplus(-real_logits) + (1 - self.real_label) * F.softplus(real_logits)
            return real_term.mean() + F.softplus(fake_logits).mean()
        # -[log D(x) + log(1 - D(G(z)))]
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits, context=None):
        fake_logits = self._noisy(fake_logits, context.fake, context) if context is not None else fake_logits
        # -log D(G(z))
        return F.softplus(-fake_logits).mean()


class MinimaxLoss(NonSaturatingLoss):
    """Original minimax GAN loss: G minimises log(1 - D(G(z))) (saturates early in training)."""

    def g_loss(self, fake_logits, context=None):
        fake_logits = self._noisy(fake_logits, context.fake, context) if context is not None else fake_logits
        # log(1 - D(G(z)))
        return -F.softplus(fake_logits).mean()


@hookimpl
def register_losses(register):
    register("nonsaturating", NonSaturatingLoss)
    register("minimax", MinimaxLoss)
