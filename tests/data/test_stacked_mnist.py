"""Stacked MNIST: the dataset's 1000 modes, and the metric that counts them."""

import pytest
import torch

from ganzoo import GanzooError, RunConfig
from ganzoo.data import load_dataset, to_model_range
from ganzoo.evaluate import evaluate, evaluate_real

from helpers import Repeat


def test_channels_are_three_labelled_mnist_digits(mnist_dir):
    stacked = load_dataset("stackedmnist", root=str(mnist_dir), split="test", image_size=32, channels=3)
    assert stacked.images.shape == (10000, 3, 32, 32) and stacked.images.dtype == torch.uint8
    assert stacked.labels.min() >= 0 and stacked.labels.max() <= 999
    assert len(stacked.labels.unique()) > 990                              # 10 per mode on average
    mnist = load_dataset("mnist", root=str(mnist_dir), split="test", image_size=32, channels=1)
    # each channel is one of MNIST's test digits, and the label spells the three digits
    first = stacked.images[0]
    digits = [int(mnist.labels[(mnist.images[:, 0] == first[c]).flatten(1).all(1)][0]) for c in range(3)]
    assert stacked.labels[0] == digits[0] * 100 + digits[1] * 10 + digits[2]
    with pytest.raises(GanzooError, match="--channels 3"):
        load_dataset("stackedmnist", root=str(mnist_dir), split="test", image_size=32, channels=1)


@pytest.mark.slow
def test_real_stacked_mnist_covers_about_all_1000_modes(mnist_dir):
    real = evaluate_real(data="stackedmnist", image_size=32, channels=3, n=10000, data_dir=str(mnist_dir),
                         device="cpu")
    assert real["modes_covered"] >= 990                                    # 10 samples a mode on average
    assert real["mode_kl"] < 0.1


def test_a_collapsed_stacked_generator_covers_one_mode(mnist_dir):
    stacked = load_dataset("stackedmnist", root=str(mnist_dir), split="test", image_size=32, channels=3)
    config = RunConfig(model="collapsed", data="stackedmnist", data_dir=str(mnist_dir), image_size=32, channels=3,
                       z_dim=8)
    scores = evaluate(Repeat(to_model_range(stacked.images[0])), config=config, n=500, device="cpu")
    assert scores["modes_covered"] == 1 and scores["mode_kl"] == pytest.approx(torch.log(torch.tensor(1000.)).item())
