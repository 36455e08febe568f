"""Stacked MNIST (Metz et al. 2016; VEEGAN, PacGAN): 1000 modes to find, and a count of those found.

Each image's three channels are three MNIST digits drawn at random, so there are
10^3 = 1000 classes (mode = 100 * red digit + 10 * green digit + blue digit).
A generator that covers the data distribution produces all of them about equally
often; the metric labels each channel with ganzoo's MNIST evaluator and reports the
modes covered out of 1000 and KL(mode histogram || uniform), on 25,600 samples by
default (the published protocol).
"""

from __future__ import annotations

import torch
from einops import rearrange

from ganzoo.api import GanzooError, ImageData, Samples, class_histogram_kl, file_sha256, hookimpl, load_dataset

from .mnist_evaluator import WEIGHTS
from .mnist_metrics import INPUT_RANGE, NAME, RESIZE, evaluator_for

SPLIT_SIZE = {"train": 60_000, "test": 10_000}
SPLIT_SEED = {"train": 0, "test": 1}
PLACES = torch.tensor([100, 10, 1])          # channel digits -> mode number


def load_stacked_mnist(*, root, download, split="train", image_size=32, channels=3) -> ImageData:
    """Stacked MNIST (Metz et al. 2016): three random MNIST digits as the colour channels, 1000 modes."""
    if channels != 3:
        raise GanzooError(f"Stacked MNIST images have one digit per colour channel; use --channels 3, "
                          f"not {channels}.")
    mnist = load_dataset("mnist", root=root, split=split, image_size=28, channels=1, download=download)
    g = torch.Generator().manual_seed(SPLIT_SEED.get(split, 2))
    idx = torch.randint(len(mnist), (SPLIT_SIZE.get(split, len(mnist)), 3), generator=g)   # [N, 3] digit images
    images = rearrange(mnist.images[idx], "n c 1 h w -> n c h w")                       # [N, 3, 28, 28]
    labels = mnist.labels[idx] @ PLACES                                                 # [N] mode in 0..999
    return ImageData(images.contiguous(), labels, name="stackedmnist")


def channel_digits(samples: Samples) -> torch.Tensor:
    """The evaluator's digit for each channel of each sample: [N, 3] (computed once per Samples)."""
    if samples.channels != 3:
        raise GanzooError(f"Stacked MNIST mode counting needs 3-channel samples; these have {samples.channels}.")

    samples.note(features=f"{NAME}: its digit for each channel", features_sha256=file_sha256(WEIGHTS),
                 resize=RESIZE, input_range=INPUT_RANGE)

    def label() -> torch.Tensor:
        grey = rearrange(samples.images, "n c h w -> (n c) 1 h w")                       # each channel a digit
        _, probs = evaluator_for(samples).score(grey, console=samples.console)
        return rearrange(probs.argmax(1), "(n c) -> n c", c=3)

    return samples.memo("stacked_digits", label)


def stacked_modes(samples: Samples) -> dict[str, float]:
    """Stacked MNIST modes covered out of 1000 and KL(mode histogram || uniform), channels labelled by the evaluator."""
    covered, kl = class_histogram_kl(channel_digits(samples) @ PLACES, 1000)
    return {"modes_covered": covered, "mode_kl": kl}


@hookimpl
def register_datasets(register):
    register("stackedmnist", load_stacked_mnist, image_size=32, channels=3)


@hookimpl
def register_metrics(register):
    register("stacked_modes", stacked_modes, datasets=("stackedmnist",), n=25_600,
             better={"modes_covered": "higher", "mode_kl": "lower"})
