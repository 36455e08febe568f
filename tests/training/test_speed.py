"""The fast paths of the training step compute what the plain step computes, and the speed benchmark runs."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from ganzoo.plugins import registries
from ganzoo.registry import Entry
from ganzoo.run import train
from ganzoo.sampling import generate
from ganzoo.train import Trainer

from ganzoo.runfiles import read_metrics

from helpers import REPO, TINY, fake_data, run_cli, tiny_config, weights
from ganzoo_plugins.dcgan import DCGANDiscriminator


def assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        if atol:
            assert torch.allclose(a[k].float(), b[k].float(), atol=atol), (k, (a[k] - b[k]).abs().max())
        else:
            assert torch.equal(a[k], b[k]), (k, (a[k].float() - b[k].float()).abs().max())


def run_steps(trainer, n=8):
    batches = trainer.batches.epoch(trainer.data_rng)
    return [trainer.step(next(batches)) for _ in range(n)]


@pytest.mark.parametrize("model", ["dcgan", "basicgan"])
def test_step_equals_the_plain_dcgan_step(tmp_path, model):
    """Skipping D's weight gradients in G's update changes no number: same weights, bit for bit,
    as the textbook step (D's gradients from G's loss computed, then thrown away at the next D step)."""
    config = tiny_config(tmp_path, model=model, precision="fp32")
    fast = Trainer(config, fake_data())
    run_steps(fast)

    plain = Trainer(config, fake_data())
    batches = plain.batches.epoch(plain.data_rng)
    for _ in range(8):
        real = next(batches)
        z = torch.randn(real.shape[0], config.z_dim)
        fake = plain.G(z)
        loss_d = F.softplus(-plain.D(real)).mean() + F.softplus(plain.D(fake.detach())).mean()
        plain.step.opt_d.zero_grad()
        loss_d.backward()
        plain.step.opt_d.step()
        loss_g = F.softplus(-plain.D(fake)).mean()
        plain.step.opt_g.zero_grad()
        loss_g.backward()                        # also fills D's gradients, which no one reads
        plain.step.opt_g.step()
    assert_same(weights(fast), weights(plain))
    assert all(p.requires_grad for p in fast.D.parameters())


class FirstLayerFrozen(DCGANDiscriminator):
    """A discriminator whose input convolution is fixed (a plugin may freeze parts of its networks)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.net[0].weight.requires_grad_(False)


def test_frozen_discriminator_parameters_stay_frozen(tmp_path, monkeypatch):
    with registries().discriminators.temporary(Entry("frozen-first", FirstLayerFrozen, "test", "test", {})):
        config = tiny_config(tmp_path)
        config.discriminator = "frozen-first"
        trainer = Trainer(config, fake_data())
    before = [p.detach().clone() for p in trainer.D.parameters()]
    run_steps(trainer, 3)
    after = list(trainer.D.parameters())
    assert not after[0].requires_grad and torch.equal(after[0], before[0])     # frozen: untouched
    assert all(p.requires_grad and not torch.equal(p, b) for p, b in zip(after[1:], before[1:]))


@pytest.mark.slow
def test_channels_last_trains_and_resumes_bit_for_bit(tmp_path):
    whole = tiny_config(tmp_path / "whole", epochs=2, channels_last=True)
    train(whole)
    part = tiny_config(tmp_path / "part", epochs=1, channels_last=True)
    train(part)
    part.epochs = 2
    train(part, resume=True)                     # optimizer state comes back from the file in NCHW
    whole_t = Trainer(whole, fake_data())
    whole_t.load_checkpoint(whole_t.files.checkpoint)
    part_t = Trainer(part, fake_data())
    part_t.load_checkpoint(part_t.files.checkpoint)
    assert whole_t.state.step == part_t.state.step == 64
    assert_same(weights(whole_t), weights(part_t))
    assert whole_t.G.net[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_compile_failure_falls_back_to_eager_exactly(tmp_path, monkeypatch, capsys):
    """A compiler that fails leaves no trace: the run continues in eager mode with the same numbers."""
    eager = Trainer(tiny_config(tmp_path / "eager"), fake_data())
    run_steps(eager)

    def broken_backend(graph_module, example_inputs):
        raise RuntimeError("this compiler is broken")

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module: real_compile(module, backend=broken_backend))
    trainer = Trainer(tiny_config(tmp_path / "compiled", compile=True), fake_data())
    run_steps(trainer)
    assert trainer.step.g_forward is trainer.G and trainer.step.d_forward is trainer.D
    assert_same(weights(trainer), weights(eager))
    assert "--compile failed" in capsys.readouterr().err


