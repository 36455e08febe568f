"""ganzoo-sndcgan: SN-DCGAN (Miyato et al. 2018) as a ganzoo plugin.

Installing this package adds to ganzoo, through the `ganzoo` entry point in pyproject.toml:
- the discriminator `sndcgan`: spectrally normalised convolutions, no BatchNorm;
- the loss `hinge`;
- the model `sndcgan`: ganzoo's own DCGAN generator (reused by its registry name, untouched), this
  discriminator and the hinge loss, with the paper's Adam settings (lr 2e-4, betas 0.5, 0.999, one D
  step per G step, which equal DCGAN's, so `dcgan` vs `sndcgan` changes only D and the loss).
"""

from ganzoo import ModelSpec, hookimpl

from .model import IMAGE_SIZES, HingeLoss, SNDCGANDiscriminator

__version__ = "0.1.0"


@hookimpl
def register_discriminators(register):
    register("sndcgan", SNDCGANDiscriminator, image_sizes=IMAGE_SIZES)


@hookimpl
def register_losses(register):
    register("hinge", HingeLoss)


@hookimpl
def register_models(register):
    register("sndcgan", ModelSpec(generator="dcgan", discriminator="sndcgan", loss="hinge",
                                  defaults={"lr": 2e-4, "beta1": 0.5, "beta2": 0.999}),
             "SN-DCGAN (Miyato et al. 2018): DCGAN generator, spectrally normalised discriminator, hinge loss")
