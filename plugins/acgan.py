"""ACGAN (Odena et al. 2017, arXiv:1610.09585): a conditional G and a D with an auxiliary classifier.

G draws an image of a given class, G(z, c) (here conditional DCGAN's generator, plugins/cdcgan.py). D sees
the image alone and gives two outputs from one trunk: the source logit (real or generated) and the class
logits (which of K classes), returned as ``(logits, {"class_logits": [B, K]})``: the step hands the extra
to the loss through its context, beside the batch's labels. The objective is the paper's:

    L_S = E[log P(S=real | x_real)] + E[log P(S=fake | x_fake)]
    L_C = E[log P(C=c | x_real)]    + E[log P(C=c | x_fake)]

D maximises L_C + L_S and G maximises L_C - L_S (non-saturating for the source term, as in the paper's code):
both networks are trained to classify the fakes as their class, only D to classify the reals.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ganzoo.api import GanzooError, ModelSpec, PowersOfTwo, hookimpl

from .dcgan import _doublings, init_dcgan_weights


class ACGANDiscriminator(nn.Module):
    """DCGAN's discriminator trunk with two heads on its last 4x4 features: the source logit and K class logits."""

    def __init__(self, *, image_size: int = 64, channels: int = 3, width: int = 64, num_classes: int = 10):
        super().__init__()
        n = _doublings(image_size)
        widths = [width * 2 ** i for i in range(n)]                     # e.g. 32x32: 64, 128, 256
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for w_in, w_out in zip(widths, widths[1:]):                     # each: [B, w_in, s, s] -> [B, w_out, s/2, s/2]
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.LeakyReLU(0.2, inplace=True)]
        self.trunk = nn.Sequential(*layers)                             # [B, C, S, S] -> [B, w, 4, 4]
        self.source = nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)     # -> [B, 1, 1, 1]: real or fake
        self.classes = nn.Conv2d(widths[-1], num_classes, 4, 1, 0)      # -> [B, K, 1, 1]: which class
        init_dcgan_weights(self)

    def forward(self, x):                                               # [B, C, S, S] -> [B], {class_logits: [B, K]}
        h = self.trunk(x)
        return self.source(h).flatten(), {"class_logits": self.classes(h).flatten(1)}


class ACGANLoss:
    """ACGAN's loss (Odena et al. 2017): the non-saturating GAN loss on D's source logit plus `class_weight` times
    the cross-entropy of D's class logits (the context's d_real/d_fake extra "class_logits") against the batch's
    labels: on real and fake for D (the fake term weighted `fake_class_weight` more), on fake for G.

    `fake_class_weight=0` trains D's class head on real images only. In the paper's objective both networks
    lower the same fake-class term, so they can agree on a code: G marks each sample's class in a way D's head
    reads and a digit classifier does not see (README, Leaderboard, says what that costs at 5 epochs)."""

    def __init__(self, class_weight: float = 1.0, fake_class_weight: float = 1.0):
        self.class_weight = class_weight
        self.fake_class_weight = fake_class_weight

    @staticmethod
    def _classification(outputs, labels, which: str):
        if labels is None or outputs is None or "class_logits" not in outputs.extras:
            raise GanzooError(f"The acgan loss needs the batch's labels and D's class logits on the {which} images "
                              f"(a discriminator registered with class_head=True, trained on labelled data).")
        return F.cross_entropy(outputs.extras["class_logits"].float(), labels)

    def d_loss(self, real_logits, fake_logits, context):
        source = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()    # -L_S
        classes = self._classification(context.d_real, context.labels, "real")        # -L_C
        if self.fake_class_weight:
            classes = classes + self.fake_class_weight * self._classification(context.d_fake, context.labels,
                                                                              "generated")
        return source + self.class_weight * classes

    def g_loss(self, fake_logits, context):
        # -log D_S(G(z, c)) (non-saturating) - log P(C=c | G(z, c))
        return F.softplus(-fake_logits).mean() + self.class_weight * self._classification(context.d_fake,
                                                                                          context.labels, "generated")


@hookimpl
def register_discriminators(register):
    register("acgan", ACGANDiscriminator, image_sizes=PowersOfTwo(8), class_head=True)


@hookimpl
def register_losses(register):
    register("acgan", ACGANLoss)


@hookimpl
def register_models(register):
    register("acgan", ModelSpec(generator="cdcgan", discriminator="acgan", loss="acgan"),
             "ACGAN (Odena et al. 2017): conditional G(z, c), D(x) with an auxiliary classifier head, the GAN loss "
             "plus class cross-entropy on real and fake; under this objective G codes the class for D rather than "
             "drawing it (class_agreement 0.23 after 5 epochs), --options loss.fake_class_weight=0 draws it "
             "(README, Leaderboard)")
