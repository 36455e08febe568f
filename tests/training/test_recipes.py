"""Training recipes (ganzoo.recipe and the built-in models on it): each property checked against a closed
form or a hand computation, and every built-in recipe resumed bit for bit on the CPU."""

import math

import pytest
import torch
from torch import nn

from ganzoo import GanzooError
from ganzoo.compare.results import d_collapsed
from ganzoo.config import UNLIMITED_EPOCHS
from ganzoo.checkpoint import load_generator, read_tensors
from ganzoo.plugins import BUILTIN_PLUGINS, registries
from ganzoo.recipe import EMA, StepContext, parse_regularizers
from ganzoo.registry import Entry
from ganzoo.run import make_config, train
from ganzoo.train import Trainer, read_metrics
from ganzoo_plugins.diffaugment import cutout, translation
from ganzoo_plugins.lsgan import LeastSquaresLoss
from ganzoo_plugins.losses import NonSaturatingLoss
from ganzoo_plugins.r1 import R1, R2
from ganzoo_plugins.wgangp import GradientPenalty

from helpers import fake_data, stop_at, tiny_config

REGS = registries()
RECIPES = sorted(e.name for e in REGS.models if e.plugin in BUILTIN_PLUGINS)


def context_for(D, real, fake):
    return StepContext(D, real, fake, "Dmain")


class Linear(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


class Quadratic(nn.Module):
    """D(x) = c/2 ||x||^2: its input gradient is c x."""

    def __init__(self, c):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x):
        return 0.5 * self.c * x.flatten(1).square().sum(1)


# -- gradient penalty, R1, R2 -------------------------------------------------------------------------

def test_gradient_penalty_is_zero_for_a_unit_norm_input_gradient():
    w = torch.randn(1, 3, 8, 8)
    D = Linear(w / w.norm())
    real, fake = torch.randn(5, 3, 8, 8), torch.randn(5, 3, 8, 8)
    assert GradientPenalty()(context_for(D, real, fake)).item() == pytest.approx(0.0, abs=1e-10)
    D2 = Linear(2 * w / w.norm())                                           # norm 2: penalty (2 - 1)^2 = 1
    assert GradientPenalty()(context_for(D2, real, fake)).item() == pytest.approx(1.0, rel=1e-5)


def test_gradient_penalty_matches_a_hand_computation_with_one_epsilon_per_sample():
    D = Quadratic(1.0)
    real, fake = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4)
    torch.manual_seed(3)
    gp = GradientPenalty()(context_for(D, real, fake))
    torch.manual_seed(3)
    eps = torch.rand(6, 1, 1, 1)                                            # one epsilon per sample
    mixed = eps * real + (1 - eps) * fake                                   # grad of ||x||^2/2 is x itself
    expected = ((mixed.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)
    shared = eps[:1] * real + (1 - eps[:1]) * fake                          # one epsilon for the batch differs
    assert gp.item() != pytest.approx(((shared.flatten(1).norm(dim=1) - 1) ** 2).mean().item(), rel=1e-3)
    gp.backward()
    assert D.c.grad is not None and D.c.grad != 0                            # the penalty trains D


def test_r1_and_r2_equal_the_closed_form_for_a_quadratic_discriminator():
    c = 0.7
    real, fake = torch.randn(4, 1, 6, 6), torch.randn(4, 1, 6, 6)
    for reg, images in ((R1(), real), (R2(), fake)):
        D = Quadratic(c)
        value = reg(context_for(D, real, fake))
        expected = 0.5 * c ** 2 * images.flatten(1).square().sum(1).mean()   # 1/2 E||c x||^2
        assert value.item() == pytest.approx(expected.item(), rel=1e-5)
        value.backward()
        assert D.c.grad.item() == pytest.approx((c * images.flatten(1).square().sum(1).mean()).item(), rel=1e-5)


def test_regularizer_specs_parse_and_refuse_with_a_sentence():
    assert parse_regularizers("gp:10, r1:0.1@16,r2") == [("gp", 10.0, None), ("r1", 0.1, 16), ("r2", None, None)]
    for bad in ("gp:x", "r1@0", "gp:-1", "a b"):
        with pytest.raises(GanzooError, match="NAME\\[:WEIGHT\\]\\[@EVERY\\]"):
            parse_regularizers(bad)
    with pytest.raises(GanzooError, match="Unknown regularizer 'r3'"):
        make_config("dcgan", dict(data="fake", regularizers="r3"))


# -- the schedule of updates ----------------------------------------------------------------------------

def count_steps(trainer):
    order = []
    for name, opt in (("D", trainer.step.opt_d), ("G", trainer.step.opt_g)):
        real_step = opt.step

        def step(*args, _name=name, _real=real_step, **kwargs):
            order.append(_name)
            return _real(*args, **kwargs)
        opt.step = step
    return order


def test_n_critic_5_steps_d_exactly_5_times_per_g_step_each_on_a_fresh_batch(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, model="wgangp"), fake_data())
    assert trainer.config.n_critic == 5
    order = count_steps(trainer)
    seen = []
    real_judge = trainer.step.judge                     # every D pass: the main ones and the context's
    trainer.step.judge = lambda x, labels=None: (seen.append(x), real_judge(x, labels))[1]
    batches = list(trainer.batches.epoch(trainer.data_rng))[:10]
    for real in batches:
        trainer.step(real)
    assert order == (["D"] * 5 + ["G"]) * 2
    assert {i for x in seen for i, b in enumerate(batches) if x is b} == set(range(10))  # a fresh batch each


