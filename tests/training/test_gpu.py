"""The CUDA paths, which the CPU suite never reaches: the guard's non-blocking NaN check, the CUDA RNG in
checkpoints, fp16 training with its grad scaler's state, the allocator's peak memory in `ganzoo compare`,
the default bf16 autocast and the conformance kit on the GPU.

Marked `gpu`: they run where torch sees a CUDA GPU (`python -m pytest -m gpu`); elsewhere the test summary
says how many were not run (tests/conftest.py), rather than skipping them quietly.
"""

import json

import pytest
import torch
from safetensors.torch import save_file

from ganzoo import ModelSpec
from ganzoo.checkpoint import read_tensors
from ganzoo.cli import main
from ganzoo.compare import PeakMemory
from ganzoo.data import load_dataset
from ganzoo.plugins import BUILTIN_PLUGINS
from ganzoo.run import train
from ganzoo.testing import component_checks, registered_checks
from ganzoo.train import Trainer

from helpers import tiny_config
from helpers import TINY, assert_one_line_error, install_plugin, run_cli, state_of
from helpers import NaNLoss

pytestmark = pytest.mark.gpu
CUDA = ["--device", "cuda"]


@pytest.fixture
def nan_loss_model(monkeypatch, request):
    """The model 'nan-loss': DCGAN whose D loss is NaN at D step 13 (tests/test_divergence.py)."""
    install_plugin(monkeypatch, request, "ganzoo_test_gpu_nan",
                   register_losses=lambda register: register("nan-loss", NaNLoss, "NaN D loss at step 13"),
                   register_models=lambda register: register("nan-loss", ModelSpec("dcgan", "dcgan", "nan-loss")))
    monkeypatch.setattr(NaNLoss, "at", 13)
    monkeypatch.setattr(NaNLoss, "stay", False)
    monkeypatch.setattr(NaNLoss, "steps_taken", 0, raising=False)


def cuda_config(tmp_path, **overrides):
    return tiny_config(tmp_path, **{"device": "cuda", "precision": "fp32", **overrides})


def test_nan_is_caught_through_the_non_blocking_copy(tmp_path, capsys, nan_loss_model):
    """On CUDA the every-5-steps check copies its flags to pinned host memory without blocking and reads them
    when the copy has landed: a NaN at step 13 is reported for the check of step 15, a few steps later."""
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "nan-loss", *TINY[:-2], *CUDA, "--precision", "fp32", "--epochs", "1",
                           "--log-every", "50", "--checkpoint-every", "1000", "--out", out)
    line = assert_one_line_error(code, err.splitlines()[-1])
    assert "became NaN/Inf between steps 11 and 15" in line, line
    assert 15 <= NaNLoss.steps_taken <= 20                       # read back before the next check was issued
    assert "No checkpoint had been written yet" in line


def test_healthy_cuda_run_raises_no_false_alarm_and_resumes_with_its_cuda_rng(tmp_path):
    """basicgan draws z and D's dropout masks from the CUDA RNG: a run resumed from its checkpoint continues
    with the generator's state as saved, and ends where the uninterrupted run ends; without the CUDA RNG
    state it would not."""
    whole = cuda_config(tmp_path / "whole", model="basicgan", epochs=2)
    train(whole)
    part = cuda_config(tmp_path / "part", model="basicgan", epochs=1)
    train(part)
    tensors, metadata = read_tensors(f"{part.out}/checkpoint.safetensors")
    assert "rng.cuda" in tensors

    data = load_dataset("fake", root=None, split="train", image_size=32, channels=1)
    trainer = Trainer(part, data)
    torch.cuda.manual_seed(12345)                                 # anything but the saved state
    trainer.load_checkpoint(trainer.files.checkpoint)
    assert torch.equal(torch.cuda.get_rng_state(trainer.device), tensors["rng.cuda"])

    blind = cuda_config(tmp_path / "blind", model="basicgan", epochs=1)     # the same checkpoint, CUDA RNG cut out
    train(blind)
    cut, meta = read_tensors(f"{blind.out}/checkpoint.safetensors")
    save_file({k: v for k, v in cut.items() if k != "rng.cuda"}, f"{blind.out}/checkpoint.safetensors", metadata=meta)
    for config in (part, blind):
        config.epochs = 2
        train(config, resume=True)

    def max_difference(a, b):
        ta, tb = read_tensors(f"{a.out}/checkpoint.safetensors")[0], read_tensors(f"{b.out}/checkpoint.safetensors")[0]
        return max((ta[k].double() - tb[k].double()).abs().max().item() for k in ta if k.startswith(("G.", "D.")))

    resumed, without = max_difference(whole, part), max_difference(whole, blind)
    assert resumed <= 1e-5 and without > 100 * max(resumed, 1e-7), (resumed, without)


