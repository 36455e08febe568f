"""--tensorboard writes what metrics.jsonl and the sample grids hold, read back with TensorBoard's own reader."""

import json
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganzoo.cli import main

TINY = ["--data", "fake", "--batch-size", "128", "--g-width", "4", "--d-width", "4", "--z-dim", "8",
        "--log-every", "3", "--samples", "9", "--device", "cpu"]


def events(folder):
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.slow
def test_scalars_and_grids_read_back(tmp_path, capsys, mnist_dir, one_thread):
    out = tmp_path / "run"
    code = main(["run", "dcgan", *TINY, "--data", "mnist", "--data-dir", str(mnist_dir), "--batch-size", "2048",
                 "--log-every", "10", "--epochs", "1", "--eval-every", "1", "--eval-n", "200", "--out", str(out),
                 "--tensorboard"])
    assert code == 0, capsys.readouterr().err
    board = events(out / "tensorboard")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logs = [r for r in records if "loss_d" in r]
    for key in ("loss_d", "loss_g", "d_real", "d_fake", "images_per_s"):
        scalars = board.Scalars(f"train/{key}")
        assert [s.step for s in scalars] == [r["step"] for r in logs]
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in logs], rel=1e-6)
    (evaluation,) = [r for r in records if "eval_n" in r]
    assert board.Scalars("eval/mnist_fd")[0].value == pytest.approx(evaluation["mnist_fd"], rel=1e-6)
    assert board.Scalars("eval/mnist_fd")[0].step == evaluation["step"] == logs[-1]["step"]
    (grid,) = board.Images("samples/fixed_noise")
    assert grid.step == logs[-1]["step"] and (grid.width, grid.height) == (3 * 32 + 4 * 2, 3 * 32 + 4 * 2)


def test_a_resumed_run_continues_the_curves(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    assert main(["run", "basicgan", *TINY, "--epochs", "1", "--out", str(out), "--tensorboard"]) == 0
    assert main(["run", "--resume", str(out), "--epochs", "2"]) == 0
    steps = [s.step for s in events(out / "tensorboard").Scalars("train/loss_d")]
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == logged == [3, 6, 8, 9, 12, 15, 16]          # 8 steps an epoch: every 3rd and each epoch's last
    assert len(events(out / "tensorboard").Images("samples/fixed_noise")) == 2


def test_without_tensorboard_one_sentence_names_the_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)     # what an install without it gives
    out = tmp_path / "run"
    code = main(["run", "dcgan", *TINY, "--epochs", "1", "--out", str(out), "--tensorboard"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "--tensorboard needs TensorBoard, which is not installed: pip install 'pyganzoo[tensorboard]'." in err
    assert not out.exists()                                                # refused before anything was made
