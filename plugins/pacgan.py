"""PacGAN (Lin, Khetan, Fanti & Oh 2018, arXiv:1712.04086): the discriminator judges m samples at once,
stacked along channels, all real or all generated. A generator that covers few modes fills a pack with
look-alikes, which real packs seldom hold, so D penalises the collapse itself. Packing is a transform of
any discriminator (--pack m: ganzoo.models.Packed); this plugin declares the paper's model.

pacdcgan2: DCGAN's G and D, D judging packs of 2 (the paper's PacDCGAN2 on Stacked MNIST: 1000 of 1000
modes, KL 0.06, against DCGAN's 78.9, KL 4.50; Table 2).
"""

from __future__ import annotations

from ganzoo.api import ModelSpec, hookimpl


@hookimpl
def register_models(register):
    register("pacdcgan2", ModelSpec(generator="dcgan", discriminator="dcgan", loss="nonsaturating",
                                    defaults={"pack": 2}),
             "PacDCGAN2 (Lin et al. 2018): DCGAN with D judging packs of 2 samples stacked along channels, "
             "against mode collapse")
