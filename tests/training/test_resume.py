"""A resumed run ends with the same weights, bit for bit, as one that was never stopped (CPU)."""

import pytest
import torch

from ganzoo.checkpoint import read_tensors
from ganzoo.data import load_dataset
from ganzoo.run import train
from ganzoo.train import Trainer, read_metrics

from helpers import stop_at, tiny_config


def final_weights(path):
    tensors, _ = read_tensors(path)
    return tensors


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_resume_from_epoch_boundary_is_bit_identical(tmp_path):
    # fake data: 1024 images / 32 = 32 steps per epoch; dropout in basicgan exercises the RNG state too
    for model in ("dcgan", "basicgan"):
        whole = tiny_config(tmp_path / f"{model}-whole", model=model, epochs=2, checkpoint_every=7)
        train(whole)
        part = tiny_config(tmp_path / f"{model}-part", model=model, epochs=1, checkpoint_every=7)
        train(part)
        part.epochs = 2
        train(part, resume=True)
        assert_same(final_weights(f"{whole.out}/checkpoint.safetensors"),
                    final_weights(f"{part.out}/checkpoint.safetensors"))


@pytest.mark.slow
def test_stop_mid_epoch_then_resume_is_bit_identical(tmp_path, monkeypatch):
    whole = tiny_config(tmp_path / "whole", epochs=2, checkpoint_every=1000)
    train(whole)

    part = tiny_config(tmp_path / "part", epochs=2, checkpoint_every=1000)
    data = load_dataset("fake", root=None, split="train", image_size=32, channels=1)
    trainer = Trainer(part, data)
    stop_at(monkeypatch, trainer, 45)                                      # epoch 2, step 13 of 32
    try:
        trainer.fit()
        raise AssertionError("the run should have stopped")
    except Exception as exc:
        assert "Interrupted at step 45" in str(exc)
    _, meta = read_tensors(f"{part.out}/checkpoint.safetensors")
    assert '"step": 45' in meta["ganzoo.state"]
    train(part, resume=True)
    assert_same(final_weights(f"{whole.out}/checkpoint.safetensors"),
                final_weights(f"{part.out}/checkpoint.safetensors"))
    # the log is the uninterrupted run's: the same steps, once each, with the same numbers, except the
    # first record after the resume (step 48), whose window holds steps 46-48 only: step 45's statistics
    # were in the stopped run's unlogged window
    def logged(run):
        return {r["step"]: {k: v for k, v in r.items() if k not in ("time", "images_per_s", "train_time")}
                for r in read_metrics(f"{run.out}/metrics.jsonl")}
    assert [r["step"] for r in read_metrics(f"{part.out}/metrics.jsonl")] == list(range(4, 65, 4))
    ours, theirs = logged(part), logged(whole)
    ours.pop(48), theirs.pop(48)
    assert ours == theirs


@pytest.mark.slow
def test_time_budget_ends_cleanly_and_the_run_continues_exactly(tmp_path, request):
    """--budget stops at a step boundary like a finished run (checkpoint, generator, grid, no error);
    resuming it reaches the same weights as a run never stopped. The clock is simulated: each step
    takes 'one second', so the stop lands on a known step whatever the machine's speed."""
    from ganzoo.config import UNLIMITED_EPOCHS

    whole = tiny_config(tmp_path / "whole", epochs=2)
    train(whole)

    request.getfixturevalue("one_second_steps")                           # from here on, the simulated clock
    part = tiny_config(tmp_path / "part", epochs=UNLIMITED_EPOCHS, budget=40.0)   # epoch 2, step 8 of 32
    generator = train(part)
    assert generator.is_file()
    _, meta = read_tensors(f"{part.out}/checkpoint.safetensors")
    assert '"step": 40' in meta["ganzoo.state"]
    assert (tmp_path / "part" / "run" / "samples" / "step_0000040.png").is_file()
    assert (tmp_path / "part" / "run" / "samples" / "epoch_001.png").is_file()

    part.epochs, part.budget = 2, 0.0
    train(part, resume=True)
    assert_same(final_weights(f"{whole.out}/checkpoint.safetensors"),
                final_weights(f"{part.out}/checkpoint.safetensors"))
