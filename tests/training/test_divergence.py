"""Divergence: NaN/Inf in losses or weights is caught within a few steps, never reaches a checkpoint,
and stops the run (or rolls it back) with a sentence saying where the last good weights are.

The divergences are real: an absurd learning rate, or a loss plugin (loaded like any plugin) whose
loss or gradient turns NaN at a given step. The trainer itself is the real one.
"""

import io
import math

import pytest
import torch
from rich.console import Console

from ganzoo import ModelSpec
from ganzoo.checkpoint import load_generator, read_tensors
from ganzoo.data import load_dataset
from ganzoo.train import Trainer, read_metrics
from ganzoo.training.loop import MAX_ROLLBACKS
from ganzoo_plugins.losses import NonSaturatingLoss

from helpers import tiny_config
from helpers import TINY, assert_one_line_error, install_plugin, run_cli, state_of
from helpers import NaNLoss

pytestmark = pytest.mark.usefixtures("one_thread")


class NaNGradient(NonSaturatingLoss):
    """A finite G loss whose gradient is NaN at G step `at`: only G's weights show it (the where/sqrt trap)."""

    at = 10

    def __init__(self):
        self.calls = 0

    def g_loss(self, fake_logits):
        self.calls += 1
        loss = super().g_loss(fake_logits)
        if self.calls == self.at:
            never = torch.zeros((), dtype=torch.bool)
            loss = loss + torch.where(never, torch.sqrt(-fake_logits.abs().mean() - 1), 0.0)  # value 0, grad NaN
        return loss


class FrozenG(NonSaturatingLoss):
    """G gets no gradient: D is bound to win."""

    def g_loss(self, fake_logits):
        return fake_logits.sum() * 0.0


@pytest.fixture
def test_losses(monkeypatch, request):
    def register_losses(register):
        register("nan-loss", NaNLoss, "NaN D loss at a given step")
        register("nan-gradient", NaNGradient, "NaN D gradient at a given step")
        register("frozen-g", FrozenG, "no gradient for G")

    def register_models(register):
        for loss in ("nan-loss", "nan-gradient", "frozen-g"):
            register(loss, ModelSpec(generator="dcgan", discriminator="dcgan", loss=loss))

    install_plugin(monkeypatch, request, "ganzoo_test_losses", register_losses=register_losses,
                   register_models=register_models)
    monkeypatch.setattr(NaNLoss, "at", 13)
    monkeypatch.setattr(NaNLoss, "stay", False)
    monkeypatch.setattr(NaNLoss, "steps_taken", 0, raising=False)


def assert_all_finite(path):
    tensors, _ = read_tensors(path)  # refuses NaN/Inf itself; checked again here, independently
    for name, t in tensors.items():
        if t.is_floating_point():
            assert torch.isfinite(t).all(), name


@pytest.mark.parametrize("nan_at,checkpoint_every,between,last_good", [
    (13, 7, (11, 14), 7),      # caught by the check before the step-14 checkpoint: that one is never written
    (16, 7, (16, 20), 14),     # caught by the every-5-steps check at step 20, before the step-21 checkpoint
])
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, capsys, test_losses, monkeypatch,
                                                       nan_at, checkpoint_every, between, last_good):
    monkeypatch.setattr(NaNLoss, "at", nan_at)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "nan-loss", *TINY, "--epochs", "1", "--log-every", "50",
                           "--checkpoint-every", checkpoint_every, "--out", out)
    line = assert_one_line_error(code, err.splitlines()[-1])
    assert code == 1
    assert ("Training diverged: the losses, the generator's weights and the discriminator's weights became "
            f"NaN/Inf between steps {between[0]} and {between[1]}") in line
    assert f"The last good weights are in {out / 'checkpoint.safetensors'} (step {last_good};" in line
    assert f"ganzoo run --resume {out} --on-divergence rollback" in line
    assert NaNLoss.steps_taken == between[1] < nan_at + 5                   # it stopped there, a few steps on
    assert state_of(out / "checkpoint.safetensors")["step"] == last_good    # the NaN never reached the disk
    assert_all_finite(out / "checkpoint.safetensors")
    assert_all_finite(out / "nan-loss.safetensors")
    generator, _ = load_generator(out / "nan-loss.safetensors")
    assert torch.isfinite(generator(torch.randn(4, 16))).all()


