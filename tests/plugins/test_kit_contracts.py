"""The conformance kit's newer checks fail plugins that break them: datasets, metrics, declared channel counts,
and factories whose signature breaks their contract (named as such, not as a shape problem)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo import GanzooError, ImageData
from ganzoo.evaluate import frechet_distance, gaussian_statistics
from ganzoo.testing import CheckFailed, component_checks

from helpers import install_plugin


def run_all(kind, name, **kw):
    """{check name: None or its failure message}."""
    results = {}
    for check in component_checks(kind, name, **kw):
        try:
            check.run()
            results[check.what] = None
        except CheckFailed as exc:
            results[check.what] = str(exc)
    return results


# -- datasets ---------------------------------------------------------------------------------------------

def write_squares(folder, split):
    """A tensor file per split: the dataset's own format."""
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    (folder / f"{split}.u8").write_bytes(torch.randint(0, 256, (10, 1, 12, 12), dtype=torch.uint8,
                                                       generator=g).numpy().tobytes())


def load_squares(*, root, download, split="train", image_size=12, channels=1):
    path = f"{root}/{split}.u8" if root else None
    try:
        raw = open(path, "rb").read()
    except (OSError, TypeError):
        raise GanzooError(f"squares needs {split}.u8 in --data-dir.") from None
    images = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, 1, 12, 12)
    return ImageData(images.clone(), torch.arange(len(images)) % 2)


def load_squares_crashing(*, root, download, split="train", image_size=12, channels=1):
    return ImageData(open(f"{root}/{split}.u8", "rb").read())          # a bare OSError offline


def load_squares_float_labels(*, root, download, split="train", image_size=12, channels=1):
    data = load_squares(root=root, download=download, split=split)
    return ImageData(data.images, labels=None if split == "test" else torch.ones(len(data.images) + 1).long())


@pytest.fixture
def datasets(monkeypatch, request):
    def register_datasets(register):
        register("squares", load_squares, image_size=12, channels=1, splits=("train", "test"),
                 example_files=write_squares)
        register("squares-crashing", load_squares_crashing, image_size=12, channels=1)
        register("squares-bad-labels", load_squares_float_labels, image_size=12, channels=1, splits=("train", "test"),
                 example_files=write_squares)
    install_plugin(monkeypatch, request, "ganzoo_kit_datasets", register_datasets=register_datasets)


def test_a_conforming_dataset_passes_on_files_the_kit_has_it_write(datasets):
    assert run_all("dataset", "squares") == {"contract": None, "offline without files": None,
                                             "reads the files it writes": None}


def test_a_dataset_that_crashes_offline_or_mislabels_fails(datasets):
    crashing = run_all("dataset", "squares-crashing")
    assert "raise a GanzooError saying which files to put where" in crashing["offline without files"]
    bad = run_all("dataset", "squares-bad-labels")["reads the files it writes"]
    assert bad and "labels" in bad


# -- metrics -------------------------------------------------------------------------------------------

def thumbnails(images):
    return F.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)


def thumbnail_fd(samples):
    reference = samples.reference("kit-thumbnails-4x4", thumbnails)
    return {"tfd": frechet_distance(*gaussian_statistics(thumbnails(samples.images)), reference.mu, reference.sigma)}


@pytest.fixture
def metrics(monkeypatch, request, tmp_path):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))

    def register_metrics(register):
        register("tfd", thumbnail_fd, better={"tfd": "lower"})
        register("tfd-upside-down", thumbnail_fd, better={"tfd": "higher"})
        register("constant", lambda samples: {"c": 1.0})
    install_plugin(monkeypatch, request, "ganzoo_kit_metrics", register_metrics=register_metrics)


def test_a_metric_must_score_real_images_better_than_noise(metrics):
    assert run_all("metric", "tfd") == {"contract": None, "real images beat noise": None}
    upside = run_all("metric", "tfd-upside-down")["real images beat noise"]
    assert upside and "real images must score better than noise" in upside
    constant = run_all("metric", "constant")["real images beat noise"]
    assert constant and "measures nothing" in constant


# -- channel counts and contracts ----------------------------------------------------------------------------

class GreyOnly(nn.Module):
    """A generator that only makes grey images (its last layer has one output channel whatever it is asked)."""

    def __init__(self, *, image_size, channels, z_dim, width):
        super().__init__()
        self.size = image_size
        self.net = nn.Linear(z_dim, image_size * image_size)

    def forward(self, z):
        return torch.tanh(self.net(z)).view(len(z), 1, self.size, self.size)


class NoWidth(GreyOnly):
    def __init__(self, *, image_size, channels, z_dim):
        super().__init__(image_size=image_size, channels=channels, z_dim=z_dim, width=0)


def test_networks_declare_the_channel_counts_they_support(monkeypatch, request):
    install_plugin(monkeypatch, request, "ganzoo_kit_channels", register_generators=lambda register: (
        register("grey", GreyOnly, image_sizes=(16,), channel_counts=(1,)),
        register("grey-undeclared", GreyOnly, image_sizes=(16,))))
    assert all(v is None for v in run_all("generator", "grey").values())
    undeclared = run_all("generator", "grey-undeclared")
    assert undeclared["shapes and range"] and "3 channel(s)" in undeclared["shapes and range"]
    assert "channel_counts=" in undeclared["shapes and range"]
    from ganzoo.run import make_config
    with pytest.raises(GanzooError, match=r"generator 'grey' takes images with 1 channel\(s\), got 3"):
        make_config("basicgan", {"generator": "grey", "data": "fake", "image_size": 16, "channels": 3})


def test_the_kit_names_a_broken_contract(monkeypatch, request):
    install_plugin(monkeypatch, request, "ganzoo_kit_nowidth",
                   register_generators=lambda register: register("nowidth", NoWidth, image_sizes=(16,)))
    results = run_all("generator", "nowidth")
    assert all("breaks the generator contract, factory(*, image_size, channels, z_dim, width)" in message
               for message in results.values()), results
