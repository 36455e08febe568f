"""The plugin contract: register()'s options reach the factory and are checked, a run's options are saved and
rebuild the same networks, contracts are checked before any data loads, registries() refuses re-entry from a
hook, and a weights file names the package that made its components."""

import json
import types

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo import GanzooError, ModelSpec, hookimpl
from ganzoo.checkpoint import load_generator, read_tensors
from ganzoo.cli import main
from ganzoo.plugins import PluginInfo, collect, make_plugin_manager, registries
from ganzoo.run import make_config

from helpers import install_plugin


class ShiftedLoss:
    """Least squares with targets a (fake) and b (real) for D, c for G: LSGAN's a, b, c."""

    def __init__(self, a=0.0, b=1.0, c=1.0):
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real_logits, fake_logits):
        return 0.5 * ((real_logits - self.b) ** 2).mean() + 0.5 * ((fake_logits - self.a) ** 2).mean()

    def g_loss(self, fake_logits):
        return 0.5 * ((fake_logits - self.c) ** 2).mean()


class DeepMLP(nn.Module):
    """An MLP generator whose hidden layer count is an option."""

    def __init__(self, *, image_size, channels, z_dim, width, layers=1):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        blocks = [nn.Linear(z_dim, width), nn.ReLU()]
        for _ in range(layers - 1):
            blocks += [nn.Linear(width, width), nn.ReLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(width, channels * image_size * image_size), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(len(z), *self.shape)


def collect_one(**hooks):
    """What one third-party plugin made of `hooks` registers (or the error that disabled it)."""
    module = types.ModuleType("contract_probe")
    for hook, function in hooks.items():
        setattr(module, hook, hookimpl(function))
    pm = make_plugin_manager()
    pm.register(module, name="probe")
    regs = collect(pm, [PluginInfo("probe", "0", "docs")])
    return regs, {p.name: p for p in regs.plugins}["probe"]


# -- register(name, factory, **options) ---------------------------------------------------------------

def test_register_options_reach_the_factory():
    regs, info = collect_one(register_losses=lambda register: register("ls-m101", ShiftedLoss, a=-1.0))
    assert info.error is None
    entry = regs.losses.get("ls-m101")
    assert entry.options == {"a": -1.0}
    loss = entry.factory()
    assert (loss.a, loss.b, loss.c) == (-1.0, 1.0, 1.0)
    # D's loss on fake logits of -1 is zero only with a = -1
    assert loss.d_loss(torch.ones(4), -torch.ones(4)).item() == 0.0
    assert entry.description.startswith("Least squares with targets")     # the class's own docstring


def test_register_refuses_an_unknown_option_with_the_closest_name():
    _, info = collect_one(register_losses=lambda register: register("ls-m101", ShiftedLoss, aa=-1.0))
    assert info.error and "'aa'" in info.error and "Did you mean 'a'?" in info.error


def test_register_refuses_a_misspelled_declaration():
    _, info = collect_one(register_generators=lambda register: register("deep", DeepMLP, image_size=(8, 16)))
    assert info.error and "'image_size'" in info.error and "Did you mean 'image_sizes'?" in info.error
    assert "ganzoo passes its factory itself" in info.error


def test_register_validates_channel_counts():
    _, info = collect_one(register_generators=lambda register: register("deep", DeepMLP, channel_counts=(2,)))
    assert info.error and "channel_counts" in info.error


# -- options from a ModelSpec and the run, saved and rebuilt -------------------------------------------

@pytest.fixture
def optioned(monkeypatch, request):
    install_plugin(monkeypatch, request, "ganzoo_contract_probe",
                   register_generators=lambda register: register("deep", DeepMLP),
                   register_losses=lambda register: register("shifted", ShiftedLoss, a=-1.0),
                   register_models=lambda register: register(
                       "deep-ls", ModelSpec(generator="deep", discriminator="mlp", loss="shifted",
                                            options={"generator": {"layers": 2}, "loss": {"b": 2.0}})))


TINY = dict(data="fake", batch_size=32, g_width=8, d_width=8, z_dim=4, epochs=1, device="cpu", samples=4,
            log_every=1)


def test_model_options_and_run_options_merge_name_by_name(optioned):
    config = make_config("deep-ls", dict(TINY, options={"loss": {"c": 0.5}}))
    assert config.options == {"generator": {"layers": 2}, "loss": {"b": 2.0, "c": 0.5}}
    from ganzoo.models import build_generator, build_loss
    loss = build_loss(config)
    assert (loss.a, loss.b, loss.c) == (-1.0, 2.0, 0.5)          # registration, ModelSpec, run
    assert len(build_generator(config).net) == 6                  # two hidden layers


def test_a_misspelled_run_option_is_refused_with_a_sentence(optioned):
    with pytest.raises(GanzooError, match=r"The loss 'shifted' has no option 'cc'\. Did you mean 'c'\?"):
        make_config("deep-ls", dict(TINY, options={"loss": {"cc": 0.5}}))
    with pytest.raises(GanzooError, match=r"no component of a run\. Did you mean 'loss'\?"):
        make_config("deep-ls", dict(TINY, options={"los": {"c": 0.5}}))


def test_options_flag_trains_saves_and_rebuilds(optioned, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "deep-ls", "--data", "fake", "--batch-size", "256", "--g-width", "8", "--d-width", "8",
                 "--z-dim", "4", "--epochs", "1", "--device", "cpu", "--samples", "4",
                 "--options", "generator.layers=3,loss.c=0.5", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["options"] == {"generator": {"layers": 3}, "loss": {"b": 2.0, "c": 0.5}}
    G, config = load_generator(out / "deep-ls.safetensors")          # as `ganzoo sample` does
    assert config.options["generator"] == {"layers": 3} and len(G.net) == 8
    capsys.readouterr()
    assert main(["run", "deep-ls", "--data", "fake", "--options", "generator.layrs=3", "--out",
                 str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert "has no option 'layrs'" in err and "Did you mean 'layers'?" in err
    assert not (tmp_path / "bad").exists()


# -- contracts checked before the data loads -------------------------------------------------------------

class NoWidthGenerator(nn.Module):
    def __init__(self, *, image_size, channels, z_dim):            # no width: breaks the generator contract
        super().__init__()
        self.net = nn.Linear(z_dim, channels * image_size * image_size)

    def forward(self, z):
        return self.net(z)


class TwoInputDiscriminator(nn.Module):
    def __init__(self, *, image_size, channels, width):
        super().__init__()
        self.net = nn.Linear(channels * image_size * image_size, 1)

    def forward(self, x, labels):                                  # needs two inputs: breaks the contract
        return self.net(x.flatten(1)).flatten()


class OneArgumentLoss:
    def d_loss(self, logits):
        return logits.mean()

    def g_loss(self, fake_logits):
        return fake_logits.mean()


@pytest.mark.parametrize("broken, message", [
    ("generator", r"breaks the generator contract, factory\(\*, image_size, channels, z_dim, width\).*width"),
    ("discriminator", r"breaks the discriminator contract: forward\(x\) takes one .* forward\(x, labels\)"),
    ("loss", r"breaks the loss contract: d_loss\(real_logits, fake_logits\[, context\]\), but its d_loss is "
             r"d_loss\(logits\)"),
])
def test_a_broken_contract_is_named_before_any_data_loads(monkeypatch, request, tmp_path, capsys, broken, message):
    install_plugin(monkeypatch, request, "ganzoo_contract_broken",
                   register_generators=lambda register: register("nowidth", NoWidthGenerator),
                   register_discriminators=lambda register: register("twoinput", TwoInputDiscriminator),
                   register_losses=lambda register: register("oneargument", OneArgumentLoss))
    components = {"generator": "mlp", "discriminator": "mlp", "loss": "nonsaturating"}
    components[broken] = {"generator": "nowidth", "discriminator": "twoinput", "loss": "oneargument"}[broken]
    loaded = []
    import ganzoo.run
    monkeypatch.setattr(ganzoo.run, "load_dataset", lambda *a, **k: loaded.append(1))
    args = ["run", "basicgan", "--data", "fake", "--device", "cpu", "--out", str(tmp_path / "run")]
    for role, name in components.items():
        args += [f"--{role}", name]
    assert main(args) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "internal error" not in err
    import re
    assert re.search(message, err), err
    assert not loaded


# -- building a registered component from a plugin --------------------------------------------------------

def test_registries_from_inside_a_hook_is_refused_with_the_alternative(monkeypatch, request):
    calls = []

    def register_discriminators(register):
        calls.append(1)
        registries()                                               # the mistake the issue describes

    module = types.ModuleType("ganzoo_reentrant")
    module.register_discriminators = hookimpl(register_discriminators)
    import sys
    from ganzoo import plugins
    monkeypatch.setitem(sys.modules, "ganzoo_reentrant", module)
    monkeypatch.setattr(plugins, "BUILTIN_PLUGINS", plugins.BUILTIN_PLUGINS + ("ganzoo_reentrant",))
    plugins.registries.cache_clear()
    request.addfinalizer(plugins.registries.cache_clear)
    with pytest.raises(GanzooError, match=r"while plugins are still loading.*ganzoo\.build_component"):
        registries()
    assert calls == [1]                                             # loaded once, not re-entered


def test_build_component_reuses_a_registered_network_from_a_factory(monkeypatch, request):
    class Halved(nn.Module):
        """dcgan's discriminator, its logits halved: a wrapper built from the registered one."""

        def __init__(self, **arguments):
            super().__init__()
            self.inner = ganzoo.build_component("discriminator", "dcgan", **arguments)

        def forward(self, x):
            return self.inner(x) / 2

    install_plugin(monkeypatch, request, "ganzoo_contract_wrapper",
                   register_discriminators=lambda register: register("halved", Halved))
    from ganzoo.models import build_component
    D = build_component("discriminator", "halved", image_size=32, channels=1, width=8)
    inner = D.inner.eval()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.equal(D.eval()(x), inner(x) / 2)
    with pytest.raises(GanzooError, match=r"has no option 'widht'\. Did you mean 'width'\?|Unknown"):
        build_component("discriminator", "dcgan", image_size=32, channels=1, widht=8)
    with pytest.raises(GanzooError, match=r"Did you mean 'discriminator'\?"):
        build_component("discriminators", "dcgan")


# -- provenance -----------------------------------------------------------------------------------------

def test_weights_files_record_the_plugin_and_name_the_package_when_it_is_missing(monkeypatch, request, tmp_path):
    install_plugin(monkeypatch, request, "ganzoo_contract_probe",
                   register_generators=lambda register: register("deep", DeepMLP))
    out = tmp_path / "run"
    assert main(["run", "basicgan", "--generator", "deep", "--data", "fake", "--batch-size", "256", "--g-width", "8",
                 "--d-width", "8", "--z-dim", "4", "--epochs", "1", "--device", "cpu", "--samples", "4",
                 "--out", str(out)]) == 0
    _, metadata = read_tensors(out / "basicgan.safetensors")
    made_by = json.loads(metadata["ganzoo.plugins"])
    assert made_by["discriminator"] == {"name": "mlp", "plugin": "ganzoo_plugins.basicgan",
                                        "distribution": ganzoo.DISTRIBUTION,
                                        "version": made_by["discriminator"]["version"]}
    assert made_by["generator"]["plugin"] == "ganzoo_contract_probe"
    # as a third-party plugin from a package: record it so, then "uninstall" it
    from ganzoo import plugins
    info = next(p for p in registries().plugins if p.name == "ganzoo_contract_probe")
    monkeypatch.setattr(info, "source", "ganzoo-deep")
    monkeypatch.setattr(info, "version", "0.3.0")
    assert main(["run", "basicgan", "--generator", "deep", "--data", "fake", "--batch-size", "256", "--g-width", "8",
                 "--d-width", "8", "--z-dim", "4", "--epochs", "1", "--device", "cpu", "--samples", "4",
                 "--out", str(out), "--overwrite"]) == 0
    monkeypatch.setattr(plugins, "BUILTIN_PLUGINS", tuple(p for p in plugins.BUILTIN_PLUGINS
                                                           if p != "ganzoo_contract_probe"))
    plugins.registries.cache_clear()
    with pytest.raises(GanzooError, match=r"generator 'deep' of the plugin 'ganzoo_contract_probe' from the package "
                                          r"ganzoo-deep 0\.3\.0, which is not installed here; install it "
                                          r"\(pip install 'ganzoo-deep==0\.3\.0'\)"):
        load_generator(out / "basicgan.safetensors")
    with pytest.raises(GanzooError, match=r"pip install 'ganzoo-deep==0\.3\.0'"):
        from ganzoo.run import resume_config
        resume_config(out)


def test_list_names_each_components_options(optioned, capsys):
    capsys.readouterr()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    deep = next(line for line in out.splitlines() if line.startswith("│ deep "))
    shifted = next(line for line in out.splitlines() if line.startswith("│ shifted "))
    assert "layers=1" in deep and "a=-1.0, b=1.0, c=1.0" in shifted      # the registration's a=-1.0 shown