def test_fp16_grad_scaler_state_survives_a_checkpoint(tmp_path):
    config = cuda_config(tmp_path, precision="fp16", epochs=1)
    train(config)
    saved = state_of(tmp_path / "run" / "checkpoint.safetensors")["scaler"]
    fresh = torch.amp.GradScaler("cuda").state_dict()
    assert saved and saved.keys() == fresh.keys()
    assert saved != fresh                                        # 32 steps moved its growth tracker (or scale)
    data = load_dataset("fake", root=None, split="train", image_size=32, channels=1)
    trainer = Trainer(config, data)
    assert trainer.precision.name == "fp16" and trainer.step.scaler.is_enabled()
    trainer.load_checkpoint(trainer.files.checkpoint)
    assert trainer.step.scaler.state_dict() == saved
    config.epochs = 2
    train(config, resume=True)                                   # and training goes on
    read_tensors(tmp_path / "run" / "checkpoint.safetensors")    # (which refuses NaN/Inf weights)
    assert state_of(tmp_path / "run" / "checkpoint.safetensors")["step"] == 64


def test_peak_memory_is_the_cuda_allocators(tmp_path, capsys):
    device = torch.device("cuda")
    with PeakMemory(device) as big:
        block = torch.empty(256 * 2 ** 20, dtype=torch.uint8, device=device)
        del block
    with PeakMemory(device) as small:                            # a new block starts from a new peak
        block = torch.empty(16 * 2 ** 20, dtype=torch.uint8, device=device)
        del block
    assert big.peak >= 256 * 2 ** 20 and small.peak < big.peak and small.peak >= 16 * 2 ** 20

    out = tmp_path / "report"
    code = main(
        ["compare", "dcgan", "basicgan", "--data", "fake", "--batch-size", "64", "--g-width", "8", "--d-width", "8",
         "--z-dim", "16", "--device", "cuda", "--metrics", "mnist_fd", "-n", "200", "--curve-n", "100",
         "--epochs", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["environment"]["gpu"] == torch.cuda.get_device_name(device)
    for entry in results["contenders"].values():
        assert 0 < entry["runs"][0]["peak_memory_mb"] < torch.cuda.get_device_properties(device).total_memory / 2 ** 20
    assert "the CUDA allocator's peak" in (out / "report.md").read_text()


def test_default_precision_on_cuda_trains_and_samples(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY[:-2], *CUDA, "--epochs", "1", "--out", out)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["precision"] == "bf16" and "precision bf16" in err    # auto: bf16 autocast where the GPU has it
    code, _, err = run_cli(capsys, "sample", out / "dcgan.safetensors", "-n", "4", "--device", "cuda",
                           "--out", tmp_path / "grid.png")
    assert code == 0, err


@pytest.mark.parametrize("check", [c for c in registered_checks() if c.plugin in BUILTIN_PLUGINS], ids=str)
def test_the_kit_on_cuda(check):
    """Every built-in component passes the conformance kit on the GPU too (`ganzoo check-plugin --device cuda`)."""
    (on_cuda,) = [c for c in component_checks(check.kind, check.name, device="cuda") if c.what == check.what]
    on_cuda.run()