def test_lazy_regularisation_has_its_own_d_update_every_k_steps_with_rescaled_lr_and_betas(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, model="r1"), fake_data())
    reg, = trainer.step.regularizers
    assert (reg.name, reg.weight, reg.every) == ("r1", 0.1, 16)
    assert [(p.name, p.every, p.at) for p in trainer.step.phases] == [("Dmain", 1, 0), ("Dreg", 16, 0), ("Gmain", 1, 0)]
    ratio = 16 / 17
    group = trainer.step.opt_d.param_groups[0]
    assert group["lr"] == pytest.approx(2e-4 * ratio) and group["betas"] == pytest.approx((0.5 ** ratio,
                                                                                         0.999 ** ratio))
    assert trainer.step.opt_g.param_groups[0]["lr"] == 2e-4
    assert trainer.step.opt_g.param_groups[0]["betas"] == (0.5, 0.999)
    order = count_steps(trainer)
    for real in list(trainer.batches.epoch(trainer.data_rng))[:17]:
        trainer.step(real)
        assert trainer.step.opt_d.param_groups[0]["lr"] == pytest.approx(2e-4 * ratio)   # the ratio, applied once
    # step 0 and step 16: D main, D reg, G main; other steps D main, G main
    assert order == ["D", "D", "G"] + ["D", "G"] * 15 + ["D", "D", "G"]


def test_per_network_optimisers_carry_their_declared_settings(tmp_path):
    config = tiny_config(tmp_path, optimizer_g="rmsprop", optimizer_d="sgd", lr_g=1e-3, lr_d=3e-4, beta1=0.25,
                         beta2=0.75)
    trainer = Trainer(config, fake_data())
    assert isinstance(trainer.step.opt_g, torch.optim.RMSprop) and isinstance(trainer.step.opt_d, torch.optim.SGD)
    assert trainer.step.opt_g.param_groups[0]["lr"] == 1e-3 and trainer.step.opt_g.param_groups[0]["alpha"] == 0.75
    assert trainer.step.opt_d.param_groups[0]["lr"] == 3e-4 and trainer.step.opt_d.param_groups[0]["momentum"] == 0.25
    trainer.step(next(trainer.batches.epoch(trainer.data_rng)))       # the step keeps them
    assert trainer.step.opt_g.param_groups[0]["lr"] == 1e-3 and trainer.step.opt_d.param_groups[0]["lr"] == 3e-4

    ttur = Trainer(tiny_config(tmp_path / "ttur", model="dcgan-ttur-ema"), fake_data())
    assert [o.param_groups[0]["lr"] for o in (ttur.step.opt_g, ttur.step.opt_d)] == [1e-4, 4e-4]
    assert all(isinstance(o, torch.optim.Adam) and o.param_groups[0]["betas"] == (0.5, 0.999)
               for o in (ttur.step.opt_g, ttur.step.opt_d))
    both = Trainer(tiny_config(tmp_path / "both", model="dcgan-ttur-ema", lr=1e-3), fake_data())  # --lr sets both
    assert [o.param_groups[0]["lr"] for o in (both.step.opt_g, both.step.opt_d)] == [1e-3, 1e-3]
    wgan = Trainer(tiny_config(tmp_path / "wgan", model="wgangp"), fake_data())
    assert all(o.param_groups[0]["lr"] == 1e-4 and o.param_groups[0]["betas"] == (0.0, 0.9)
               for o in (wgan.step.opt_g, wgan.step.opt_d))

    # betas per network: --betas-d for D alone; --beta1/--beta2 for a network without its own pair
    own = Trainer(tiny_config(tmp_path / "own", betas_d="0,0.9"), fake_data())
    assert [o.param_groups[0]["betas"] for o in (own.step.opt_g, own.step.opt_d)] == [(0.5, 0.999), (0.0, 0.9)]
    reset = Trainer(tiny_config(tmp_path / "reset", beta1=0.3, betas_g="0.1,0.2"), fake_data())
    assert [o.param_groups[0]["betas"] for o in (reset.step.opt_g, reset.step.opt_d)] == [(0.1, 0.2), (0.3, 0.999)]


