"""The plugin authors' trial re-done (tests/plugins/trial_packages.py, written from ganzoo.api alone): each
package installs, trains through the real step, and does what its paper says with no extra D pass."""

import ast
from pathlib import Path

import pytest
import torch

from helpers import fake_data, install_plugin, tiny_config
from ganzoo.train import Trainer

import trial_packages
from trial_packages import PACKAGES


def install(monkeypatch, request, package: str) -> None:
    plugin = PACKAGES[package]
    hooks = {name: getattr(plugin, name) for name in vars(plugin) if name.startswith("register_")}
    install_plugin(monkeypatch, request, f"trial_{package}", **hooks)


def test_the_trial_packages_import_nothing_of_ganzoo_but_its_documented_api():
    tree = ast.parse(Path(trial_packages.__file__).read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in modules if m and m.startswith("ganzoo")} == {"ganzoo.api"}


def d_passes(monkeypatch, trainer) -> list:
    """Every batch D is run on, from now on (the main passes and the context's)."""
    seen = []
    forward = trainer.D.forward
    monkeypatch.setattr(trainer.D, "forward", lambda x: (seen.append(x.shape[0]), forward(x))[1])
    return seen


def test_ragan_trains_from_the_main_pass_outputs_with_no_extra_d_pass(monkeypatch, request, tmp_path, one_thread):
    install(monkeypatch, request, "ragan")
    trainer = Trainer(tiny_config(tmp_path, model="trial-ragan"), fake_data())
    seen = d_passes(monkeypatch, trainer)
    for real in list(trainer.batches.epoch(trainer.data_rng))[:2]:
        assert torch.isfinite(trainer.step(real)).all()
    assert len(seen) == 6                                       # real, fake, fake for G per step: nothing more


def test_bcr_reuses_d_of_x_and_of_g_z_and_pulls_d_towards_consistency(monkeypatch, request, tmp_path, one_thread):
    install(monkeypatch, request, "bcr")
    trainer = Trainer(tiny_config(tmp_path, model="trial-bcr"), fake_data())
    reg, = trainer.step.regularizers
    assert (reg.name, reg.weight) == ("trial-bcr", 10.0)
    seen = d_passes(monkeypatch, trainer)
    penalties = []
    for real in list(trainer.batches.epoch(trainer.data_rng))[:6]:
        stats = trainer.step(real)
        penalties.append(stats[trainer.step.stat_names.index("trial-bcr")].item())
    assert len(seen) == 6 * 5                                   # the main three + two augmented: not four more
    assert all(p >= 0 and p == p for p in penalties) and penalties[0] > 0


def test_sagan_style_hinge_spectral_norm_ttur_and_ema(monkeypatch, request, tmp_path, one_thread):
    install(monkeypatch, request, "sagan")
    trainer = Trainer(tiny_config(tmp_path, model="trial-sagan"), fake_data())
    assert [o.param_groups[0]["lr"] for o in (trainer.step.opt_g, trainer.step.opt_d)] == [1e-4, 4e-4]
    assert trainer.step.opt_d.param_groups[0]["betas"] == (0.0, 0.9)
    assert any(torch.nn.utils.parametrize.is_parametrized(m) for m in trainer.D.modules())
    assert trainer.step.ema is not None and trainer.step.sampler is trainer.step.ema.G
    before = [p.clone() for p in trainer.step.ema.G.parameters()]
    for real in list(trainer.batches.epoch(trainer.data_rng))[:2]:
        assert torch.isfinite(trainer.step(real)).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.step.ema.G.parameters()))


def test_rmsprop_with_a_plugins_cosine_schedule(monkeypatch, request, tmp_path, one_thread):
    install(monkeypatch, request, "rmsprop_cosine")
    trainer = Trainer(tiny_config(tmp_path, model="trial-rmsprop-cosine"), fake_data())
    assert isinstance(trainer.step.opt_g, torch.optim.RMSprop) and isinstance(trainer.step.opt_d, torch.optim.RMSprop)
    total, lrs = trainer.total_steps, []
    for real in list(trainer.batches.epoch(trainer.data_rng))[:3]:
        trainer.step(real)
        lrs.append(trainer.step.opt_g.param_groups[0]["lr"])
        trainer.state.step += 1
    factor = trial_packages.half_cosine(total_steps=total)
    assert lrs == pytest.approx([1e-3 * factor(s) for s in range(3)]) and lrs[0] > lrs[2]
