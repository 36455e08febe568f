"""Memorisation on real MNIST, with nothing trained: training images fed as "samples" are flagged, held-out ones
are not; and the nearest-neighbour machinery it shares with precision/recall."""

import contextlib
import importlib.util
import io
import json

import numpy as np
import pytest
import torch
from prdc import compute_prdc

from ganzoo.cli import main
from ganzoo.evaluate import Samples, real_images, resolve_metrics, score
from ganzoo.neighbours import memorisation, nearest, prdc
from ganzoo_plugins.mnist_metrics import evaluator_space

from helpers import REPO

N = 300


def _scored(images, mnist_dir, metrics="mnist_memorisation,mnist_prdc"):
    samples = Samples(images, "mnist", str(mnist_dir), download=False, seed=0, source="real images as samples")
    return score(samples, resolve_metrics(metrics, "mnist", 1)), samples


def test_training_images_are_flagged_and_held_out_images_are_not(mnist_dir):
    train = real_images("mnist", split="train", image_size=32, channels=1, data_dir=str(mnist_dir), n=N, seed=5)
    copied, samples = _scored(train, mnist_dir)
    assert copied["memorised"] == 1.0                                  # each sits on its own training image
    assert copied["train_distance_ratio"] < 1e-3
    pairs = samples.exhibits["memorisation"]
    assert torch.equal(pairs["samples"], pairs["nearest"]) and max(pairs["distances"]) < 1e-3
    assert len(pairs["sample_index"]) == 8 and pairs["threshold"] > 0

    test = real_images("mnist", split="test", image_size=32, channels=1, data_dir=str(mnist_dir), n=N, seed=5)
    unseen, _ = _scored(test, mnist_dir)
    assert unseen["memorised"] == 0.0
    assert 0.8 < unseen["train_distance_ratio"] < 1.25                 # as far from the training set as any test digit


def test_held_out_images_outside_the_reference_pool_are_not_flagged(mnist_dir):
    """The registered metric's pool is the whole test split, so test images fed to it cannot fall below its
    minimum. Here the pool is half the test split and the probes the other half: unseen digits, flagged only
    by chance (about 1 in 5,001 each), against training digits, every one flagged."""
    samples = Samples(torch.zeros(2, 1, 32, 32, dtype=torch.uint8), "mnist", str(mnist_dir), download=False)
    space = evaluator_space(samples)
    test = samples.reference(space).features.double()
    train = samples.reference(space, split="train").features.double()
    pool, probes = test[:5000], test[5000:5000 + N]
    found = memorisation(probes, train, pool)
    assert found.flagged.sum() <= 2                                     # expected 0.06 of 300
    assert 0.8 < found.scores()["train_distance_ratio"] < 1.25
    copies = memorisation(train[:N], train, pool)
    assert copies.flagged.all() and (copies.nearest_train == np.arange(N)).all()


def test_eval_draws_the_closest_pairs_and_reports_the_fraction(tmp_path, mnist_dir, capsys):
    from ganzoo.checkpoint import save_generator
    from ganzoo.models import build_generator

    from helpers import tiny_config

    config = tiny_config(tmp_path, data="mnist", data_dir=str(mnist_dir))
    weights = save_generator(tmp_path / "dcgan.safetensors", build_generator(config), config)
    assert main(["eval", str(weights), "-n", "64", "--device", "cpu", "--metrics", "mnist_memorisation"]) == 0
    captured = capsys.readouterr()
    report = json.loads((tmp_path / "dcgan.eval.json").read_text())
    assert report["rows"]["dcgan.safetensors"]["memorised"] == 0.0       # noise copies no digit
    assert report["rows"]["real data (train)"]["memorised"] == 1.0      # the training set itself
    picture = tmp_path / "dcgan.memorisation.png"
    assert report["memorisation_pairs"] == str(picture) and picture.stat().st_size > 1000
    assert "mnist_memorisation" in captured.out and "training images used" in captured.out


def test_mnist_prdc_is_the_prdc_package_on_the_evaluators_features(mnist_dir):
    spec = importlib.util.spec_from_file_location("fidelity_benchmark", REPO / "benchmarks" / "fidelity.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    images = real_images("mnist", split="train", image_size=32, channels=1, data_dir=str(mnist_dir), n=400, seed=2)
    ours, samples = _scored(images, mnist_dir, metrics="mnist_prdc")
    theirs = bench.prdc_reference(samples, evaluator_space(samples))     # prdc.compute_prdc on the same features
    assert set(ours) == set(theirs) and all(abs(ours[k] - theirs[k]) <= 1e-6 for k in ours), (ours, theirs)
    assert 0.5 < ours["precision"] < 1 and 0.5 < ours["recall"] < 1   # train digits against test digits


def test_nearest_and_prdc_on_hand_made_points():
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    d, i = nearest(np.array([[0.9, 0.1], [4.0, 4.0]]), real)
    assert i.tolist() == [1, 3] and d[1] == pytest.approx(np.sqrt(2))
    # k=1: each real point's ball reaches its nearest other real point (radius 1, 1, 1, ~6.4)
    fake = np.array([[0.1, 0.1], [0.2, 0.0], [10.0, 10.0], [0.0, -1.0]])
    found = prdc(real, fake, k=1)
    # (10, 10) lies outside every ball; (0, -1) on the edge of (0, 0)'s, which is outside: "inside" is strict
    assert found["precision"] == pytest.approx(2 / 4)
    assert found["coverage"] == pytest.approx(3 / 4)                  # (5, 5)'s ball holds no sample; the others do
    with contextlib.redirect_stdout(io.StringIO()):
        assert found == pytest.approx(compute_prdc(real, fake, nearest_k=1), abs=1e-12)
