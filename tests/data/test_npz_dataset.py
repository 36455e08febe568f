"""An npz dataset package and a precision/recall metric, written as a plugin author writes them (ganzoo.api only):
the dataset's root is one file (file_root=True) and it names its default metric (metrics=...); `ganzoo run`, `eval`
and `--resume` read that file; the conformance kit passes both, and fails three malformed datasets."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganzoo.api import GanzooError, ImageData
from ganzoo.cli import main
from ganzoo.testing import CheckFailed, component_checks

from helpers import SETTINGS, assert_one_line_error, flags, install_plugin, run_cli


# -- the dataset: one .npz holding x_train, y_train, x_test, y_test (uint8 NHWC images, int labels) ------------

def load_npz(*, root, download, split="train", image_size=28, channels=1):
    if split not in ("train", "test"):
        raise GanzooError(f"The npz dataset has the splits train and test, not {split!r}.")
    if not root:
        raise GanzooError("The npz dataset reads one file: --data-dir digits.npz (x_train, y_train, x_test, y_test).")
    try:
        with np.load(root, allow_pickle=False) as npz:
            x, y = npz[f"x_{split}"], npz[f"y_{split}"]
    except (OSError, KeyError, ValueError) as exc:
        raise GanzooError(f"{root} is not an npz with x_{split} and y_{split} ({exc}).") from None
    images = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()
    return ImageData(images, torch.from_numpy(y.astype(np.int64)))


def blobs(n, seed):
    """n 16x16 grey images, each a bright square at one of 4 places (its label)."""
    g = np.random.default_rng(seed)
    labels = g.integers(0, 4, n)
    x = np.zeros((n, 16, 16, 1), np.uint8)
    for i, label in enumerate(labels):
        r, c = divmod(int(label), 2)
        x[i, 2 + 8 * r:6 + 8 * r + g.integers(0, 2), 2 + 8 * c:6 + 8 * c, 0] = 255
    return x, labels


def write_npz(path, n=256):
    (xtr, ytr), (xte, yte) = blobs(n, 0), blobs(n, 1)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


def example_npz(folder, split):
    """The kit's example files: one .npz; a file-root dataset returns its path."""
    return write_npz(folder / "digits.npz", n=12)


# -- the metric: precision and recall on k-NN manifolds (Kynkaanniemi et al. 2019) of 8x8 thumbnails ------------

def thumbnails(images):
    return F.adaptive_avg_pool2d(images.float() / 255, 8).flatten(1)


def precision_recall(samples, k=3):
    real = samples.reference("pr-thumbnails-8x8", thumbnails).features[:len(samples)]
    fake = thumbnails(samples.images)

    def radii(x):                                          # distance to each point's k-th nearest neighbour
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values

    def covered(points, manifold):
        return (torch.cdist(points, manifold) <= radii(manifold)[None]).any(1).float().mean().item()

    return {"precision": covered(fake, real), "recall": covered(real, fake)}


# -- three malformed datasets, each a fault only the kit's loading through load_dataset sees ------------------

def float_images(*, root, download, split="train", image_size=16, channels=1):
    if split not in ("train", "test"):
        raise GanzooError(f"no split {split!r}")
    return ImageData(torch.rand(8, 1, 16, 16))                 # float in [0, 1], not uint8


def five_channels(*, root, download, split="train", image_size=16, channels=1):
    if split not in ("train", "test"):
        raise GanzooError(f"no split {split!r}")
    return ImageData(torch.randint(0, 256, (8, 5, 16, 16), dtype=torch.uint8))


def noise_any_split(*, root, download, split="train", image_size=16, channels=1):
    g = torch.Generator().manual_seed(0)
    return ImageData(torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8, generator=g))


def register_datasets(register):
    register("npz", load_npz, image_size=16, channels=1, splits=("train", "test"), classes=4, file_root=True,
             metrics=("pr-thumbnails",), example_files=example_npz)
    register("float-images", float_images, image_size=16, channels=1)
    register("five-channels", five_channels, image_size=16, channels=1)
    register("noise-any-split", noise_any_split, image_size=16, channels=1)


def register_metrics(register):
    register("pr-thumbnails", precision_recall, datasets=(), n=256,
             better={"precision": "higher", "recall": "higher"})


