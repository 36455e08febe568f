"""Components that cheat the conformance kit: each passed `ganzoo check-plugin` once, and each must now fail it.

Every cheat is written as a plugin author would write it, with the documented API only (`ganzoo.api`,
`build_component`), and registered through the plugin hooks into a temporary registry."""

import pytest
import torch
from torch import nn

from ganzoo.api import ModelSpec, build_component
from ganzoo.testing import CheckFailed, check_plugin, component_checks

from helpers import install_plugin


def run_all(kind, name):
    """{check name: None or its failure message}."""
    results = {}
    for check in component_checks(kind, name):
        try:
            check.run()
            results[check.what] = None
        except CheckFailed as exc:
            results[check.what] = str(exc)
    return results


class ZGenerator(nn.Module):
    """An MLP generator that sees `scale * z` (1: honest; 0: 0*z; 1e-6: a trace of z) beside a learned constant."""

    scale = 1.0

    def __init__(self, *, image_size, channels, z_dim, width):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        self.constant = nn.Parameter(torch.randn(z_dim))
        self.net = nn.Sequential(nn.Linear(z_dim, width), nn.ReLU(), nn.Linear(width, channels * image_size ** 2),
                                 nn.Tanh())

    def forward(self, z):
        return self.net(self.constant + self.scale * z).view(len(z), *self.shape)


class ZeroZ(ZGenerator):
    """Touches z only as 0*z: a finite (zero) gradient reaches z, one image comes out."""
    scale = 0.0


class TraceOfZ(ZGenerator):
    """Mixes in 1e-6 of z."""
    scale = 1e-6


class ScaledDCGAN(nn.Module):
    """DCGAN's discriminator with its logits scaled by `scale` (1e-6: D(x) = 0.5 for everything)."""

    scale = 1e-6

    def __init__(self, *, image_size, channels, width):
        super().__init__()
        self.d = build_component("discriminator", "dcgan", image_size=image_size, channels=channels, width=width)

    def forward(self, x):
        return self.d(x) * self.scale


class HonestDCGAN(ScaledDCGAN):
    scale = 1.0


class GreyAlways(ZGenerator):
    """Answers one channel whatever it is asked for (declares 1 and 3)."""

    def forward(self, z):
        return super().forward(z)[:, :1]


class NonSaturating:
    """The DCGAN loss; `cheat`: G's loss is right only on constant logits (the kit's old +-1 probes)."""

    cheat = False

    def d_loss(self, real_logits, fake_logits):
        return nn.functional.softplus(-real_logits).mean() + nn.functional.softplus(fake_logits).mean()

    def g_loss(self, fake_logits):
        honest = nn.functional.softplus(-fake_logits).mean()
        if self.cheat and fake_logits.std() > 0:          # any non-constant batch: pushes the wrong way
            return nn.functional.softplus(fake_logits).mean()
        return honest


class ConstantProbeCheat(NonSaturating):
    cheat = True


@pytest.fixture
def cheats(monkeypatch, request):
    install_plugin(monkeypatch, request, "ganzoo_kit_cheats",
                   register_generators=lambda register: (
                       register("honest-z", ZGenerator, image_sizes=(16,)),
                       register("zero-z", ZeroZ, image_sizes=(16,)),
                       register("trace-of-z", TraceOfZ, image_sizes=(16,)),
                       register("grey-always", GreyAlways, image_sizes=(16,))),
                   register_discriminators=lambda register: (
                       register("honest-dcgan", HonestDCGAN, image_sizes=(16,)),
                       register("dcgan-times-1e-6", ScaledDCGAN, image_sizes=(16,))),
                   register_losses=lambda register: (
                       register("honest-ns", NonSaturating),
                       register("constant-probe-cheat", ConstantProbeCheat)),
                   register_models=lambda register: register(
                       "half-half", ModelSpec(generator="trace-of-z", discriminator="dcgan-times-1e-6",
                                              loss="honest-ns", defaults={"image_size": 16})))


def test_the_honest_versions_pass_every_check(cheats):
    for kind, name in (("generator", "honest-z"), ("discriminator", "honest-dcgan"), ("loss", "honest-ns")):
        assert all(v is None for v in run_all(kind, name).values()), (name, run_all(kind, name))


@pytest.mark.parametrize("name", ["zero-z", "trace-of-z"])
def test_a_generator_that_ignores_z_fails(cheats, name):
    results = run_all("generator", name)
    failed = {what for what, message in results.items() if message}
    assert failed == {"responds to z"}, results          # it passes everything else: only this check sees it
    assert "G ignores z" in results["responds to z"]


