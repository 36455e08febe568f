"""A third-party plugin, installed through its entry point, whose components take options and whose loss and lazy
regulariser use the step context (with its own n_critic): trained with `ganzoo run`,
continued with `--resume`, sampled with `ganzoo sample`, each rebuilding the same networks from the saved options;
and, once the package is gone, its weights file names the package to install.

The package is written to a temporary folder and installed the way pip installs one in editable mode: its source on
the path and a .dist-info carrying its name, version and entry points.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from ganzoo.checkpoint import read_tensors

PACKAGE = '''
import torch
from torch import nn

from ganzoo import ModelSpec, hookimpl


class LayeredGenerator(nn.Module):
    """An MLP generator with `layers` hidden layers (an option)."""

    def __init__(self, *, image_size, channels, z_dim, width, layers=1):
        super().__init__()
        self.shape = (channels, image_size, image_size)
        blocks = [nn.Linear(z_dim, width), nn.ReLU()]
        for _ in range(layers - 1):
            blocks += [nn.Linear(width, width), nn.ReLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(width, channels * image_size * image_size), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(len(z), *self.shape)


class TargetLoss:
    """Least squares with targets a (fake), b (real) and c (G's)."""

    def __init__(self, a=0.0, b=1.0, c=1.0):
        self.a, self.b, self.c = a, b, c

    def d_loss(self, real_logits, fake_logits, context):
        assert context.phase == "Dmain" and context.real.shape == context.fake.shape
        return 0.5 * ((real_logits - self.b) ** 2).mean() + 0.5 * ((fake_logits - self.a) ** 2).mean()

    def g_loss(self, fake_logits):
        return 0.5 * ((fake_logits - self.c) ** 2).mean()


class FakeGradient:
    """A penalty on D's input gradient at the fakes: the step's context runs D and differentiates it."""

    def __call__(self, context):
        x = context.fake.detach().requires_grad_(True)
        return context.input_gradient(context.discriminate(x), x).square().mean()


@hookimpl
def register_regularizers(register):
    register("fakegrad", FakeGradient, weight=1.0, every=1)


@hookimpl
def register_generators(register):
    register("layered", LayeredGenerator)


@hookimpl
def register_losses(register):
    register("targets", TargetLoss, a=-1.0)


@hookimpl
def register_models(register):
    register("optioned", ModelSpec(generator="layered", discriminator="mlp", loss="targets",
                                   options={"generator": {"layers": 2}, "loss": {"c": 0.0}},
                                   defaults={"n_critic": 2, "regularizers": "fakegrad:1@2"}))
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    (folder / "ganzoo_optioned").mkdir()
    (folder / "ganzoo_optioned" / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    info = folder / "ganzoo_optioned-0.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ganzoo-optioned\nVersion: 0.2.0\n")
    (info / "entry_points.txt").write_text("[ganzoo]\noptioned = ganzoo_optioned\n")
    return str(folder)


def ganzoo(site, *args):
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    env.pop("GANZOO_STRICT_PLUGINS", None)
    if site:
        env["PYTHONPATH"] = site
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_options_survive_run_resume_and_sample(site, tmp_path):
    run = tmp_path / "run"
    tiny = ["--data", "fake", "--batch-size", "128", "--g-width", "8", "--d-width", "8", "--z-dim", "4",
            "--device", "cpu", "--samples", "4", "--log-every", "4", "--checkpoint-every", "4"]
    first = ganzoo(site, "run", "optioned", *tiny, "--epochs", "1", "--options", "generator.layers=3,loss.b=0.5",
                   "--out", str(run))
    assert first.returncode == 0, first.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["options"] == {"generator": {"layers": 3}, "loss": {"c": 0.0, "b": 0.5}}   # model's, then the run's
    _, metadata = read_tensors(run / "checkpoint.safetensors")
    assert json.loads(metadata["ganzoo.plugins"])["generator"] == {
        "name": "layered", "plugin": "optioned", "distribution": "ganzoo-optioned", "version": "0.2.0"}

    resumed = ganzoo(site, "run", "--resume", str(run), "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 12, 16]       # 8 steps an epoch, continued where it stopped
    # the plugin's own step: its lazy regulariser is logged under its name, G stepped every 2nd D step
    assert all(r["fakegrad"] > 0 for r in records)
    assert (saved["n_critic"], saved["regularizers"]) == (2, "fakegrad:1@2")
    assert json.loads((run / "config.json").read_text())["options"] == saved["options"]

    sample = ganzoo(site, "sample", str(run / "optioned.safetensors"), "-n", "4", "--out", str(tmp_path / "g.png"))
    assert sample.returncode == 0, sample.stderr
    assert (tmp_path / "g.png").is_file()
    # three hidden layers, as the run's option said: the generator file holds their weights
    tensors, _ = read_tensors(run / "optioned.safetensors")
    assert sorted(k for k in tensors if k.endswith(".weight")) == [f"G.net.{i}.weight" for i in (0, 2, 4, 6)]

    # the package uninstalled: the file names what to install instead of "Unknown generator"
    gone = ganzoo(None, "sample", str(run / "optioned.safetensors"), "-n", "4", "--out", str(tmp_path / "h.png"))
    assert gone.returncode == 1
    assert "pip install 'ganzoo-optioned==0.2.0'" in gone.stderr and "Unknown generator" not in gone.stderr


@pytest.mark.slow
def test_a_misspelled_option_stops_the_run_before_it_starts(site, tmp_path):
    result = ganzoo(site, "run", "optioned", "--data", "fake", "--options", "loss.bb=0.5", "--out",
                    str(tmp_path / "run"))
    assert result.returncode == 1
    assert "The loss 'targets' has no option 'bb'. Did you mean 'b'?" in result.stderr
    assert not (tmp_path / "run").exists()


def test_the_saved_options_are_the_ones_the_step_uses(monkeypatch, request, tmp_path):
    """The options a run saves (the model's, then the run's) rebuild a loss whose value the step logs: loss_D is
    1/2 E(D(x) - b)^2 + 1/2 E(D(G(z)) - a)^2 with b = 0.5 from the run, a = -1 from the registration."""
    from ganzoo import RunConfig
    from ganzoo.resolve import make_config
    from ganzoo.train import Trainer

    from helpers import fake_data, install_plugin

    namespace: dict = {}
    exec(textwrap.dedent(PACKAGE), namespace)                       # the package's hooks, loaded in this process
    install_plugin(monkeypatch, request, "ganzoo_optioned_here",
                   **{name: namespace[name] for name in ("register_regularizers", "register_generators",
                                                         "register_losses", "register_models")})
    made = make_config("optioned", {"data": "fake", "batch_size": 32, "g_width": 8, "d_width": 8, "z_dim": 4,
                                    "device": "cpu", "precision": "fp32",
                                    "options": {"generator": {"layers": 3}, "loss": {"b": 0.5}}})
    config = RunConfig.from_dict(json.loads(json.dumps(made.to_dict())))   # as config.json gives it back
    config.out = str(tmp_path / "run")
    assert config.options == {"generator": {"layers": 3}, "loss": {"c": 0.0, "b": 0.5}}
    trainer = Trainer(config, fake_data())
    logits = []
    trainer.D.register_forward_hook(lambda module, args, out: logits.append(out.detach().flatten()))
    stats = trainer.step(next(iter(trainer.batches.epoch(trainer.data_rng))))
    d_real, d_fake = logits[:2]
    expected = 0.5 * ((d_real - 0.5) ** 2).mean() + 0.5 * ((d_fake + 1.0) ** 2).mean()
    default = 0.5 * ((d_real - 1.0) ** 2).mean() + 0.5 * ((d_fake - 0.0) ** 2).mean()
    loss_d = stats[trainer.step.stat_names.index("loss_d")].item()
    assert loss_d == pytest.approx(expected.item(), rel=1e-5) and loss_d != pytest.approx(default.item(), rel=1e-3)
    # three hidden layers, as the run's option said
    assert sum(isinstance(m, torch.nn.Linear) for m in trainer.G.modules()) == 4