@pytest.fixture
def npz_plugin(monkeypatch, request, tmp_path):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    install_plugin(monkeypatch, request, "ganzoo_npz_digits", register_datasets=register_datasets,
                   register_metrics=register_metrics)


def run_all(kind, name):
    results = {}
    for check in component_checks(kind, name):
        try:
            check.run()
            results[check.what] = None
        except CheckFailed as exc:
            results[check.what] = str(exc)
    return results


def test_the_npz_dataset_and_the_precision_recall_metric_pass_the_kit(npz_plugin):
    assert run_all("dataset", "npz") == {"contract": None, "offline without files": None,
                                         "reads the files it writes": None}
    assert run_all("metric", "pr-thumbnails") == {"contract": None, "real images beat noise": None}


@pytest.mark.parametrize("name,message", [
    ("float-images", "must give uint8 images"),
    ("five-channels", "5 channels"),
    ("noise-any-split", "the split 'no-such-split' loaded"),
])
def test_malformed_datasets_fail_the_kit_without_example_files(npz_plugin, name, message):
    results = run_all("dataset", name)
    assert results["contract"] is None
    assert results["offline without files"] and message in results["offline without files"], results


def test_precision_and_recall_tell_one_mode_from_all_of_them(npz_plugin, tmp_path):
    """The metric measures what it says: samples of one of the 4 blobs are precise but recall about a quarter."""
    from ganzoo.api import Samples
    path = write_npz(tmp_path / "digits.npz")
    x, labels = blobs(256, 2)
    images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    every = precision_recall(Samples(images, "npz", str(path), download=False))
    one = precision_recall(Samples(images[torch.from_numpy(labels == 0)], "npz", str(path), download=False))
    assert every["precision"] > 0.9 and every["recall"] > 0.9, every
    assert one["precision"] > 0.9 and one["recall"] < 0.4, one


@pytest.mark.slow
def test_run_eval_and_resume_read_the_one_file_and_the_dataset_names_its_metric(npz_plugin, tmp_path, capsys):
    data = write_npz(tmp_path / "digits.npz")
    run = tmp_path / "run"
    settings = dict(SETTINGS, data="npz", data_dir=str(data), samples=4)
    assert main(["run", "basicgan", *flags(settings), "--epochs", "1", "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["data_dir"] == str(data)
    code, out, err = run_cli(capsys, "eval", run, "-n", "64", "--device", "cpu")    # no --metrics: the dataset's
    assert code == 0, err
    report = json.loads((run / "basicgan.eval.json").read_text())
    assert set(report["rows"]["real data (train)"]) >= {"precision", "recall"}
    assert report["rows"]["real data (train)"]["precision"] > 0.9
    code, out, err = run_cli(capsys, "run", "--resume", run, "--epochs", "2")
    assert code == 0, err


def test_a_file_where_a_folder_belongs_and_the_other_way_round_is_one_sentence(npz_plugin, tmp_path, capsys):
    data = write_npz(tmp_path / "digits.npz")
    code, _, err = run_cli(capsys, "run", "basicgan", *flags(dict(SETTINGS, data="npz", data_dir=str(tmp_path))),
                           "--epochs", "1", "--out", tmp_path / "a")
    assert "is a folder, but the dataset 'npz' reads one file" in assert_one_line_error(code, err)
    code, _, err = run_cli(capsys, "run", "basicgan", *flags(dict(SETTINGS, data="mnist", data_dir=str(data))),
                           "--epochs", "1", "--out", tmp_path / "b")
    assert "declares file_root=True" in assert_one_line_error(code, err)


@pytest.mark.slow
def test_eval_of_a_run_whose_file_is_gone_says_so(npz_plugin, tmp_path, capsys):
    data = write_npz(tmp_path / "digits.npz")
    run = tmp_path / "run"
    settings = dict(SETTINGS, data="npz", data_dir=str(data), samples=4)
    assert main(["run", "basicgan", *flags(settings), "--epochs", "1", "--out", str(run)]) == 0
    data.unlink()
    capsys.readouterr()
    code, _, err = run_cli(capsys, "eval", run, "-n", "64", "--device", "cpu")
    assert "The run's data file" in (line := assert_one_line_error(code, err)) and "is not a file from here" in line
