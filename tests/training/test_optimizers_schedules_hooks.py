"""Optimisers, schedules and step hooks are plugin kinds (rows of the one kinds table): the built-ins register
through them, a plugin's are used by training, a schedule gets the run's length (or refuses a budget run), a step
hook runs after every optimiser step with its phase (WGAN's clipping), a stored config naming a plugin's schedule
is read by sample, eval and --resume, and a generator file samples without its training-only plugin.
Regularisers and augmentations take per-run options (--options regularizer.NAME.k=v, augment.NAME.k=v)."""

import math

import pytest
import torch

from helpers import fake_data, install_plugin, run_cli, tiny_config
from ganzoo import GanzooError
from ganzoo.kinds import BY_NAME
from ganzoo.plugins import registries
from ganzoo.recipe import make_schedule
from ganzoo.train import Trainer
from ganzoo_plugins.optimizers import cosine


def test_optimizers_schedules_and_step_hooks_are_rows_of_the_kinds_table_with_the_builtins_on_them():
    assert {"optimizer", "schedule", "step hook"} <= set(BY_NAME)
    regs = registries()
    assert {"adam", "rmsprop", "sgd"} <= set(regs.optimizers.names())
    assert {"constant", "linear", "cosine"} <= set(regs.schedules.names())
    assert "clip" in regs.step_hooks.names()
    assert all(regs.optimizers.get(n).plugin == "ganzoo_plugins.optimizers" for n in ("adam", "rmsprop", "sgd"))
    import ganzoo.config
    assert not hasattr(ganzoo.config, "OPTIMIZERS") and not hasattr(ganzoo.config, "SCHEDULES")


def test_cosine_warms_up_linearly_then_falls_to_the_floor_at_the_last_step():
    f = cosine(total_steps=100, warmup=0.1)
    assert [f(s) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert f(100) == pytest.approx(0.0, abs=1e-12)
    assert cosine(total_steps=100, warmup=0.0, floor=0.1)(100) == pytest.approx(0.1)


def test_a_schedule_that_needs_the_runs_length_refuses_a_budget_run_in_one_sentence(tmp_path):
    with pytest.raises(GanzooError, match=r"^--lr-schedule cosine needs the run's length in steps, and a --budget "
                                          r"run without --epochs has none: give --epochs\.$"):
        make_schedule("cosine", None, registries().schedules)
    assert make_schedule("constant", None, registries().schedules)(123) == 1.0
    with pytest.raises(GanzooError, match="give --epochs"):
        Trainer(tiny_config(tmp_path, lr_schedule="cosine", epochs=10 ** 6, budget=10.0), fake_data())


def test_the_step_sets_the_cosine_schedules_rate_from_the_runs_length(tmp_path, one_thread):
    trainer = Trainer(tiny_config(tmp_path, lr_schedule="cosine", optimizer_g="rmsprop", optimizer_d="rmsprop",
                                  lr=1e-3), fake_data())
    total = trainer.total_steps
    factor = cosine(total_steps=total)
    assert isinstance(trainer.step.opt_g, torch.optim.RMSprop)
    for s, real in enumerate(list(trainer.batches.epoch(trainer.data_rng))[:3]):
        trainer.step(real)
        assert trainer.step.opt_g.param_groups[0]["lr"] == pytest.approx(1e-3 * factor(s))
        trainer.state.step += 1


def test_wgan_clips_every_weight_of_d_after_each_of_its_steps_and_never_gs(tmp_path, one_thread, monkeypatch):
    trainer = Trainer(tiny_config(tmp_path, model="wgan"), fake_data())
    config = trainer.config
    assert (config.optimizer_g, config.optimizer_d, config.lr, config.n_critic, config.step_hooks) == \
        ("rmsprop", "rmsprop", 5e-5, 5, "clip")
    assert isinstance(trainer.step.opt_d, torch.optim.RMSprop) and trainer.step.opt_d.param_groups[0]["lr"] == 5e-5
    calls = []
    hook = trainer.step.step_hooks[0][1]
    trainer.step.step_hooks = [("clip", lambda phase, net: (calls.append((phase, net)), hook(phase, net)))]
    with torch.no_grad():
        for p in trainer.D.parameters():
            p.mul_(100)                                         # far outside [-0.01, 0.01]
    for real in list(trainer.batches.epoch(trainer.data_rng))[:5]:
        trainer.step(real)
    assert [(phase, net is trainer.D) for phase, net in calls] == [("Dmain", True)] * 5 + [("Gmain", False)]
    assert calls[-1][1] is trainer.G
    assert max(p.abs().max().item() for p in trainer.D.parameters()) <= 0.01
    assert max(p.abs().max().item() for p in trainer.G.parameters()) > 0.01      # G is left alone


class Halving:
    """A plugin's schedule: 1, 1/2, 1/4, ... per step."""

    def __init__(self, *, total_steps):
        pass

    def __call__(self, step):
        return 0.5 ** step


def sgd_plain(params, *, lr, betas):
    return torch.optim.SGD(list(params), lr=lr)


@pytest.fixture
def halving(monkeypatch, request):
    install_plugin(monkeypatch, request, "ganzoo_halving",
                   register_schedules=lambda register: register("halving", Halving),
                   register_optimizers=lambda register: register("plain-sgd", sgd_plain),
                   register_step_hooks=lambda register: register("noop", lambda: lambda phase, net: None))


@pytest.mark.slow
def test_a_plugins_optimizer_schedule_and_hook_train_and_its_run_resumes_samples_and_evaluates(
        halving, tmp_path, capsys, monkeypatch, request):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", "--data", "fake", "--batch-size", "32", "--g-width", "8",
                           "--d-width", "8", "--z-dim", "16", "--samples", "16", "--device", "cpu", "--epochs", "1",
                           "--lr-schedule", "halving", "--optimizer-d", "plain-sgd", "--step-hooks", "noop",
                           "--out", run)
    assert code == 0, err
    # --resume reads the stored config naming the plugin's schedule (plugins load before it is validated)
    code, _, err = run_cli(capsys, "run", "--resume", run, "--epochs", "2")
    assert code == 0, err
    code, _, err = run_cli(capsys, "sample", run / "dcgan.safetensors", "--out", tmp_path / "a.png", "-n", "4")
    assert code == 0 and (tmp_path / "a.png").is_file(), err

    # the plugin uninstalled: its schedule, optimiser and hook were training-only, so sampling and eval still work
    monkeypatch.undo()
    registries.cache_clear()
    request.addfinalizer(registries.cache_clear)
    assert "halving" not in registries().schedules
    code, _, err = run_cli(capsys, "sample", run / "dcgan.safetensors", "--out", tmp_path / "b.png", "-n", "4")
    assert code == 0 and (tmp_path / "b.png").is_file(), err
    code, _, err = run_cli(capsys, "eval", run / "dcgan.safetensors", "-n", "64", "--metrics", "mnist_score",
                           "--json", tmp_path / "e.json")
    assert code == 0, err
    # resuming needs them: the registry's sentence names what is missing
    code, _, err = run_cli(capsys, "run", "--resume", run, "--epochs", "3")
    assert code != 0 and "Unknown optimizer 'plain-sgd'. Known: adam, rmsprop, sgd." in err


