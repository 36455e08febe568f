"""Every built-in metric, end to end through the command line: `ganzoo run`, then `ganzoo eval` in a fresh process.

In-process tests import the plugins before anything else; a fresh `ganzoo eval` imports them lazily, inside
whatever context first asks for a registry (once inside `torch.device("meta")`, which put a plugin's module-level
tensor on the meta device). Only a new process sees that.
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from ganzoo.checkpoint import load_generator
from ganzoo.evaluate import generate_images, real_images
from ganzoo.plugins import BUILTIN_PLUGINS, registries
from ganzoo_plugins.inception import FIDInception

BUILTIN_METRICS = sorted(e.name for e in registries().metrics if e.plugin in BUILTIN_PLUGINS)
# the data each metric is run on: the first dataset it names, else a small folder of colour images (Inception
# metrics: their reference statistics come from the whole test split, and Inception at 299x299 is slow on a CPU)
DATA = {name: (registries().metrics.get(name).info.get("datasets") or ("folder",))[0] for name in BUILTIN_METRICS}
CHANNELS = {"mnist": 1, "stackedmnist": 3, "folder": 3}
TINY = ["--g-width", "8", "--d-width", "8", "--z-dim", "16", "--samples", "16", "--device", "cpu",
        "--budget", "2s"]


def ganzoo(*args, env=None, cwd=None):
    env = dict(os.environ, COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "ganzoo", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    """Random weights in the converted file's format: the whole FID/KID path runs, the numbers mean nothing.
    (He-initialised, so that the signal survives 90 layers and different images get different features.)"""
    torch.manual_seed(0)
    net = FIDInception().eval()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "random_inception.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run per dataset, made on first use: {data: weights path}."""
    folder, runs = tmp_path_factory.mktemp("metric-runs"), {}

    def weights(data: str):
        if data not in runs:
            from helpers import MNIST_DIR
            data_dir = MNIST_DIR
            if data == "folder":
                data_dir = folder / "images"
                data_dir.mkdir()
                for i, image in enumerate(torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8,
                                                        generator=torch.Generator().manual_seed(0))):
                    Image.fromarray(image.numpy()).save(data_dir / f"{i}.png")
            out = folder / data
            result = ganzoo("run", "dcgan", "--data", data, "--data-dir", data_dir, "--channels", CHANNELS[data],
                            "--image-size", 32, "--batch-size", 8, *TINY, "--out", out)
            assert result.returncode == 0, result.stderr[-2000:]
            runs[data] = out / "dcgan.safetensors"
        return runs[data]
    return weights


def test_every_builtin_metric_is_covered():
    assert {"mnist_fd", "mnist_score", "mnist_classes", "stacked_modes", "fid", "kid"} <= set(BUILTIN_METRICS)


@pytest.fixture(scope="module")
def inception_features(inception_weights):
    """Features of uint8 images from the same stand-in network, computed here (each set once), in float64."""
    from ganzoo_plugins.inception import load_inception

    net, done = load_inception(str(inception_weights)), {}

    def features(name, images):
        if name not in done:
            with torch.inference_mode():
                done[name] = net(images).double().numpy()
        return done[name]
    return features


def frechet(x, y):
    """Fréchet distance of the Gaussians fitted to two small feature sets, by the closed form through the
    eigenvalues of the small Gram product (tr (S1 S2)^1/2 = sum of sqrt eig((A B')(A B')') / sqrt((n-1)(m-1)))."""
    a, b = x - x.mean(0), y - y.mean(0)
    cross = a @ b.T
    root = np.sqrt(np.clip(np.linalg.eigvalsh(cross @ cross.T), 0, None)).sum() / np.sqrt((len(x) - 1) * (len(y) - 1))
    return ((x.mean(0) - y.mean(0)) ** 2).sum() + (a * a).sum() / (len(x) - 1) + (b * b).sum() / (len(y) - 1) - 2 * root


def kid(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 over the whole sets (fewer than KID's subset size)."""
    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3                                   # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * k(x, y).mean())


@pytest.mark.slow
@pytest.mark.parametrize("metric", BUILTIN_METRICS)
def test_eval_in_a_fresh_process(metric, trained, inception_weights, inception_features, tmp_path, mnist_dir):
    weights = trained(DATA[metric])
    report = tmp_path / "eval.json"
    n = 8 if DATA[metric] == "folder" else 256                       # the folder's 8 images: KID's subsets hold all
    result = ganzoo("eval", weights, "--metrics", metric, "-n", n, "--json", report,
                    env={"GANZOO_INCEPTION_WEIGHTS": str(inception_weights)}, cwd=tmp_path)
    if metric == "memorisation":                  # a folder is its own test split: nothing is held out (on MNIST,
        assert result.returncode == 1             # with held-out digits: tests/test_memorisation.py)
        assert "Memorisation needs held-out images apart from the training ones" in result.stderr
        return
    if metric == "mnist_agreement":               # it scores class-conditional G's only (tests/test_conditional.py):
        assert result.returncode == 1             # asked of an unconditional one, refused in one sentence
        assert "scores class-conditional generators only" in result.stderr
        return
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(report.read_text())["rows"]
    assert set(rows) == {"dcgan.safetensors", "real data (train)"}
    model, real = rows["dcgan.safetensors"], rows["real data (train)"]
    assert model and set(model) == set(real)
    assert all(isinstance(v, float) and math.isfinite(v) for v in [*model.values(), *real.values()]), rows
    assert model != real                             # two seconds of training are not real data
    if metric in ("fid", "kid"):
        # the numbers are the distances between these very images' features (the samples of seed 0, the
        # folder as reference and as the real row), computed here by the closed forms
        generator, config = load_generator(weights)
        folder = dict(data="folder", image_size=32, channels=3, data_dir=config.data_dir)
        ours = inception_features("samples", generate_images(generator, config, n, seed=0))
        images = real_images(**folder, split="test")
        assert torch.equal(real_images(**folder, split="train", n=n, seed=0), images)  # the real row: all 8 too
        reference = inception_features("reference", images)
        distance = frechet if metric == "fid" else kid
        expected = distance(ours, reference), distance(reference, reference)
        assert model[metric] == pytest.approx(expected[0], rel=1e-4)
        assert real[metric] == pytest.approx(expected[1], rel=1e-4, abs=1e-9)
        assert abs(expected[0]) > 1e-3                   # random weights still tell G's samples from the folder
        if metric == "kid":
            assert abs(model["kid_std"]) < 1e-6 * abs(model["kid"])   # each subset held all the images
