"""The two losses of Goodfellow et al. 2014, on logits (softplus forms: never sigmoid then log).

With l a logit and s the sigmoid: -log s(l) = softplus(-l) and -log(1 - s(l)) = softplus(l).
"""

from __future__ import annotations

import torch.nn.functional as F

from ganzoo import hookimpl


class NonSaturatingLoss:
    """Non-saturating GAN loss: G maximises log D(G(z)) (the DCGAN paper's practice)."""

    def d_loss(self, real_logits, fake_logits):
        # -[log D(x) + log(1 - D(G(z)))]
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits):
        # -log D(G(z))
        return F.softplus(-fake_logits).mean()


class MinimaxLoss(NonSaturatingLoss):
    """Original minimax GAN loss: G minimises log(1 - D(G(z))) (saturates early in training)."""

    def g_loss(self, fake_logits):
        # log(1 - D(G(z)))
        return -F.softplus(fake_logits).mean()


@hookimpl
def register_losses(register):
    register("nonsaturating", NonSaturatingLoss)
    register("minimax", MinimaxLoss)
