"""LSGAN (Mao et al. 2017, arXiv:1611.04076): least-squares targets instead of the log loss, on DCGAN's networks.

D regresses real images to b and fakes to a; G pushes its fakes towards c. The paper's 0-1 coding:
a = 0, b = c = 1 (its "a=-1, b=1, c=0" variant is the loss option a=-1, b=1, c=0).
"""

from __future__ import annotations

from ganzoo.api import ModelSpec, hookimpl


class LeastSquaresLoss:
    """Least-squares GAN loss (Mao et al. 2017): D's outputs regressed to a (fake) and b (real), G's to c."""

    labels = {"d_real": "D(x)", "d_fake": "D(G(z))"}

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0):
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real_out, fake_out):
        # 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]
        return 0.5 * (real_out - self.b).square().mean() + 0.5 * (fake_out - self.a).square().mean()

    def g_loss(self, fake_out):
        # 1/2 E[(D(G(z)) - c)^2]
        return 0.5 * (fake_out - self.c).square().mean()

    def statistics(self, real_out, fake_out):
        """D's mean raw outputs: they approach b on real and a on fake as D wins (not probabilities)."""
        return {"d_real": real_out.mean(), "d_fake": fake_out.mean()}

    def discriminator_won(self, record) -> bool:
        """D's outputs within a tenth of the target gap of its targets, and its loss near 0."""
        gap = abs(self.b - self.a)
        return (record["loss_d"] < 0.01 * gap ** 2 and abs(record["d_real"] - self.b) < 0.1 * gap
                and abs(record["d_fake"] - self.a) < 0.1 * gap)


@hookimpl
def register_losses(register):
    register("leastsquares", LeastSquaresLoss)


@hookimpl
def register_models(register):
    register("lsgan", ModelSpec(generator="dcgan", discriminator="dcgan", loss="leastsquares"),
             "LSGAN (Mao et al. 2017): least-squares loss (a=0, b=c=1) on DCGAN's networks and settings; at CPU "
             "budgets (5 epochs) it trails dcgan, on Stacked MNIST still at the blur stage (README, Leaderboard)")
