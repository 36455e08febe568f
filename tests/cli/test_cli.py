"""The commands users type, run in-process on fake data. (Bad input: tests/test_bad_input.py.)"""

import json

import pytest
from PIL import Image

from ganzoo.cli import main

# a run of a few steps: batch 256 of fake data, width 4
POLISH = ["--data", "fake", "--batch-size", "256", "--g-width", "4", "--d-width", "4", "--z-dim", "8", "--device", "cpu"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


TINY = ["--data", "fake", "--batch-size", "64", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
        "--log-every", "4", "--device", "cpu"]


@pytest.mark.slow
def test_run_then_sample(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--epochs", "2", "--out", str(out))
    assert code == 0, err
    assert (out / "dcgan.safetensors").is_file() and (out / "checkpoint.safetensors").is_file()
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    grid = Image.open(out / "samples" / "epoch_002.png")
    assert grid.size == (8 * 32 + 9 * 2, 8 * 32 + 9 * 2)                   # 64 samples, 8 per row, 2px padding
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 32 and {"loss_d", "loss_g", "d_real", "d_fake", "images_per_s"} <= set(records[-1])
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"] == "dcgan" and saved["lr"] == 2e-4 and saved["beta1"] == 0.5 and saved["image_size"] == 32

    code, stdout, err = run_cli(capsys, "sample", str(out / "dcgan.safetensors"), "-n", "9",
                                "--out", str(tmp_path / "grid.png"))
    assert code == 0, err
    assert Image.open(tmp_path / "grid.png").size == (3 * 32 + 4 * 2, 3 * 32 + 4 * 2)


@pytest.mark.slow
def test_run_refuses_to_overwrite_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "run", "basicgan", *TINY, "--epochs", "1", "--out", str(out))[0] == 0
    code, _, err = run_cli(capsys, "run", "basicgan", *TINY, "--epochs", "1", "--out", str(out))
    assert code == 1 and "already holds a run" in err
    code, _, err = run_cli(capsys, "run", "--resume", str(out), "--epochs", "2")
    assert code == 0, err
    assert "resuming" in err
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 32
    code, _, err = run_cli(capsys, "run", "--resume", str(out), "--lr", "0.1")
    assert code == 1 and "keeps its config" in err


def test_image_folder_run(tmp_path, capsys):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(70):
        Image.new("RGB", (40 + i, 40), (i * 3, 100, 200)).save(folder / f"{i}.png")
    out = tmp_path / "run"
    args = ["run", "dcgan", "--data", str(folder), "--image-size", "16", "--channels", "3", "--batch-size", "32",
            "--g-width", "8", "--d-width", "8", "--epochs", "1", "--out", str(out), "--device", "cpu"]
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    saved = json.loads((out / "config.json").read_text())
    assert saved["data"] == "folder" and saved["data_dir"] == str(folder) and saved["channels"] == 3


def test_list_and_plugins(capsys):
    code, stdout, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("dcgan", "basicgan", "mlp", "nonsaturating", "minimax", "mnist", "folder", "fake"):
        assert name in stdout
    code, stdout, _ = run_cli(capsys, "plugins")
    assert code == 0 and "ganzoo_plugins.dcgan" in stdout and "built-in" in stdout


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("5m", 300), ("1.5h", 5400), ("42", 42), (" 2M ", 120)])
def test_durations(text, seconds):
    from ganzoo.config import parse_duration

    assert parse_duration(text) == seconds


def test_a_run_shows_what_differs_from_the_defaults_once(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    assert main(["run", "dcgan", *POLISH, "--epochs", "1", "--lr", "1e-3", "--out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    precision = json.loads((out / "config.json").read_text())["precision"]   # auto: fp32, or bf16 on a bf16 CPU
    assert precision in ("fp32", "bf16")
    assert f"run: dcgan on fake, 1 epoch, {precision} -> {out} (every setting in {out / 'config.json'})" in err
    assert "lr 0.001 (default 0.0002)" in err and "batch_size 256 (default 128)" in err
    for same in ("beta1", "beta2", "seed", "latent", "on_divergence", "image_size"):
        assert same not in err, same                       # at its default: only in config.json
    assert main(["run", "--resume", str(out), "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "settings besides" not in err and "resuming" in err      # compare's later segments resume too


def test_list_shows_each_description_whole(capsys):
    """A description taken from a docstring is its whole first paragraph: celeba's names its splits."""
    from ganzoo.plugins import registries

    assert registries().datasets.get("celeba").description.endswith("splits train, valid, test, all.")
    assert main(["list"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "as the TensorFlow DCGAN does; splits" in text and "train, valid, test, all." in text