class Scaled:
    """A regulariser with an option: scale * mean(D(real)^2)."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def __call__(self, context):
        return self.scale * context.discriminate(context.real).float().square().mean()


@pytest.fixture
def scaled(monkeypatch, request):
    install_plugin(monkeypatch, request, "ganzoo_scaled",
                   register_regularizers=lambda register: register("scaled", Scaled))


def test_regularizer_and_augment_options_reach_their_factories_and_are_checked(scaled, tmp_path):
    trainer = Trainer(tiny_config(tmp_path, regularizers="scaled,gp", augment="cutout",
                                  options={"regularizer.scaled": {"scale": 3.0}, "regularizer.gp": {"center": 0.0},
                                           "augment.cutout": {"ratio": 0.25}}), fake_data())
    scaled_reg, gp = trainer.step.regularizers
    assert scaled_reg.penalty.scale == 3.0 and gp.penalty.center == 0.0
    torch.manual_seed(0)
    x = torch.ones(2, 1, 32, 32)
    out = trainer.step.augment(x)
    assert (out == 0).float().mean().item() == pytest.approx(0.25 ** 2, abs=0.02)      # a 8x8 hole in 32x32
    with pytest.raises(GanzooError, match=r"The regularizer 'scaled' has no option 'scal'\..*scale"):
        tiny_config(tmp_path, regularizers="scaled", options={"regularizer.scaled": {"scal": 3.0}})
    with pytest.raises(GanzooError, match=r"options name 'regularizer.r1', and the run has no regularizer 'r1' "
                                          r"\(its --regularizers: scaled\)"):
        tiny_config(tmp_path, regularizers="scaled", options={"regularizer.r1": {"gamma": 1}})
    with pytest.raises(GanzooError, match=r"options name 'augment.color', and the run has no augment 'color'"):
        tiny_config(tmp_path, augment="cutout", options={"augment.color": {"x": 1}})


def test_options_text_names_a_regularizer_or_augmentation_by_name():
    from ganzoo.settings import parse_options
    assert parse_options("loss.a=-1,regularizer.gp.center=0,augment.cutout.ratio=0.25") == \
        {"loss": {"a": -1}, "regularizer.gp": {"center": 0}, "augment.cutout": {"ratio": 0.25}}