def test_a_discriminator_scaled_to_nothing_fails(cheats):
    results = run_all("discriminator", "dcgan-times-1e-6")
    failed = {what for what, message in results.items() if message}
    assert failed == {"responds to x"}, results
    assert "D answers about 0.5 to everything" in results["responds to x"]


def test_a_g_loss_right_only_at_constant_logits_fails(cheats):
    results = run_all("loss", "constant-probe-cheat")
    failed = {what for what, message in results.items() if message}
    assert failed == {"direction"}, results
    assert "at N(0, 1) logits" in results["direction"] and "g_loss" in results["direction"]


def test_a_one_channel_output_is_never_broadcast_against_three_channels(cheats):
    """Every check that builds the 3-channel network fails: shapes, and the gradients and training steps too
    (whose objectives would otherwise broadcast [B, 1, S, S] against a [B, 3, S, S] target)."""
    results = run_all("generator", "grey-always")
    for what in ("shapes and range", "gradients", "training step fp32", "training step bf16 autocast"):
        assert results[what] and ("(4, 1, 16, 16)" in results[what] or "(8, 1, 16, 16)" in results[what]), \
            (what, results[what])


def test_the_plugin_of_a_model_built_from_the_cheats_fails_check_plugin(cheats):
    with pytest.raises(CheckFailed) as failure:
        check_plugin("ganzoo_kit_cheats")
    message = str(failure.value)
    for name in ("'trace-of-z', responds to z", "'dcgan-times-1e-6', responds to x",
                 "'constant-probe-cheat', direction"):
        assert name in message, message


# -- regularisers, augmentations and labellers are checked too ----------------------------------------------

def gradient_penalty():
    """WGAN-GP's penalty, from the step context alone."""
    def penalty(context):
        t = torch.rand(len(context.real), 1, 1, 1, device=context.real.device)
        x = (t * context.real + (1 - t) * context.fake).requires_grad_(True)
        grad = context.input_gradient(context.discriminate(x), x)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return penalty


def detached_penalty():
    """A penalty computed on D's detached outputs: adding it to D's loss trains nothing."""
    def penalty(context):
        return context.discriminate(context.real).detach().pow(2).mean()
    return penalty


def flip(x):
    return torch.where(torch.rand(len(x), 1, 1, 1, device=x.device) < 0.5, x, x.flip(3))


def crop(x):
    return x[..., 1:-1, 1:-1]                                   # a smaller image: D would see another size


def numpy_noise(x):
    import numpy as np
    return x + torch.from_numpy(np.random.normal(0, 0.1, x.shape)).to(x)


def quantise(x):
    return (x * 8).round() / 8                                  # no gradient: G learns nothing through D


@pytest.fixture
def pieces(monkeypatch, request):
    install_plugin(monkeypatch, request, "ganzoo_kit_pieces",
                   register_regularizers=lambda register: (register("my-gp", gradient_penalty),
                                                           register("detached", detached_penalty)),
                   register_augmentations=lambda register: (register("my-flip", flip), register("crop", crop),
                                                            register("numpy-noise", numpy_noise),
                                                            register("quantise", quantise)),
                   register_labellers=lambda register: (register("needs-two", lambda context, extra: None)))


def test_regularisers_are_checked(pieces):
    assert all(v is None for v in run_all("regularizer", "my-gp").values()), run_all("regularizer", "my-gp")
    detached = run_all("regularizer", "detached")
    assert detached["penalty trains D"] and "no gradient" in detached["penalty trains D"], detached


def test_augmentations_are_checked(pieces):
    assert all(v is None for v in run_all("augmentation", "my-flip").values()), run_all("augmentation", "my-flip")
    assert "keep the shape" in run_all("augmentation", "crop")["shape and gradient"]
    assert "torch's global RNG" in run_all("augmentation", "numpy-noise")["deterministic under a seed"]
    assert "no finite, non-zero gradient reaches x" in run_all("augmentation", "quantise")["shape and gradient"]


def test_labellers_are_checked_for_their_contract(pieces):
    assert "breaks the labeller contract" in run_all("labeller", "needs-two")["contract"]


def test_check_plugin_names_every_checked_kind_and_suggests_a_plugin_name(capsys):
    from ganzoo.cli import main
    from ganzoo.kinds import KINDS
    with pytest.raises(SystemExit):
        main(["check-plugin", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for kind in KINDS:
        if kind.checked:
            assert kind.plural in text, kind.plural
    assert {"datasets", "metrics", "regularizers", "augmentations", "labellers"} <= {k.plural for k in KINDS
                                                                                     if k.checked}
    assert main(["check-plugin", "dcgn"]) == 1
    assert "Did you mean 'dcgan'?" in capsys.readouterr().err