@pytest.mark.slow
def test_compiled_step_matches_eager(tmp_path):
    eager = Trainer(tiny_config(tmp_path / "eager", precision="fp32"), fake_data())
    eager_stats = torch.stack(run_steps(eager, 4))
    compiled = Trainer(tiny_config(tmp_path / "compiled", precision="fp32", compile=True), fake_data())
    compiled_stats = torch.stack(run_steps(compiled, 4))
    assert compiled.step.g_forward is not compiled.G                          # it did compile
    assert torch.allclose(compiled_stats, eager_stats, atol=1e-4)
    assert_same(weights(compiled), weights(eager), atol=1e-4)
    assert generate(compiled.step.sampler, compiled.loop.fixed_noise).is_inference()   # sampling: inference mode


def test_speed_flags_on_the_command_line(tmp_path, capsys):
    from ganzoo.cli import main

    out = tmp_path / "run"
    args = ["--data", "fake", "--batch-size", "256", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
            "--device", "cpu", "--epochs", "1", "--out", str(out)]
    assert main(["run", "dcgan", *args, "--channels-last", "--no-compile"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["channels_last"] is True and saved["compile"] is False
    assert main(["run", "--resume", str(out), "--epochs", "2", "--no-channels-last"]) == 0
    assert json.loads((out / "config.json").read_text())["channels_last"] is False
    assert main(["run", "dcgan", *args, "--overwrite", "--compile=yes"]) == 2
    assert "--compile" in capsys.readouterr().err


@pytest.mark.slow
def test_benchmark_smoke(tmp_path, mnist_dir):
    result = tmp_path / "speed.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "train_speed.py"), "--smoke",
                           "--data-dir", str(mnist_dir), "--profile", "--json", str(result)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(result.read_text())["rows"]
    assert [(r["case"], r["batch_size"]) for r in rows] == [("dcgan-32", 16), ("dcgan-64", 16), ("basicgan-32", 16)]
    for r in rows:
        assert r["ganzoo_images_per_s"] > 0 and r["reference_images_per_s"] > 0 and r["ratio"] > 0
        assert r["gflop_per_image"] > 0 and r["mfu"] > 0
    flops = {r["case"]: r["gflop_per_image"] for r in rows}
    assert flops["dcgan-64"] > 3 * flops["dcgan-32"]                         # 4x the pixels, one layer more
    for case in ("dcgan-32", "dcgan-64", "basicgan-32"):
        assert case in proc.stdout
    profiles = json.loads(result.read_text())["profiles"]
    assert len(profiles) == 6                                                 # each case: ganzoo and reference
    conv = profiles["dcgan-32 batch 16 ganzoo"]["convolutions_ms_per_step"]
    assert all(ms > 0 for ms in conv.values()), conv                          # G's and D's, forward and backward
    assert any(op["op"] == "aten::convolution_backward" for op in profiles["dcgan-32 batch 16 ganzoo"]["ops"])


def _fake_compile(monkeypatch, backend):
    """torch.compile through `backend` (a stand-in for Inductor: the real one takes minutes on a CPU)."""
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module: real_compile(module, backend=backend))


@pytest.mark.slow
def test_compiling_is_not_training_time(tmp_path, capsys, monkeypatch, one_second_steps):
    """--budget counts training, not compiling: a compile of '100 s' leaves a 40 s budget its 40 steps."""
    def slow_backend(graph_module, example_inputs):
        one_second_steps["now"] += 100.0
        return graph_module.forward

    _fake_compile(monkeypatch, slow_backend)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--log-every", "4", "--budget", "40s", "--compile",
                           "--out", out)
    assert code == 0, err
    assert re.search(r"compiled G and D in \d+\.\ds \(the first step, not counted", err), err
    assert "budget of 40s reached at step 41 " in err, err                   # the first (compiled) step + 40
    assert read_metrics(out / "metrics.jsonl")[-1]["train_time"] <= 41.0


