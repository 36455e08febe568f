"""The conformance kit (ganzoo.testing), run over everything registered, and shown to catch broken plugins.

The first test is parametrized over the registries: every built-in generator, discriminator, loss and
model passes every check. The others install deliberately broken
plugins and assert that the kit fails them with a message saying what to fix.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganzoo import GanzooError, ModelSpec, PowersOfTwo
from ganzoo.plugins import BUILTIN_PLUGINS, registries
from ganzoo.registry import Entry, Registry, describe_sizes
from ganzoo.testing import CheckFailed, check_plugin, plugin_checks, registered_checks, sizes_to_check
from ganzoo_plugins.dcgan import DCGANDiscriminator, DCGANGenerator
from ganzoo_plugins.losses import NonSaturatingLoss

from helpers import MNIST_DIR
from helpers import install_plugin
from helpers import install, run_installed


def inception_weights_present() -> bool:
    from ganzoo_plugins.inception import weights_path

    try:
        return weights_path({}).is_file()
    except GanzooError:
        return False


INCEPTION_METRICS = ("fid", "kid", "prdc", "memorisation")      # on the FID Inception's features


# ganzoo's own components; an installed third-party plugin is checked by its own tests or `ganzoo check-plugin`
# (the example plugin's, once, in tests/test_example_plugin.py). The MNIST metrics score real MNIST.
@pytest.mark.parametrize("check", [c for c in registered_checks(data_dir=str(MNIST_DIR))
                                   if c.plugin in BUILTIN_PLUGINS], ids=str)
def test_every_builtin_component_conforms(check):
    if check.kind == "metric" and check.name in INCEPTION_METRICS and check.what != "contract" \
            and not inception_weights_present():
        # no Inception weights on this machine (they come from a download): the kit says so and how to get them
        with pytest.raises(CheckFailed, match="need the standard FID Inception weights on disk"):
            check.run()
        return
    check.run()


def test_checks_cover_every_registered_component():
    regs = registries()
    checked = {(c.kind, c.name) for c in registered_checks()}
    for kind in ("generator", "discriminator", "loss", "regularizer", "model", "dataset", "metric"):
        assert {(kind, n) for n in regs.by_kind(kind).names()} <= checked


def test_check_plugin_finds_builtins_by_short_name_and_returns_results():
    results = check_plugin("losses")
    assert {r.check.name for r in results} == {"minimax", "nonsaturating"}
    assert all(r.passed for r in results)
    assert {c.kind for c in plugin_checks("ganzoo_plugins.dcgan")} == {"generator", "discriminator", "model"}
    with pytest.raises(GanzooError, match="No plugin named 'nope' is installed"):
        plugin_checks("nope")


def test_image_sizes_declarations():
    assert [s for s in range(300) if s in PowersOfTwo(8)] == [8, 16, 32, 64, 128, 256]
    assert [s for s in range(300) if s in PowersOfTwo(4, 32)] == [4, 8, 16, 32]
    assert "power of two, at least 8" in describe_sizes(PowersOfTwo(8))
    assert describe_sizes((64, 32)) == "one of 32, 64" and describe_sizes(None) == "any size"
    entry = lambda sizes: Entry("x", object, "", "p", {} if sizes is None else {"image_sizes": sizes})  # noqa: E731
    assert sizes_to_check(entry(None)) == [8, 16, 28, 32, 64, 128]
    assert sizes_to_check(entry(PowersOfTwo(8))) == [8, 16, 32, 64, 128]
    assert sizes_to_check(entry((48, 96, 512))) == [48, 96]                  # declared, up to 256
    assert sizes_to_check(entry(range(8, 257, 4))) == [8, 16, 28, 32, 64, 128, 256]
    registry = Registry("generator")
    with pytest.raises(GanzooError, match="declares image_sizes='32'"):
        registry.register("bad", object, image_sizes="32", plugin="p")
    with pytest.raises(GanzooError, match="at least one positive int"):
        registry.register("bad", object, image_sizes=(), plugin="p")


def test_unsupported_image_size_is_refused_before_loading_data():
    from ganzoo.run import make_config

    with pytest.raises(GanzooError, match=r"generator 'dcgan' needs an image size that is a power of two.*got 48"):
        make_config("dcgan", {"data": "mnist", "image_size": 48})
    assert make_config("basicgan", {"data": "fake", "image_size": 28}).image_size == 28   # MLPs take any size


BROKEN = '''
import numpy as np
import torch
from torch import nn
from ganzoo import ModelSpec, hookimpl
from ganzoo_plugins.dcgan import DCGANGenerator


class NoTanh(nn.Module):
    """A generator whose outputs leave [-1, 1]."""
    def __init__(self, *, image_size, channels, z_dim, width):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        self.net = nn.Linear(z_dim, channels * image_size * image_size)
    def forward(self, z):
        return 10 * self.net(z).view(-1, *self.shape)


class NumpyNoise(NoTanh):
    """A generator that draws noise from numpy, out of reach of torch.manual_seed."""
    def forward(self, z):
        noise = torch.from_numpy(np.random.rand(*z.shape).astype("float32"))
        return torch.tanh(self.net(z + noise)).view(-1, *self.shape)


class TwoDimLogits(nn.Module):
    """A discriminator returning [B, 1] instead of [B]."""
    def __init__(self, *, image_size, channels, width):
        super().__init__()
        self.net = nn.Linear(channels * image_size * image_size, 1)
    def forward(self, x):
        return self.net(x.flatten(1))


class PythonState(TwoDimLogits):
    """A discriminator keeping state in a Python float, which no weights file holds."""
    def __init__(self, **kw):
        super().__init__(**kw)
        self.scale = 1.0
    def forward(self, x):
        if self.training:
            self.scale += 1.0
        return self.net(x.flatten(1)).flatten() * self.scale


class Swapped:
    """A loss with real and fake swapped."""
    def d_loss(self, real_logits, fake_logits):
        return nn.functional.softplus(real_logits).mean() + nn.functional.softplus(-fake_logits).mean()
    def g_loss(self, fake_logits):
        return nn.functional.softplus(-fake_logits).mean()


class NaiveLog:
    """A loss taking log(sigmoid(l)), which is -inf at large logits."""
    def d_loss(self, real_logits, fake_logits):
        return -(torch.log(torch.sigmoid(real_logits)) + torch.log(1 - torch.sigmoid(fake_logits))).mean()
    def g_loss(self, fake_logits):
        return -torch.log(torch.sigmoid(fake_logits)).mean()


@hookimpl
def register_generators(register):
    register("no-tanh", NoTanh, image_sizes=(12,))
    register("numpy-noise", NumpyNoise, image_sizes=(16,))
    register("undeclared-sizes", DCGANGenerator)    # builds powers of two only, but claims every size


@hookimpl
def register_discriminators(register):
    register("two-dim-logits", TwoDimLogits, image_sizes=(16,))
    register("python-state", PythonState, image_sizes=(16,))


@hookimpl
def register_losses(register):
    register("swapped", Swapped)
    register("naive-log", NaiveLog)


@hookimpl
def register_models(register):
    register("missing-loss", ModelSpec(generator="dcgan", discriminator="dcgan", loss="hnige"))
    register("no-common-size", ModelSpec(generator="no-tanh", discriminator="dcgan", loss="minimax"))
'''


@pytest.mark.slow
def test_kit_fails_broken_components_and_says_what_to_fix(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install(site, "ganzoo-broken-kit", "ganzoo_broken_kit", BROKEN)
    install(site, "ganzoo-unimportable", "ganzoo_unimportable", "import no_such_module_anywhere\n")
    result = run_installed(site, "check-plugin", "ganzoo-broken-kit", "ganzoo_unimportable")
    out = " ".join(result.stdout.split())                                 # undo the table's line wrapping
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    expected = [
        "generator 'no-tanh', shapes and range: generator 'no-tanh' at 12x12, 1 channel(s): outputs span",
        "images must lie in [-1, 1] (end forward() with tanh)",
        "generator 'undeclared-sizes', shapes and range: Building the generator 'undeclared-sizes' at 28x28, "
        "1 channel(s) failed: DCGAN needs an image size that is a power of two",
        "declare the supported ones with register(..., image_sizes=...)",
        "generator 'numpy-noise', deterministic under a seed:",
        "Draw every random number from torch's global RNG",
        "discriminator 'two-dim-logits', shapes: discriminator 'two-dim-logits' at 16x16, 1 channel(s): "
        "forward(x) in train mode returned shape (4, 1) for a batch of 4; it must return [4] raw logits",
        "discriminator 'python-state', safetensors round trip:",
        "keep all state that forward() reads in registered parameters and buffers",
        "loss 'swapped', direction: loss 'swapped': d_loss is",
        "Are real and fake swapped",
        "loss 'naive-log', extreme logits:",
        "never log(sigmoid(l))",
        "model 'missing-loss', components: model 'missing-loss': its ModelSpec names the loss 'hnige'",
        "model 'no-common-size', components: model 'no-common-size': its generator supports one of 12 and its "
        "discriminator a power of two, at least 8 (8, 16, 32, 64, ...): no image size both support.",
        "ganzoo_unimportable (ganzoo-unimportable, 1.2.3): failed to load: ModuleNotFoundError",
        "No module named 'no_such_module_anywhere'",
    ]
    for text in expected:
        assert text in out, text
    # exactly these checks fail, each named: what a broken component does not break still passes
    failed = set(re.findall(r"\d+\. (generator|discriminator|loss|model) '([^']+)', ([a-z0-9 ]+?):", out))
    assert failed == {
        ("generator", "no-tanh", "shapes and range"), ("generator", "undeclared-sizes", "shapes and range"),
        ("generator", "no-tanh", "training step fp32"), ("generator", "no-tanh", "training step bf16 autocast"),
        ("generator", "no-tanh", "gradients"),
        ("generator", "numpy-noise", "deterministic under a seed"), ("generator", "numpy-noise", "safetensors round trip"),
        # a [B, 1] D: every check that reads its output as the trainer does refuses it (ganzoo.recipe.d_outputs)
        *(("discriminator", "two-dim-logits", check) for check in (
            "shapes", "gradients", "deterministic under a seed", "responds to x", "safetensors round trip",
            "training step fp32", "training step bf16 autocast")),
        ("discriminator", "python-state", "safetensors round trip"), ("loss", "swapped", "direction"),
        ("loss", "naive-log", "extreme logits"), ("model", "missing-loss", "components"),
        ("model", "no-common-size", "components")}
    assert "ganzoo_broken_kit: 19 of 49 checks failed" in out


SWAPPED_ONLY = """
import torch.nn.functional as F
from ganzoo import hookimpl

