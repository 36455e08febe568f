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

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

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
    """Random weights in the converted file's format: the whole FID/KID path runs, the numbers mean nothing."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "random_inception.safetensors"
    save_file({k: v.contiguous() for k, v in FIDInception().eval().state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run per dataset, made on first use: {data: weights path}."""
    folder, runs = tmp_path_factory.mktemp("metric-runs"), {}

    def weights(data: str):
        if data not in runs:
            from conftest import MNIST_DIR
            data_dir = MNIST_DIR
            if data == "folder":
                data_dir = folder / "images"
                data_dir.mkdir()
                for i, image in enumerate(torch.randint(0, 256, (16, 32, 32, 3), dtype=torch.uint8,
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


@pytest.mark.parametrize("metric", BUILTIN_METRICS)
def test_eval_in_a_fresh_process(metric, trained, inception_weights, tmp_path, mnist_dir):
    weights = trained(DATA[metric])
    report = tmp_path / "eval.json"
    n = 16 if DATA[metric] == "folder" else 256
    result = ganzoo("eval", weights, "--metrics", metric, "-n", n, "--json", report,
                    env={"GANZOO_INCEPTION_WEIGHTS": str(inception_weights)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(report.read_text())["rows"]
    assert set(rows) == {"dcgan.safetensors", "real data (train)"}
    model, real = rows["dcgan.safetensors"], rows["real data (train)"]
    assert model and set(model) == set(real)
    assert all(isinstance(v, float) and math.isfinite(v) for v in [*model.values(), *real.values()]), rows
    assert model != real                             # two seconds of training are not real data