def test_interrupted_compile_says_interrupted(tmp_path, capsys, monkeypatch):
    """Ctrl-C during a compile kills the compiler's workers and it raises CppCompileError: the run says it was
    interrupted, not that the compiler is broken, and stops with a checkpoint."""
    def interrupted_backend(graph_module, example_inputs):
        os.kill(os.getpid(), signal.SIGINT)                        # Ctrl-C: the handler asks the loop to stop
        raise RuntimeError("InductorError: CppCompileError: C++ compile error (the compiler got SIGINT)")

    _fake_compile(monkeypatch, interrupted_backend)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--epochs", "1", "--compile", "--out", out)
    assert code == 130, err
    assert "--compile was interrupted by the stop signal" in err
    assert "CppCompileError" not in err and "--compile failed" not in err
    assert (out / "checkpoint.safetensors").exists() or any(out.glob("checkpoint*")), list(out.iterdir())


def _benchmark(name):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


def test_profile_sorts_a_step_into_its_categories(tmp_path):
    """--profile's table: each part of a bf16 channels-last DCGAN step lands in its own row, and the rows add up
    to the step's wall time (the rest of it is the Python overhead row)."""
    train_speed = _benchmark("train_speed")
    trainer = Trainer(tiny_config(tmp_path, precision="bf16", channels_last=True), fake_data())
    steps = train_speed.GanzooSteps(trainer)
    steps.run(1)
    result = train_speed.profile_steps(steps.run, 2, torch.device("cpu"))
    categories = result["categories_ms_per_step"]
    assert list(categories) == list(train_speed.CATEGORIES)
    for name in ("G conv forward", "G conv backward", "D conv forward", "D conv backward", "BatchNorm forward",
                 "BatchNorm backward", "optimiser", "elementwise and other ops", "dtype casts (autocast)"):
        assert categories[name] > 0, (name, categories)
    assert categories["matmul (linear layers)"] == 0                          # DCGAN has no linear layer
    assert sum(categories.values()) == pytest.approx(result["wall_ms_per_step"], rel=0.02)
    assert result["ops"] and result["wall_ms_per_step"] > 0


@pytest.mark.slow
def test_benchmark_times_the_compiled_step_against_the_eager_one(tmp_path, monkeypatch):
    train_speed = _benchmark("train_speed")
    _fake_compile(monkeypatch, "eager")                    # dynamo's graph capture, no code generation
    result = train_speed.main(["--smoke", "--data", "fake", "--cases", "dcgan-32", "--compile", "--no-reference",
                               "--precision", "fp32"])
    row, = result["rows"]
    assert row["compile"] and row["compile_seconds"] > 0
    assert row["eager_images_per_s"] > 0 and row["compile_speedup"] == pytest.approx(
        row["ganzoo_images_per_s"] / row["eager_images_per_s"])


@pytest.mark.slow
def test_cpu_options_compares_each_candidate_with_the_default():
    cpu_options = _benchmark("cpu_options")
    result = cpu_options.main(["--smoke", "--data", "fake", "--candidates", "adam-foreach,bn-fp32,weights-nchw"])
    assert [r["candidate"] for r in result["rows"]] == ["adam-foreach", "bn-fp32", "weights-nchw"]
    assert all(r["ratio"] > 0 and len(r["ratios"]) == 1 for r in result["rows"])