class Swapped:
    \"\"\"A loss with real and fake swapped.\"\"\"
    def d_loss(self, real_logits, fake_logits):
        return F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()
    def g_loss(self, fake_logits):
        return F.softplus(fake_logits).mean()

@hookimpl
def register_losses(register):
    register("swapped", Swapped)
"""


@pytest.mark.slow
def test_pytest_api_raises_one_assertion_listing_every_failure(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install(site, "ganzoo-swapped", "ganzoo_swapped", SWAPPED_ONLY)
    code = ("from ganzoo.testing import check_plugin, CheckFailed\n"
            "try:\n    check_plugin('ganzoo-swapped')\n"
            "except CheckFailed as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(site)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "1 of 6 conformance checks of plugin 'ganzoo-swapped' failed:"
    assert lines[1].startswith("- loss 'swapped', direction: loss 'swapped': d_loss is 2.6265 when D is right "
                               "(real logits +1, fake -1) and 0.6265 when it is wrong")


# -- each check, on a component broken for exactly that check -----------------------------------------

class UnusedParameter(DCGANGenerator):
    """A generator with a parameter forward() never reads: it gets no gradient (the gradients check)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.forgotten = torch.nn.Parameter(torch.ones(3))


class NumpyInit(DCGANDiscriminator):
    """A discriminator that initialises a shift from numpy's RNG on its first training step (data-dependent
    init done wrong): each component check passes, but two runs with the same seed differ."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.register_buffer("shift", torch.zeros(()))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def forward(self, x):
        if self.training and torch.is_grad_enabled() and not self.initialised:
            self.shift.fill_(float(np.random.rand()))
            self.initialised.fill_(True)
        return super().forward(x) + self.shift


class RoundedReal(NonSaturatingLoss):
    """A loss that rounds the real logits: right direction, finite, but no gradient reaches them."""

    def d_loss(self, real_logits, fake_logits):
        return super().d_loss(real_logits.round(), fake_logits)


class LowPrecision(NonSaturatingLoss):
    """A loss summed by a matrix product with a large offset: under bf16 autocast the product runs in bf16."""

    def d_loss(self, real_logits, fake_logits):
        parts = torch.stack([F.softplus(-real_logits).mean(), F.softplus(fake_logits).mean()]) + 1000
        return parts @ torch.ones(2, device=parts.device) - 2000


class NumpyJitter(NonSaturatingLoss):
    """A loss with a little noise from numpy's RNG, out of reach of torch.manual_seed."""

    def d_loss(self, real_logits, fake_logits):
        return super().d_loss(real_logits, fake_logits) + 1e-3 * float(np.random.rand())


