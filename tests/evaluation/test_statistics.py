"""The two-sample statistics behind every metric, against closed forms."""

import math

import numpy as np
import pytest
import torch

from ganzoo import GanzooError
from ganzoo.evaluate import (class_histogram_kl, frechet_distance, frechet_distance_of_features, gaussian_statistics,
                             kernel_distance)


def _spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d) * 0.1


def _psd_sqrt(m):
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def test_frechet_one_dimension():
    # N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [-1.0], [[9.0]]) == pytest.approx(4 + 1)


def test_frechet_diagonal_and_commuting_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))                           # same eigenvectors: still closed form
    assert frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T) == pytest.approx(expected, rel=1e-8)


def test_frechet_general_covariances_match_the_symmetric_form():
    # tr((S1 S2)^1/2) = tr((S1^1/2 S2 S1^1/2)^1/2), computed here by eigendecompositions only
    rng = np.random.default_rng(1)
    s1, s2 = _spd(rng, 8), _spd(rng, 8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    r = _psd_sqrt(s1)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(_psd_sqrt(r @ s2 @ r))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-8)


def test_frechet_from_samples_of_two_known_gaussians():
    rng = np.random.default_rng(2)
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 1.0, 0.0])
    s1, s2 = np.diag([1.0, 2.0, 0.5]), np.diag([2.0, 0.5, 0.5])
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    expected = 0.25 + 1 + (1 - math.sqrt(2)) ** 2 + (math.sqrt(2) - math.sqrt(0.5)) ** 2
    got = frechet_distance(*gaussian_statistics(x), *gaussian_statistics(torch.from_numpy(y)))
    assert got == pytest.approx(expected, abs=0.03)


def test_frechet_from_features():
    # low rank (N < D, as 2048-d Inception features of a few samples): against the symmetric form
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(6, 40)), rng.normal(0.3, 1.5, size=(9, 40))
    (mu1, s1), (mu2, s2) = gaussian_statistics(x), gaussian_statistics(y)
    r = _psd_sqrt(s1)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(_psd_sqrt(r @ s2 @ r))
    assert frechet_distance_of_features(x, y) == pytest.approx(expected, rel=1e-7)   # eigh of near-singular: 1e-8
    assert frechet_distance_of_features(torch.from_numpy(x), x) == pytest.approx(0, abs=1e-9)
    # full rank: samples of two known Gaussians, against the closed form
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 1.0, 0.0])
    x = rng.multivariate_normal(mu1, np.diag([1.0, 2.0, 0.5]), size=20_000)
    y = rng.multivariate_normal(mu2, np.diag([2.0, 0.5, 0.5]), size=20_000)
    closed = 0.25 + 1 + (1 - math.sqrt(2)) ** 2 + (math.sqrt(2) - math.sqrt(0.5)) ** 2
    assert frechet_distance_of_features(x, y) == pytest.approx(closed, abs=0.05)
    with pytest.raises(GanzooError, match="two sets of at least two"):
        frechet_distance_of_features(x[:1], y)


def test_frechet_with_singular_covariances_stays_finite():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 3)) @ np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 0]])   # rank 2: a dead feature
    mu, sigma = gaussian_statistics(x)
    d = frechet_distance(mu, sigma, mu + 1, sigma)
    assert d == pytest.approx(3, abs=1e-4)
    with pytest.raises(GanzooError, match="different shapes"):
        frechet_distance(mu, sigma, mu[:2], sigma[:2, :2])


def test_kernel_distance_matches_the_cubic_kernel_closed_form():
    # 1-D, k(a, b) = (ab + 1)^3 = a^3 b^3 + 3 a^2 b^2 + 3 ab + 1, so
    # MMD^2 = (E x^3 - E y^3)^2 + 3 (E x^2 - E y^2)^2 + 3 (E x - E y)^2.
    # x ~ N(0, 1): moments 0, 1, 0; y ~ N(0.5, 1): 0.5, 1.25, 0.5^3 + 3 * 0.5.
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(20_000, 1)), rng.normal(0.5, 1, size=(20_000, 1))
    expected = 1.625 ** 2 + 3 * 0.25 ** 2 + 3 * 0.25
    mean, std = kernel_distance(x, y, subsets=40, subset_size=1000)
    assert mean == pytest.approx(expected, rel=0.1)
    assert 0 < std < expected
    same, _ = kernel_distance(x, rng.normal(size=(20_000, 1)), subsets=40, subset_size=1000)
    assert abs(same) < 0.02 * expected                                      # unbiased: near zero, either sign


def test_class_histogram_kl():
    assert class_histogram_kl(torch.arange(10).repeat(7), 10) == (10, pytest.approx(0, abs=1e-12))
    assert class_histogram_kl(torch.full((100,), 3), 10) == (1, pytest.approx(math.log(10)))
    covered, kl = class_histogram_kl(torch.tensor([0, 0, 1, 1]), 4)
    assert covered == 2 and kl == pytest.approx(math.log(2))
