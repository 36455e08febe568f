"""ACGAN (Odena et al. 2017) and the step context it needs: the batch's labels and D's class head (a named extra
beside its [B] logits) reach the loss, the main-pass outputs are reused (no extra D pass), and the trainer itself
refuses a D whose logits are not [B]."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import SETTINGS, install_plugin
from ganzoo import GanzooError, ModelSpec
from ganzoo.data import load_dataset
from ganzoo.resolve import make_config
from ganzoo.train import Trainer
from ganzoo_plugins.acgan import ACGANLoss

TINY = dict(SETTINGS)
CLASSES = 4                                                     # the fake dataset's classes


def fake():
    return load_dataset("fake", root=None, split="train", image_size=32, channels=1, download=False)


@pytest.fixture
def acgan(one_thread):
    trainer = Trainer(make_config("acgan", dict(TINY)), fake())
    return trainer


def test_acgan_d_classifies_the_image_alone_and_its_class_head_has_the_datasets_classes(acgan):
    assert acgan.config.num_classes == CLASSES
    real, labels = next(acgan.batches.labelled(acgan.data_rng))
    logits, extras = acgan.D(real)                              # D(x): the image alone, as in the paper
    assert logits.shape == (32,) and extras["class_logits"].shape == (32, CLASSES)


def test_labels_and_the_class_head_reach_the_loss_with_no_extra_d_pass(acgan, monkeypatch):
    seen = []
    real_d_loss, real_g_loss = ACGANLoss.d_loss, ACGANLoss.g_loss

    def d_loss(self, real_logits, fake_logits, context):
        seen.append(("D", context.labels.clone(), context.d_real, context.d_fake, real_logits, fake_logits))
        return real_d_loss(self, real_logits, fake_logits, context)

    def g_loss(self, fake_logits, context):
        seen.append(("G", context.labels.clone(), context.d_real, context.d_fake, None, fake_logits))
        return real_g_loss(self, fake_logits, context)
    monkeypatch.setattr(ACGANLoss, "d_loss", d_loss)
    monkeypatch.setattr(ACGANLoss, "g_loss", g_loss)
    calls = []
    forward = acgan.D.forward
    monkeypatch.setattr(acgan.D, "forward", lambda x: (calls.append(x.shape[0]), forward(x))[1])
    real, labels = next(acgan.batches.labelled(acgan.data_rng))
    acgan.step(real, labels)
    assert len(calls) == 3                                      # real, fake, fake for G: nothing recomputed
    (_, d_labels, d_real, d_fake, rl, fl), (_, g_labels, g_real, g_fake, _, gl) = seen
    assert torch.equal(d_labels, labels) and torch.equal(g_labels, labels)
    assert torch.equal(d_real.logits.float(), rl) and torch.equal(d_fake.logits.float(), fl)
    assert torch.equal(g_fake.logits.float(), gl)
    assert d_real.extras["class_logits"].shape == (32, CLASSES)
    assert not g_real.logits.requires_grad                      # Gmain's d_real: the Dmain pass, detached


def test_the_class_term_trains_both_networks_and_follows_the_labels():
    """The loss's value is the GAN loss plus the class cross-entropy of the labels it is given: wrong labels cost
    more once D classifies, so a loss that ignored the labels or the class head would fail here."""
    torch.manual_seed(0)
    from ganzoo.api import DOutputs, StepContext
    labels = torch.tensor([0, 1, 2, 3])
    good = torch.eye(4) * 10                                    # class logits that name each label
    real, fake = torch.zeros(4), torch.zeros(4)
    ctx = lambda y: StepContext(None, None, None, "Dmain", labels=y, d_real=DOutputs(real, {"class_logits": good}),
                                d_fake=DOutputs(fake, {"class_logits": good}))
    loss = ACGANLoss()
    right, wrong = loss.d_loss(real, fake, ctx(labels)), loss.d_loss(real, fake, ctx((labels + 1) % 4))
    gan = 2 * F.softplus(torch.zeros(())).item()
    assert right.item() == pytest.approx(gan + 2 * F.cross_entropy(good, labels).item(), rel=1e-5)
    assert wrong.item() > right.item() + 10
    assert loss.g_loss(fake, ctx((labels + 1) % 4)).item() > loss.g_loss(fake, ctx(labels)).item() + 5
    with pytest.raises(GanzooError, match="needs the batch's labels and D's class logits"):
        loss.d_loss(real, fake, StepContext(None, None, None, "Dmain", d_real=DOutputs(real), d_fake=DOutputs(fake)))


def test_d_can_learn_the_classes_from_real_images_only():
    """fake_class_weight=0: D's class term is the real images' alone (a fake's class logits cost D nothing, so G
    cannot agree a code with D), while G is still asked for its class."""
    from ganzoo.api import DOutputs, StepContext
    labels = torch.tensor([0, 1, 2, 3])
    good, bad = torch.eye(4) * 10, torch.roll(torch.eye(4) * 10, 1, dims=1)   # class logits naming each label, or not
    zero = torch.zeros(4)
    ctx = lambda real_logits, fake_logits: StepContext(None, None, None, "Dmain", labels=labels,
                                                       d_real=DOutputs(zero, {"class_logits": real_logits}),
                                                       d_fake=DOutputs(zero, {"class_logits": fake_logits}))
    real_only, paper = ACGANLoss(fake_class_weight=0), ACGANLoss()
    assert real_only.d_loss(zero, zero, ctx(good, bad)).item() == pytest.approx(
        real_only.d_loss(zero, zero, ctx(good, good)).item())                 # the fakes' classes do not count
    assert paper.d_loss(zero, zero, ctx(good, bad)).item() > paper.d_loss(zero, zero, ctx(good, good)).item() + 10
    assert real_only.d_loss(zero, zero, ctx(bad, good)).item() > real_only.d_loss(zero, zero, ctx(good, good)).item() + 10
    assert real_only.g_loss(zero, ctx(good, bad)).item() > real_only.g_loss(zero, ctx(good, good)).item() + 5


def test_acgan_learns_to_classify_the_real_images(acgan):
    """A few steps on the fake dataset's quadrant classes: D's class head, trained only through the context's
    extras and labels, classifies real images far above chance."""
    batches = acgan.batches.labelled(acgan.data_rng)
    for _ in range(30):
        real, labels = next(batches)
        assert torch.isfinite(acgan.step(real, labels)).all()
    real, labels = next(batches)                                # a batch it has not stepped on
    with torch.no_grad():                                       # train mode: the batch's own BatchNorm statistics
        accuracy = (acgan.D(real)[1]["class_logits"].argmax(1) == labels).float().mean().item()
    assert accuracy > 0.6                                       # chance: 0.25


class TwoLogits(nn.Module):
    """A D that returns [B, 2]: what the trainer must refuse itself, not leave to the kit."""

    def __init__(self, *, image_size, channels, width):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2, image_size)

    def forward(self, x):
        return self.conv(x).flatten(1)


def test_the_trainer_refuses_a_d_whose_logits_are_not_one_per_image(monkeypatch, request, one_thread):
    install_plugin(monkeypatch, request, "ganzoo_two_logits",
                   register_discriminators=lambda register: register("two", TwoLogits),
                   register_models=lambda register: register("two", ModelSpec("dcgan", "two", "nonsaturating")))
    trainer = Trainer(make_config("two", dict(TINY)), fake())
    real, labels = next(trainer.batches.labelled(trainer.data_rng))
    with pytest.raises(GanzooError, match=r"^The discriminator 'two' returned shape \(32, 2\) for a batch of 32; "
                                          r"it must return \[32\] raw logits"):
        trainer.step(real, labels)