class Scheduled(NonSaturatingLoss):
    """A loss whose weight follows a schedule kept in a Python counter, advanced on every training call:
    a resumed run starts the schedule again (only the checkpoint round trip sees it)."""

    def __init__(self):
        super().__init__()           # the standard loss's own options (label smoothing, ...), where it has them
        self.calls = 0

    def d_loss(self, real_logits, fake_logits):
        self.calls += real_logits.requires_grad
        return super().d_loss(real_logits, fake_logits) * (1 + 0.1 * self.calls)


# kind, name -> the checks that must fail, and what their message says
TARGETS = {
    ("generator", "unused-parameter"): {"gradients": "['forgotten'] receive no gradient"},
    ("discriminator", "numpy-init"): {},
    ("loss", "rounded-real"): {"gradients": "no finite, non-zero gradient to the real logits"},
    ("loss", "low-precision"): {"bf16 autocast": "under bf16 autocast; compute it in float32"},
    ("loss", "numpy-jitter"): {"deterministic under a seed": "the same seed and logits give different values"},
    ("loss", "scheduled"): {},
    ("model", "lr-typo"): {"training step fp32": "two training steps in fp32 left the generator's weights unchanged",
                           "training step bf16 autocast": "steps in bf16 left the generator's weights unchanged"},
    ("model", "numpy-init-model"): {"deterministic under a seed": "two runs with the same seed differ"},
    ("model", "scheduled-loss"): {"checkpoint round trip": "a run resumed from its checkpoint took a different step"},
}


