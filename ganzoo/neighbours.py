"""Nearest-neighbour statistics in a feature space: improved precision and recall, density and coverage, and
memorisation.

- `prdc`: precision and recall of Kynkäänniemi et al. 2019 (is each sample inside the real images' k-NN balls;
  is each real image inside the samples' balls) and density and coverage of Naeem et al. 2020 (how many real
  balls hold each sample; which real balls hold any sample), as the reference `prdc` package computes them.
- `memorisation`: each sample's distance to its nearest training image against the same distance for
  held-out real images; a sample closer to the training set than any held-out image is flagged.

Distances are Euclidean in float64, computed the way scikit-learn's (and so prdc's) are: |x|^2 - 2 x.y + |y|^2,
clipped at 0, then the square root; rows are taken in blocks, so 10,000 x 60,000 distances never sit in memory
at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .errors import GanzooError

NEAREST_K = 5          # the k of both papers (and of prdc's examples)
BLOCK_BYTES = 1 << 27  # one block of a distance matrix: at most 128 MiB of float64


def _array(x) -> np.ndarray:
    x = x.numpy() if isinstance(x, torch.Tensor) else x
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise GanzooError(f"Nearest-neighbour statistics need features [N, D], got shape {x.shape}.")
    return x


def distance_blocks(x: np.ndarray, y: np.ndarray, *, same: bool = False) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, Euclidean distances of x[rows] to every y) block by block; `same`: x is y, its diagonal is 0."""
    block = max(1, min(len(x), BLOCK_BYTES // (8 * max(1, len(y)))))
    yy = np.einsum("ij,ij->i", y, y)[None, :]
    for start in range(0, len(x), block):
        rows = slice(start, min(start + block, len(x)))
        part = x[rows]
        d = -2 * (part @ y.T)
        d += np.einsum("ij,ij->i", part, part)[:, None]
        d += yy
        np.maximum(d, 0, out=d)
        if same:
            d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = 0
        yield rows, np.sqrt(d, out=d)


def knn_radii(x: np.ndarray, k: int = NEAREST_K) -> np.ndarray:
    """Each point's distance to its k-th nearest neighbour in its own set (itself not counted) [N]."""
    if len(x) <= k:
        raise GanzooError(f"The k-nearest-neighbour radii need more than k={k} points, got {len(x)}.")
    radii = np.empty(len(x))
    for rows, d in distance_blocks(x, x, same=True):
        radii[rows] = np.partition(d, k, axis=1)[:, k]      # the (k+1)-th smallest: itself (0) comes first
    return radii


def prdc(real, fake, k: int = NEAREST_K) -> dict[str, float]:
    """Improved precision and recall, density and coverage of `fake` features [M, D] against `real` [N, D].

    precision: the share of fake points inside some real point's k-NN ball;
    recall: the share of real points inside some fake point's k-NN ball;
    density: (1 / kM) * the number of (real ball, fake point) pairs with the point inside the ball;
    coverage: the share of real balls holding at least one fake point.
    A point is inside a ball when its distance is strictly below the radius.
    """
    real, fake = _array(real), _array(fake)
    if real.shape[1] != fake.shape[1]:
        raise GanzooError(f"Real and fake features differ in dimension: {real.shape[1]} vs {fake.shape[1]}.")
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    inside_count = np.zeros(len(fake))                  # how many real balls hold each fake point
    recalled = np.zeros(len(real), dtype=bool)
    covered = np.zeros(len(real), dtype=bool)
    for rows, d in distance_blocks(real, fake):         # d: [real block, M]
        inside = d < real_radii[rows, None]
        inside_count += inside.sum(0)
        recalled[rows] = (d < fake_radii[None, :]).any(1)
        covered[rows] = d.min(1) < real_radii[rows]
    return {"precision": float((inside_count > 0).mean()), "recall": float(recalled.mean()),
            "density": float(inside_count.sum() / (k * len(fake))), "coverage": float(covered.mean())}


def nearest(x, pool) -> tuple[np.ndarray, np.ndarray]:
    """Each x's distance to its nearest point of `pool` and that point's index: ([N], [N])."""
    x, pool = _array(x), _array(pool)
    distances, indices = np.empty(len(x)), np.empty(len(x), dtype=np.int64)
    for rows, d in distance_blocks(x, pool):
        indices[rows] = d.argmin(1)
        distances[rows] = d[np.arange(d.shape[0]), indices[rows]]
    return distances, indices


@dataclass
class Memorisation:
    """What `memorisation` finds."""

    sample_distances: np.ndarray        # [N] each sample's distance to its nearest training image
    nearest_train: np.ndarray           # [N] that image's index in the training set
    heldout_distances: np.ndarray       # [M] the same for each held-out real image

    @property
    def threshold(self) -> float:
        """The smallest distance any held-out image has to the training set."""
        return float(self.heldout_distances.min())

    @property
    def flagged(self) -> np.ndarray:
        """[N] whether each sample is closer to a training image than any held-out image is."""
        return self.sample_distances < self.threshold

    def scores(self) -> dict[str, float]:
        """memorised: the flagged share of samples (a generator that generalises: about 1 / (M + 1));
        train_distance_ratio: median sample distance over median held-out distance to the training set
        (near 1: samples sit as far from the training images as unseen real images do; well below 1: copies)."""
        median_heldout = float(np.median(self.heldout_distances))
        ratio = float(np.median(self.sample_distances)) / median_heldout if median_heldout > 0 else float("nan")
        return {"memorised": float(self.flagged.mean()), "train_distance_ratio": ratio}

    def closest(self, count: int = 8) -> np.ndarray:
        """Indices of the `count` samples closest to a training image, closest first."""
        return np.argsort(self.sample_distances, kind="stable")[:count]


def memorisation(samples, train, heldout=None, *, heldout_distances: np.ndarray | None = None) -> Memorisation:
    """Distances of samples [N, D] and held-out real images [M, D] to their nearest training image [T, D]
    (`heldout_distances`: those of the held-out images, computed before)."""
    sample_distances, nearest_train = nearest(samples, train)
    if heldout_distances is None:
        if heldout is None:
            raise GanzooError("Memorisation needs the held-out images' features (or their distances).")
        heldout_distances, _ = nearest(heldout, train)
    return Memorisation(sample_distances, nearest_train, heldout_distances)


def draw_closest(exhibit: dict, path, title: str | None = None):
    """The memorisation metric's exhibit as a PNG: the samples closest to a training image (top row) above their
    nearest training images (bottom row), each pair labelled with its distance."""
    from .analysis.common import board, save_png, view_scale
    from .data import to_model_range

    samples, nearest_images = to_model_range(exhibit["samples"]), to_model_range(exhibit["nearest"])
    labels = [f"{d:.3g}" for d in exhibit["distances"]]
    heading = title or f"{exhibit['label']}: the {len(labels)} samples closest to a training image"
    picture = board([list(samples), list(nearest_images)], captions=["sample", "nearest training image"],
                    cell_labels=[labels, [f"#{i}" for i in exhibit["train_index"]]],
                    scale=view_scale(samples.shape[-1]),
                    title=[heading, f"distance in feature space; the closest any held-out image comes: "
                                    f"{exhibit['threshold']:.3g} (a smaller distance is flagged as memorised)"])
    return save_png(picture, path)
