"""`ganzoo sample RUN --format npz|png-folder --out PATH`: the layouts other evaluators read, the same samples
`ganzoo eval` scores, and nothing half-written left at PATH."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.checkpoint import load_generator, save_generator
from ganzoo.cli import main
from ganzoo.evaluate import file_sha256, generate_images
from ganzoo.models import build_generator
from ganzoo.sampling import classes

from helpers import tiny_config


def _weights(tmp_path, **overrides):
    config = tiny_config(tmp_path, **overrides)
    return save_generator(tmp_path / f"{config.model}.safetensors", build_generator(config), config)


def test_npz_is_arr_0_uint8_channels_last_rgb_with_the_classes(tmp_path, capsys):
    weights = _weights(tmp_path, model="cdcgan", channels=1)
    assert main(["sample", str(weights), "-n", "1100", "--format", "npz", "--out", str(tmp_path / "s.npz"),
                 "--seed", "4", "--device", "cpu"]) == 0            # more than one batch of 500
    G, config = load_generator(weights)
    with np.load(tmp_path / "s.npz") as npz:                          # no pickle needed: allow_pickle stays False
        images, labels, about = npz["arr_0"], npz["arr_1"], json.loads(str(npz["ganzoo"]))
    assert images.dtype == np.uint8 and images.shape == (1100, 32, 32, 3)
    expected = generate_images(G, config, 1100, seed=4)               # [N, 1, H, W]: grey repeated to RGB
    assert np.array_equal(images, expected.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy())
    assert np.array_equal(labels, classes(config, range(1100)).numpy())
    assert about["weights_sha256"] == file_sha256(weights) and (about["n"], about["seed"]) == (1100, 4)
    assert "1100 samples of cdcgan" in capsys.readouterr().out


def test_png_folder_is_one_file_per_sample_and_refuses_to_overwrite(tmp_path, capsys):
    weights = _weights(tmp_path, channels=3)
    out = tmp_path / "samples"
    out.mkdir()                                                       # an empty folder is fine
    assert main(["sample", str(weights), "-n", "12", "--format", "png-folder", "--out", str(out)]) == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(12)]
    G, config = load_generator(weights)
    read = torch.stack([torch.from_numpy(np.array(Image.open(f))).permute(2, 0, 1) for f in files])
    assert torch.equal(read, generate_images(G, config, 12))
    assert json.loads((out / "ganzoo.json").read_text())["layout"] == "png-folder"
    capsys.readouterr()
    assert main(["sample", str(weights), "-n", "12", "--format", "png-folder", "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--format", "npz"], "needs --out"),
    (["--format", "npz", "--out", "x.png"], "must name a .npz file"),
    (["--format", "png-folder", "--out", "f", "--class", "1"], "shape a PNG grid"),
    (["--format", "png-folder", "--out", "f", "-n", "0"], "-n must lie between 1"),
])
def test_export_bad_input_is_one_line(tmp_path, capsys, argv, message):
    weights = _weights(tmp_path)
    assert main(["sample", str(weights), *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_failed_export_leaves_nothing_at_the_path(tmp_path, monkeypatch):
    import ganzoo.export as export

    weights = _weights(tmp_path)
    real_generate = export.generate
    calls = {"n": 0}

    def fail_on_the_second_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(export, "generate", fail_on_the_second_batch)
    for fmt, out in (("png-folder", tmp_path / "pngs"), ("npz", tmp_path / "s.npz")):
        calls["n"] = 0
        assert main(["sample", str(weights), "-n", "700", "--format", fmt, "--out", str(out)]) == 130
        assert not out.exists() and not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob(".*.tmp*"))
    monkeypatch.setattr(export, "generate", real_generate)
    assert main(["sample", str(weights), "-n", "700", "--format", "png-folder", "--out", str(tmp_path / "pngs")]) == 0
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 700 and not list(tmp_path.glob(".pngs.partial"))