@pytest.mark.slow
def test_linear_schedule_decays_to_zero_at_the_last_step(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, lr_schedule="linear", lr_g=1e-3), fake_data())
    total = trainer.total_steps
    assert total == 32
    seen = []
    for real in trainer.batches.epoch(trainer.data_rng):
        trainer.step(real)
        seen.append((trainer.step.opt_g.param_groups[0]["lr"], trainer.step.opt_d.param_groups[0]["lr"]))
        trainer.state.step += 1
    assert seen[0] == (1e-3, 2e-4)
    for s, (lr_g, lr_d) in enumerate(seen):
        assert lr_g == pytest.approx(1e-3 * (1 - s / total)) and lr_d == pytest.approx(2e-4 * (1 - s / total))
    with pytest.raises(GanzooError, match="give --epochs"):
        Trainer(tiny_config(tmp_path / "b", lr_schedule="linear", epochs=UNLIMITED_EPOCHS,
                                    budget=10.0), fake_data())


# -- the averaged generator -----------------------------------------------------------------------------

def test_ema_equals_the_closed_form_average_after_k_steps(tmp_path):
    G = nn.Linear(3, 2)
    ema = EMA(G, 0.5)
    weights = [G.weight.detach().clone()]
    for k in range(5):                                                      # past the ramp: decay 0.5 throughout
        with torch.no_grad():
            G.weight.add_(torch.randn_like(G.weight))
        weights.append(G.weight.detach().clone())
        ema.update(G, updates=100 + k)
    k = 5
    closed = 0.5 ** k * weights[0] + sum((1 - 0.5) * 0.5 ** (k - t) * weights[t] for t in range(1, k + 1))
    assert torch.allclose(ema.G.weight, closed, atol=1e-6)

    # in training: the ramped decays min(0.999, (1 + n)/(10 + n)), one update per G step
    trainer = Trainer(tiny_config(tmp_path, model="dcgan-ttur-ema"), fake_data())
    name = "net.0.weight"
    history = [trainer.G.state_dict()[name].clone()]
    for real in list(trainer.batches.epoch(trainer.data_rng))[:4]:
        trainer.step(real)
        history.append(trainer.G.state_dict()[name].clone())
    decays = [min(0.999, (1 + n) / (10 + n)) for n in range(4)]
    closed = math.prod(decays) * history[0]
    for t in range(1, 5):
        closed = closed + (1 - decays[t - 1]) * math.prod(decays[t:]) * history[t]
    assert torch.allclose(trainer.step.ema.G.state_dict()[name], closed, atol=1e-6)
    assert not torch.equal(trainer.step.ema.G.state_dict()[name], history[-1])


