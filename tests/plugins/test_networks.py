"""Every registered generator, discriminator, loss and model: shapes, range, gradients, one training step.

Parametrized over the registries, so a newly registered component is tested for free.
"""

import pytest
import torch

from ganzoo import GanzooError, RunConfig
from ganzoo.models import sample_latent
from ganzoo.plugins import registries
from ganzoo.data import load_dataset
from ganzoo.train import Trainer

from helpers import tiny_config

REGS = registries()
SIZES = [(32, 1), (32, 3), (64, 1), (64, 3), (128, 3)]


@pytest.mark.parametrize("size,channels", SIZES)
@pytest.mark.parametrize("name", [n for n in REGS.generators.names()       # conditional: the kit feeds labels
                                  if not REGS.generators.get(n).conditional])
def test_generator_shapes_and_range(name, size, channels):
    G = REGS.generators.get(name).factory(image_size=size, channels=channels, z_dim=16, width=8)
    z = torch.randn(3, 16) * 3
    x = G(z)
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    x.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters())


@pytest.mark.parametrize("size,channels", SIZES)
@pytest.mark.parametrize("name", [n for n in REGS.discriminators.names()     # conditional or with a class head:
                                  if not REGS.discriminators.get(n).takes_classes])   # the kit's checks
def test_discriminator_shapes_and_gradients(name, size, channels):
    D = REGS.discriminators.get(name).factory(image_size=size, channels=channels, width=8)
    x = torch.rand(3, channels, size, size, requires_grad=True) * 2 - 1
    logits = D(x)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())


# The exact values below are those of the log losses (Goodfellow et al.); every loss, installed plugins'
# included, gets the generic checks of the conformance kit (tests/test_conformance.py).
@pytest.mark.parametrize("name", [e.name for e in REGS.losses if e.plugin == "ganzoo_plugins.losses"])
def test_loss_values_on_logits(name):
    loss = REGS.losses.get(name).factory()
    confident_right = loss.d_loss(torch.full((4,), 20.0), torch.full((4,), -20.0))
    confident_wrong = loss.d_loss(torch.full((4,), -20.0), torch.full((4,), 20.0))
    assert confident_right < 1e-6 < 1.0 < confident_wrong                    # no saturation to NaN at large logits
    assert torch.isclose(loss.d_loss(torch.zeros(4), torch.zeros(4)), torch.tensor(2 * 0.6931), atol=1e-3)
    # G wants D(G(z)) to go up: its loss falls as the fake logit rises
    assert loss.g_loss(torch.full((4,), 2.0)) < loss.g_loss(torch.full((4,), -2.0))
    assert torch.isfinite(loss.g_loss(torch.full((4,), -100.0)))


@pytest.mark.parametrize("loss", REGS.losses.names())
@pytest.mark.parametrize("model", REGS.models.names())
def test_training_steps_change_weights_and_stay_finite(tmp_path, model, loss):
    config = tiny_config(tmp_path, model=model)
    config.loss = loss
    data = load_dataset("fake", root=None, split="train", image_size=config.image_size, channels=config.channels)
    trainer = Trainer(config, data)
    before = [p.detach().clone() for p in trainer.G.parameters()]
    if loss == "acgan" and not REGS.discriminators.get(config.discriminator).class_head:
        real, labels = next(trainer.batches.labelled(trainer.data_rng))   # ACGAN's loss needs D's class head
        with pytest.raises(GanzooError, match=r"^The acgan loss needs the batch's labels and D's class logits"):
            trainer.step(real, labels)
        return
    for real, labels in list(trainer.batches.labelled(trainer.data_rng))[:2 + config.n_critic]:   # G steps twice
        stats = trainer.step(real, labels)                            # (labels: for a conditional model)
    assert torch.isfinite(stats).all()
    assert len(stats) == len(trainer.step.stat_names) and trainer.step.stat_names[:2] == ["loss_d", "loss_g"]
    if not hasattr(trainer.step.loss.loss, "statistics"):                        # the default: D's probabilities
        assert trainer.step.stat_names[2:4] == ["d_real", "d_fake"] and 0 <= stats[2] <= 1 and 0 <= stats[3] <= 1
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.G.parameters()))


def test_latent_priors():
    z = sample_latent(20000, RunConfig(z_dim=4, latent="uniform"))
    assert z.min() >= -1 and z.max() <= 1 and abs(z.mean()) < 0.02
    z = sample_latent(20000, RunConfig(z_dim=4, latent="normal"))
    assert abs(z.std() - 1) < 0.02