def test_each_check_fails_exactly_the_component_broken_for_it(monkeypatch, request):
    install_plugin(
        monkeypatch, request, "ganzoo_test_kit_targets",
        register_generators=lambda register: register("unused-parameter", UnusedParameter, image_sizes=(16,)),
        register_discriminators=lambda register: register("numpy-init", NumpyInit, image_sizes=(16,)),
        register_losses=lambda register: [register(name, cls) for name, cls in (
            ("rounded-real", RoundedReal), ("low-precision", LowPrecision), ("numpy-jitter", NumpyJitter),
            ("scheduled", Scheduled))],
        register_models=lambda register: [register(name, spec) for name, spec in (
            # a typo in a default learning rate (2e-40 for 2e-4): Adam's steps vanish in float32
            ("lr-typo", ModelSpec("mlp", "mlp", "nonsaturating", defaults={"lr": 2e-40})),
            ("numpy-init-model", ModelSpec("dcgan", "numpy-init", "nonsaturating")),
            ("scheduled-loss", ModelSpec("dcgan", "dcgan", "scheduled")))])
    failed = {}
    checks = plugin_checks("ganzoo_test_kit_targets")
    for check in checks:
        try:
            check.run()
        except CheckFailed as exc:
            failed[(check.kind, check.name, check.what)] = str(exc)
    assert {(c.kind, c.name) for c in checks} == set(TARGETS)
    expected = {(kind, name, what) for (kind, name), whats in TARGETS.items() for what in whats}
    assert set(failed) == expected, {k: v[:150] for k, v in failed.items()}
    for (kind, name, what), message in failed.items():
        assert TARGETS[kind, name][what] in message, message