@pytest.mark.slow
def test_the_generator_file_holds_the_averaged_g_and_the_checkpoint_both(tmp_path):
    config = tiny_config(tmp_path, model="dcgan-ttur-ema")
    train(config)
    trainer = Trainer(config, fake_data())
    trainer.load_checkpoint(trainer.files.checkpoint)
    G_file, _ = load_generator(trainer.files.generator)
    G_checkpoint, _ = load_generator(trainer.files.checkpoint)
    for k, v in trainer.step.ema.G.state_dict().items():
        assert torch.equal(G_file.state_dict()[k], v) and torch.equal(G_checkpoint.state_dict()[k], v)
    tensors, _ = read_tensors(trainer.files.checkpoint)
    assert any(k.startswith("G.") for k in tensors) and any(k.startswith("G_ema.") for k in tensors)
    assert not torch.equal(tensors["G.net.0.weight"], tensors["G_ema.net.0.weight"])
    assert trainer.step.sampler is trainer.step.ema.G


# -- augmentation -------------------------------------------------------------------------------------------

def test_diffaugment_is_differentiable_and_changes_the_images():
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    torch.manual_seed(0)
    y = cutout(translation(x))
    assert y.shape == x.shape and not torch.equal(y, x)
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert (x.grad == 0).any()                                               # cut-out pixels get no gradient


def test_one_policy_for_real_and_fake_in_both_updates(tmp_path, monkeypatch):
    seen = []

    def recorder(x):
        seen.append(x)
        return x.flip(-1)
    with registries().augmentations.temporary(Entry("recorder", recorder, "test", "test", {})):
        trainer = Trainer(tiny_config(tmp_path, augment="recorder"), fake_data())
    real = next(trainer.batches.epoch(trainer.data_rng))
    looked_at = []
    real_d = trainer.step.d_forward
    trainer.step.d_forward = lambda x: (looked_at.append(x), real_d(x))[1]
    trainer.step(real)
    # D main: real and fake; G main: fake; everything D saw went through the policy first
    assert len(seen) == 3 and torch.equal(seen[0], real) and seen[2].requires_grad
    assert torch.equal(seen[1], seen[2].detach())
    assert all(torch.equal(d, s.flip(-1)) for d, s in zip(looked_at, seen))


# -- statistics named by the loss ----------------------------------------------------------------------------

@pytest.mark.slow
def test_each_loss_names_its_statistics_and_its_own_won_rule(tmp_path):
    config = tiny_config(tmp_path, model="lsgan")
    train(config)
    records = [r for r in read_metrics(f"{config.out}/metrics.jsonl") if "loss_d" in r]
    assert {"d_real", "d_fake", "d_won"} <= set(records[-1])
    wgan = tiny_config(tmp_path / "w", model="wgangp")
    train(wgan)
    last = [r for r in read_metrics(f"{wgan.out}/metrics.jsonl") if "loss_d" in r][-1]
    assert {"critic_real", "critic_fake", "gp"} <= set(last) and "d_real" not in last and last["d_won"] is False
    ls = LeastSquaresLoss()
    won = {"loss_d": 0.001, "d_real": 0.99, "d_fake": 0.01}
    assert ls.discriminator_won(won) and not ls.discriminator_won({"loss_d": 0.2, "d_real": 0.6, "d_fake": 0.4})
    # compare's "D collapsed" reads the rule the run logged, not D(x) > 0.95
    assert d_collapsed([{"step": s, "loss_d": 0.001, "loss_g": 1.0, "d_real": 0.99, "d_fake": 0.01,
                         "d_won": True} for s in range(4)])
    assert not d_collapsed([{"step": s, "loss_d": 0.001, "loss_g": 1.0, "d_real": 0.99, "d_fake": 0.01,
                             "d_won": False} for s in range(4)])


def test_label_smoothing_and_instance_noise_are_options_of_the_standard_loss():
    real, fake = torch.full((4,), 3.0), torch.full((4,), -3.0)
    smooth = NonSaturatingLoss(real_label=0.9).d_loss(real, fake)
    sp = torch.nn.functional.softplus
    expected = 0.9 * sp(torch.tensor(-3.0)) + 0.1 * sp(torch.tensor(3.0)) + sp(torch.tensor(-3.0))
    assert smooth.item() == pytest.approx(expected.item(), rel=1e-6)
    assert NonSaturatingLoss().d_loss(real, fake).item() == pytest.approx(2 * sp(torch.tensor(-3.0)).item())
    looked = []
    D = Linear(torch.ones(1, 1, 2, 2))
    ctx = StepContext(lambda x: (looked.append(x), D(x))[1], torch.zeros(4, 1, 2, 2), torch.zeros(4, 1, 2, 2), "Dmain")
    NonSaturatingLoss(instance_noise=0.1).d_loss(real, fake, ctx)
    assert len(looked) == 2 and all(0 < x.std() < 0.3 for x in looked)     # D judged noisy real and fake


