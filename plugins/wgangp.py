"""WGAN-GP (Gulrajani et al. 2017, arXiv:1704.00028): a Wasserstein critic kept 1-Lipschitz by a gradient
penalty, with the paper's settings: lambda 10, 5 critic steps per generator step, Adam 1e-4 with betas
(0, 0.9), and a critic without BatchNorm (the penalty is per sample; batch statistics would mix them).
"""

from __future__ import annotations

import torch

from ganzoo.api import ModelSpec, PowersOfTwo, hookimpl
from ganzoo_plugins.dcgan import DCGANDiscriminator


class WassersteinLoss:
    """Wasserstein loss (Arjovsky et al. 2017): the critic scores real above fake, G raises its fakes' score."""

    labels = {"critic_real": "C(x)", "critic_fake": "C(G(z))"}

    def d_loss(self, real_scores, fake_scores):
        # E[C(G(z))] - E[C(x)]: minus the critic's estimate of the Wasserstein distance
        return fake_scores.mean() - real_scores.mean()

    def g_loss(self, fake_scores):
        # -E[C(G(z))]
        return -fake_scores.mean()

    def statistics(self, real_scores, fake_scores):
        return {"critic_real": real_scores.mean(), "critic_fake": fake_scores.mean()}

    def discriminator_won(self, record) -> bool:
        """Never: a critic's scores are unbounded and its gradient does not vanish as it separates the two."""
        return False


class GradientPenalty:
    """Gradient penalty (Gulrajani et al. 2017): E[(||grad D(x^)|| - center)^2], x^ = e x + (1 - e) G(z), one e per
    sample; `center` 1 (the paper's), or 0 for the zero-centred penalty (Thanh-Tung et al. 2019):
    --options regularizer.gp.center=0."""

    def __init__(self, center: float = 1.0):
        self.center = center

    def __call__(self, context):
        real = context.real.float()
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device)          # [B, 1, 1, 1]: one per sample
        mixed = (eps * real + (1 - eps) * context.fake.float()).requires_grad_(True)
        grad = context.input_gradient(context.discriminate(mixed), mixed)      # [B, C, H, W]
        return (grad.float().flatten(1).norm(2, dim=1) - self.center).square().mean()


class DCGANCritic(DCGANDiscriminator):
    """DCGAN's discriminator without BatchNorm: a WGAN-GP critic (Gulrajani et al. 2017)."""

    def __init__(self, **kwargs):
        super().__init__(batchnorm=False, **kwargs)


@hookimpl
def register_discriminators(register):
    register("dcgan-critic", DCGANCritic, image_sizes=PowersOfTwo(8))


@hookimpl
def register_losses(register):
    register("wasserstein", WassersteinLoss)


@hookimpl
def register_regularizers(register):
    register("gp", GradientPenalty, weight=10.0, every=1)


@hookimpl
def register_models(register):
    register("wgangp", ModelSpec(generator="dcgan", discriminator="dcgan-critic", loss="wasserstein",
                                 defaults={"regularizers": "gp:10", "n_critic": 5, "lr": 1e-4, "beta1": 0.0,
                                           "beta2": 0.9}),
             "WGAN-GP (Gulrajani et al. 2017): Wasserstein critic without BatchNorm, gradient penalty 10, "
             "5 critic steps per G step, Adam 1e-4 betas (0, 0.9); at equal epochs its G takes a fifth of dcgan's "
             "steps, and at CPU budgets (5 epochs) it trails dcgan (README, Leaderboard)")
