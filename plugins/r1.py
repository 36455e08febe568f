"""R1 and R2 (Mescheder, Geiger & Nowozin 2018, arXiv:1801.04406): penalise D's input gradient on real (R1)
or fake (R2) images, gamma/2 ||grad D(x)||^2, here lazily every 16 steps as StyleGAN2 does (Karras et al.
2020). The r1 model: DCGAN with the non-saturating loss and R1, gamma 0.1 for 32x32 MNIST in [-1, 1]
(StyleGAN2-ADA's heuristic 0.0002 * resolution^2 / batch gives 0.0016 at 32x32 and batch 128; the paper
used 10 on larger images: 0.1 sits between, small enough not to slow a DCGAN discriminator down).
"""

from __future__ import annotations

from ganzoo.api import ModelSpec, hookimpl


class R1:
    """R1 (Mescheder et al. 2018): 1/2 E||grad D(x)||^2 on real images (the weight is gamma)."""

    def images(self, context):
        return context.real

    def __call__(self, context):
        x = self.images(context).detach().float().requires_grad_(True)
        grad = context.input_gradient(context.discriminate(x), x)         # [B, C, H, W]
        return 0.5 * grad.float().flatten(1).square().sum(1).mean()


class R2(R1):
    """R2 (Mescheder et al. 2018): 1/2 E||grad D(G(z))||^2 on generated images."""

    def images(self, context):
        return context.fake


@hookimpl
def register_regularizers(register):
    register("r1", R1, weight=0.1, every=16)
    register("r2", R2, weight=0.1, every=16)


@hookimpl
def register_models(register):
    register("r1", ModelSpec(generator="dcgan", discriminator="dcgan", loss="nonsaturating",
                             defaults={"regularizers": "r1:0.1@16"}),
             "DCGAN with R1 (Mescheder et al. 2018), gamma 0.1, lazily every 16 steps")