# -- every built-in recipe: one step of it, and resumed bit for bit ----------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("model", [m for m in RECIPES if m not in ("dcgan", "basicgan")])  # those: test_resume
def test_every_builtin_recipe_resumes_bit_identically(tmp_path, model, monkeypatch):
    whole = tiny_config(tmp_path / "whole", model=model)
    train(whole)
    part = tiny_config(tmp_path / "part", model=model)
    stopping = Trainer(part, fake_data())
    stop_at(monkeypatch, stopping, 13)                 # mid-way between wgangp's G steps and r1's lazy ones
    with pytest.raises(Exception, match="Interrupted at step 13"):
        stopping.fit()
    reloaded = Trainer(part, fake_data())
    reloaded.load_checkpoint(reloaded.files.checkpoint)
    assert torch.equal(reloaded.state.last_stats, stopping.state.last_stats)   # statistics of phases not run
    assert reloaded.state.d_steps == stopping.state.d_steps == 13
    train(part, resume=True)
    a, _ = read_tensors(f"{whole.out}/checkpoint.safetensors")
    b, _ = read_tensors(f"{part.out}/checkpoint.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    logged = lambda run: [{k: v for k, v in r.items() if k not in ("time", "images_per_s", "train_time")}
                          for r in read_metrics(f"{run.out}/metrics.jsonl") if r["step"] > 16]
    assert logged(whole) == logged(part)


def test_spectral_norm_transform_of_d_gives_unit_norm_layers_and_survives_a_checkpoint(tmp_path):
    config = tiny_config(tmp_path, spectral_norm=True)
    trainer = Trainer(config, fake_data())
    for real in list(trainer.batches.epoch(trainer.data_rng))[:2]:
        trainer.step(real)
    def norms(D):
        D.eval()                                  # the power iteration's current estimate, no further iteration
        return [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item() for m in D.modules()
                if isinstance(m, nn.Conv2d)]
    assert all(n == pytest.approx(1, abs=0.03) for n in norms(trainer.D))    # one power iteration per step lags
    assert not all(n == pytest.approx(1, abs=0.03) for n in norms(Trainer(tiny_config(tmp_path / "plain"),
                                                                          fake_data()).D))
    trainer.D.train()
    trainer.save_checkpoint()
    again = Trainer(config, fake_data())
    again.load_checkpoint(trainer.files.checkpoint)
    for k, v in trainer.D.state_dict().items():
        assert torch.equal(again.D.state_dict()[k], v), k


# -- each recipe option reaches the update it claims to change ---------------------------------------------

def _first_batch(trainer):
    return next(iter(trainer.batches.epoch(trainer.data_rng)))


def test_the_gradient_penalty_trains_d_not_only_its_log(tmp_path):
    """One wgangp step against the same step with gp:0: the same penalty is logged, and D moves differently."""
    after, logged = {}, {}
    for spec in ("gp:10", "gp:0"):
        trainer = Trainer(tiny_config(tmp_path / spec.replace(":", ""), model="wgangp", regularizers=spec),
                          fake_data())
        stats = trainer.step(_first_batch(trainer))
        logged[spec] = stats[trainer.step.stat_names.index("gp")].item()
        after[spec] = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    assert logged["gp:10"] == logged["gp:0"] > 0
    assert any(not torch.equal(after["gp:10"][k], after["gp:0"][k]) for k in after["gp:10"])


def _quadratic_d(trainer, c):
    """The trainer's D replaced by D(x) = c/2 ||x||^2, stepped by SGD (its lr set by the step each time)."""
    D = Quadratic(c)
    step = trainer.step
    step.D = step.d_forward = D
    step.d_trained_params = [D.c]
    step.optimizers["D"] = torch.optim.SGD([D.c], lr=1.0)
    return D