def test_nan_in_weights_alone_is_caught(tmp_path, capsys, test_losses):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "nan-gradient", *TINY, "--epochs", "1", "--log-every", "50",
                           "--checkpoint-every", "4", "--out", out)
    line = assert_one_line_error(code, err.splitlines()[-1])
    # step 10's losses were finite and D untouched: only the weights check saw it, at step 10 itself
    assert "diverged: the generator's weights became NaN/Inf between steps 9 and 10" in line
    assert "(step 8;" in line and state_of(out / "checkpoint.safetensors")["step"] == 8
    assert_all_finite(out / "checkpoint.safetensors")


def test_absurd_learning_rate_diverges_before_any_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--epochs", "1", "--lr", "1e10", "--out", out)
    line = assert_one_line_error(code, err.splitlines()[-1])
    assert "Training diverged:" in line and "between steps 1 and 5" in line
    assert "No checkpoint had been written yet" in line and "lower --lr" in line
    assert not (out / "checkpoint.safetensors").exists() and not (out / "dcgan.safetensors").exists()
    assert "--on-divergence rollback" in line                         # a way out it had not tried
    # given already, it is not advised again
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--epochs", "1", "--lr", "1e10", "--out", out,
                           "--on-divergence", "rollback", "--overwrite")
    line = assert_one_line_error(code, err.splitlines()[-1])
    assert "Training diverged:" in line and "lower --lr" in line and "smaller --checkpoint-every" in line
    assert "(or --on-divergence rollback" not in line and "had no checkpoint to roll back to" in line


def test_rollback_reloads_last_checkpoint_and_halves_the_learning_rate(tmp_path, capsys, test_losses):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "nan-loss", *TINY, "--epochs", "1", "--log-every", "1",
                           "--checkpoint-every", "7", "--on-divergence", "rollback", "--out", out)
    assert code == 0, err
    assert "rolled back to the checkpoint of step 7 with the learning rate halved to 0.0001" in err
    tensors, meta = read_tensors(out / "checkpoint.safetensors")
    state = state_of(out / "checkpoint.safetensors")
    assert state["step"] == 32
    assert [g["lr"] for g in state["opt_g"]["param_groups"]] == [1e-4]
    assert [g["lr"] for g in state["opt_d"]["param_groups"]] == [1e-4]
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 33))             # the diverged steps were dropped
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records)


def test_rollback_gives_up_after_a_few_tries(tmp_path, capsys, test_losses, monkeypatch):
    monkeypatch.setattr(NaNLoss, "stay", True)                              # NaN from step 13 on, whatever the lr
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "nan-loss", *TINY, "--epochs", "1", "--log-every", "50",
                           "--checkpoint-every", "7", "--on-divergence", "rollback", "--out", out)
    line = assert_one_line_error(code, err.splitlines()[-1])
    assert err.count("rolled back to the checkpoint of step 7") == MAX_ROLLBACKS
    assert f"still diverged after {MAX_ROLLBACKS} rollbacks" in line and "(step 7;" in line
    assert_all_finite(out / "checkpoint.safetensors")


@pytest.mark.parametrize("model,lr,warned", [("frozen-g", 2e-3, True), ("dcgan", 2e-4, False)])
def test_collapsed_discriminator_is_a_warning(tmp_path, test_losses, model, lr, warned):
    config = tiny_config(tmp_path, model=model, epochs=2, lr=lr)
    data = load_dataset("fake", root=None, split="train", image_size=32, channels=1)
    text = io.StringIO()
    trainer = Trainer(config, data, Console(file=text, width=200))
    trainer.loop.guard.collapse_steps = 16                                       # 1000 by default; a short run here
    trainer.fit()                                                           # a warning, not a stop
    output = text.getvalue()
    assert ("the discriminator has won for 16 steps" in output) == warned, output
    assert output.count("the discriminator has won") == int(warned)         # said once, not every window
    if warned:
        last = read_metrics(trainer.files.metrics)[-1]
        assert last["loss_d"] < 0.05 and last["d_real"] > 0.95 and last["d_fake"] < 0.05
