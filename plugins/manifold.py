"""Precision, recall, density, coverage and memorisation as metrics, in the feature space that suits the data:
the MNIST evaluator's for MNIST (`mnist_prdc`, `mnist_memorisation`), the FID Inception's for colour data
(`prdc`, `memorisation`). The statistics themselves are ganzoo.neighbours'.

- prdc: improved precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020), k = 5,
  against as many real test images as there are samples (a seeded subset when the test split is larger: the k-NN
  radii shrink as a set grows, so both sets are the same size, as both papers score them).
- memorisation: each sample's distance to its nearest training image, against the same for every held-out (test)
  image; `memorised` is the share of samples closer to a training image than any held-out image is. Not run by
  default: it reads the whole training split's features (60,000 MNIST digits: seconds with the evaluator; with
  Inception a GPU's work). The 8 samples closest to a training image are left as an exhibit that `ganzoo eval`
  and `ganzoo compare` draw beside their nearest training image.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ganzoo.api import NEAREST_K, FeatureSpace, GanzooError, Samples, hookimpl, memorisation, prdc, real_images

from .inception import check_options, inception_space
from .mnist_metrics import evaluator_features, evaluator_space

REAL_SUBSET_SEED = 0
CLOSEST = 8


def inception_features(samples: Samples) -> torch.Tensor:
    return samples.features(inception_space(samples))


class NeighbourMetric:
    """A statistic of the samples' features against real features, in one feature space."""

    def __init__(self, space: Callable[[Samples], FeatureSpace], features: Callable[[Samples], torch.Tensor],
                 check: Callable[[dict], None] | None = None):
        self.space, self.features = space, features
        if check is not None:
            self.check = check


def matched_real(real: torch.Tensor, n: int) -> torch.Tensor:
    """As many real feature vectors as there are samples: a subset seeded with REAL_SUBSET_SEED, in the
    reference's order (all of them when there are not more than n)."""
    if len(real) <= n:
        return real
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(REAL_SUBSET_SEED))[:n]
    return real[pick.sort().values]


class PrecisionRecall(NeighbourMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020), k=5."""

    def __call__(self, samples: Samples) -> dict[str, float]:
        space = self.space(samples)
        fake = self.features(samples)
        reference = samples.reference(space).features
        real = matched_real(reference, len(fake))
        if len(real) < len(reference):
            samples.note(real_subset_seed=REAL_SUBSET_SEED)
        samples.note(n_real=len(real), k=NEAREST_K)
        return prdc(real, fake, NEAREST_K)


_HELDOUT: dict[tuple[str, str, str], np.ndarray] = {}   # held-out images' distances to the training set


class Memorisation(NeighbourMetric):
    """Whether G copies training images: each sample's nearest-training-image distance against held-out images'."""

    def __call__(self, samples: Samples) -> dict[str, float]:
        space = self.space(samples)
        fake = self.features(samples)
        train = samples.reference(space, split=samples.train_split)
        heldout = samples.reference(space)                          # the test split: images G never saw
        if train.images_sha256 == heldout.images_sha256:
            raise GanzooError(f"Memorisation needs held-out images apart from the training ones; {samples.data}'s "
                              f"{samples.train_split} and test splits are the same images.")
        samples.note(train=f"{samples.data} {samples.train_split} split", n_train=len(train.features),
                     train_sha256=train.images_sha256)
        key = (space.key, train.images_sha256, heldout.images_sha256)
        found = memorisation(fake, train.features, heldout.features, heldout_distances=_HELDOUT.get(key))
        _HELDOUT[key] = found.heldout_distances
        closest = found.closest(CLOSEST)
        pool = real_images(samples.data, split=samples.train_split, image_size=samples.image_size,
                           channels=samples.channels, data_dir=samples.data_dir, download=samples.download)
        samples.exhibits["memorisation"] = {
            "samples": samples.images[torch.from_numpy(closest)], "sample_index": closest.tolist(),
            "nearest": pool[torch.from_numpy(found.nearest_train[closest])],
            "train_index": found.nearest_train[closest].tolist(),
            "distances": found.sample_distances[closest].tolist(), "threshold": found.threshold,
            "label": samples.label or samples.source}
        return found.scores()


@hookimpl
def register_metrics(register):
    precision_recall = {"precision": "higher", "recall": "higher", "density": "higher", "coverage": "higher"}
    # (name prefix, datasets, the space in prdc's and memorisation's words, the space, its features, options check)
    spaces = (("mnist_", ("mnist",), ("the MNIST evaluator's features", "MNIST evaluator features"), evaluator_space,
               evaluator_features, ()),
              ("", None, ("Inception features", "Inception features"), inception_space, inception_features,
               (check_options,)))
    for prefix, datasets, (prdc_words, memorisation_words), space, features, checks in spaces:
        register(f"{prefix}prdc", PrecisionRecall(space, features, *checks), datasets=datasets, better=precision_recall,
                 description=f"precision, recall (Kynkäänniemi 2019), density, coverage (Naeem 2020) on "
                             f"{prdc_words}, k=5")
    for prefix, datasets, (prdc_words, memorisation_words), space, features, checks in spaces:
        register(f"{prefix}memorisation", Memorisation(space, features, *checks), datasets=datasets, default=False,
                 description=f"memorised: share of samples nearer a training image than any test image is "
                             f"({memorisation_words}); train_distance_ratio")