def test_a_lazy_regulariser_moves_d_by_weight_times_interval_times_its_gradient(tmp_path):
    """R1 every 16 steps, weight 0.1, on a quadratic D under SGD: the lazy update moves c by exactly
    lr * 0.1 * 16 * dR1/dc, dR1/dc = c E||x||^2 (against the same step with weight 0, whose update is nil)."""
    moved = {}
    for weight in (0.1, 0.0):
        trainer = Trainer(tiny_config(tmp_path / str(weight), model="r1", regularizers=f"r1:{weight}@16",
                                      precision="fp32"), fake_data())
        D = _quadratic_d(trainer, 0.7)
        real = _first_batch(trainer)
        trainer.step(real)
        moved[weight] = D.c.item()
        lr = trainer.step.opt_d.param_groups[0]["lr"]
    assert lr == pytest.approx(2e-4 * 16 / 17)
    c = moved[0.0]                                           # after Dmain: the same in both runs
    expected = -lr * 0.1 * 16 * c * real.flatten(1).square().sum(1).mean().item()
    assert moved[0.1] - moved[0.0] == pytest.approx(expected, rel=1e-4)


def test_the_lazy_lr_ratio_holds_at_every_step_under_the_linear_schedule_too(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, model="r1", lr_schedule="linear", epochs=1), fake_data())
    total = trainer.total_steps
    ratio = 16 / 17
    batches = list(trainer.batches.epoch(trainer.data_rng))[:6]
    for step, real in enumerate(batches):
        trainer.step(real)
        factor = 1 - step / total                         # the lr this step was taken with
        assert trainer.step.opt_d.param_groups[0]["lr"] == pytest.approx(2e-4 * ratio * factor, rel=1e-12)
        assert trainer.step.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * factor, rel=1e-12)
        trainer.state.step += 1                           # as the loop counts steps
    assert trainer.step.opt_d.param_groups[0]["betas"] == pytest.approx((0.5 ** ratio, 0.999 ** ratio))


def test_the_ema_ramp_counts_g_updates_not_d_steps(tmp_path):
    """wgangp with --ema and n_critic 5: after 10 steps G was updated twice, with decays ramp(0), ramp(1)."""
    trainer = Trainer(tiny_config(tmp_path, model="wgangp", ema=0.999), fake_data())
    assert trainer.config.n_critic == 5
    name = "net.0.weight"
    history = [trainer.G.state_dict()[name].clone()]
    for i, real in enumerate(list(trainer.batches.epoch(trainer.data_rng))[:10]):
        trainer.step(real)
        if i % 5 == 4:
            history.append(trainer.G.state_dict()[name].clone())
    decays = [min(0.999, (1 + n) / (10 + n)) for n in range(2)]          # 0.1, then 2/11
    closed = decays[0] * decays[1] * history[0] + (1 - decays[0]) * decays[1] * history[1] \
        + (1 - decays[1]) * history[2]
    assert torch.allclose(trainer.step.ema.G.state_dict()[name], closed, atol=1e-6)


def test_label_smoothing_reaches_the_logged_d_loss(tmp_path):
    """loss.real_label=0.9: the step's loss_D is the smoothed loss of D's outputs, not the plain one."""
    import copy

    from ganzoo.models import sample_latent

    trainer = Trainer(tiny_config(tmp_path, precision="fp32", options={"loss": {"real_label": 0.9}}), fake_data())
    G, D = copy.deepcopy(trainer.G), copy.deepcopy(trainer.D)
    real = _first_batch(trainer)
    rng = torch.get_rng_state()
    loss_d = trainer.step(real)[trainer.step.stat_names.index("loss_d")].item()
    torch.set_rng_state(rng)
    z = sample_latent(real.shape[0], trainer.config, "cpu")
    with torch.no_grad():
        d_real, d_fake = D(real).float(), D(G(z)).float()
    smoothed = NonSaturatingLoss(real_label=0.9).d_loss(d_real, d_fake).item()
    assert loss_d == pytest.approx(smoothed, rel=1e-5)
    assert loss_d != pytest.approx(NonSaturatingLoss().d_loss(d_real, d_fake).item(), rel=1e-3)
