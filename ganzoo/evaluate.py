"""Evaluation: draw samples from a generator, score them with registered metrics, compare with real data.

The metric registry is filled through the `register_metrics` hook (see ganzoo.hookspecs).
A metric is a callable taking a `Samples` and returning named numbers:

    def my_metric(samples: Samples) -> dict[str, float]: ...

The engine here knows no metric by name. It gives metrics what they share:
- `generate_images`: a generator's samples as uint8 images, in batches under inference mode;
- `Samples.reference`: features of the real reference images (the dataset's test split, brought
  to the samples' resolution by ganzoo.data.prepare_images as training data is), cached on disk;
- `frechet_distance` (from statistics), `frechet_distance_of_features` and `kernel_distance`: the
  two-sample statistics behind FID and KID.

Two calls score anything; `ganzoo eval` and `ganzoo compare` are built on them:

    scores = evaluate("runs/dcgan-mnist/dcgan.safetensors", n=10000)   # {"mnist_fd": ..., ...}
    floor = evaluate_real(data="mnist", image_size=32, channels=1, n=10000)

`evaluate_real` scores real training images exactly as `evaluate` scores generated ones,
so a table always shows the floor a perfect generator would reach.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import scipy.linalg
import torch
from rich.console import Console
from rich.table import Table
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .checkpoint import load_generator
from .files import atomic_write
from .config import EVAL_N, RunConfig
from . import data as data_module
from .data import cache_dir, load_dataset
from .device import select_device
from .errors import GanzooError
from .plugins import Registries, registries
from .sampling import classes, progress, sample

DEFAULT_N = EVAL_N          # what an evaluation draws unless its metrics ask for more (ganzoo.config)


# -- samples ----------------------------------------------------------------------------------------

def generate_images(generator: nn.Module, config: RunConfig, n: int, *, seed: int = 0, batch_size: int = 500,
                    console: Console | None = None) -> torch.Tensor:
    """n samples of `generator` as uint8 [n, C, H, W] on the CPU, from the seeded latents
    (ganzoo.sampling.sample: eval mode, inference mode, the generator's mode restored)."""
    return sample(generator, config, n, seed=seed, batch_size=batch_size, uint8=True, console=console,
                  description=f"sampling {config.model}")


@dataclass
class Reference:
    """Features of the real reference images and their Gaussian statistics (float64)."""

    features: torch.Tensor      # [N, D] float32
    mu: np.ndarray              # [D]
    sigma: np.ndarray           # [D, D]


@dataclass
class Samples:
    """What a metric scores: images, and where the real data they are compared with comes from.

    images: uint8 [N, C, H, W] on the CPU (generated, or real for the floor row).
    data / data_dir / download: the registered dataset whose test split is the reference.
    options: metric options from the command line (e.g. {"inception_weights": path}).
    console: where long work shows a progress bar (None: no bar).
    labels: int64 [N], the class each image was drawn as (a conditional generator's requested classes, or
            real images' labels); None when there are none.
    """

    images: torch.Tensor
    data: str
    data_dir: str | None = None
    download: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    console: Console | None = None
    labels: torch.Tensor | None = None
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise GanzooError(f"Samples must be uint8 images [N, C, H, W], got {self.images.dtype} "
                              f"{tuple(self.images.shape)}.")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """compute() once per Samples: metrics sharing a network's features run it once."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def reference(self, feature_id: str, features: Callable[[torch.Tensor], torch.Tensor]) -> Reference:
        """Features of the reference images (the dataset's test split at these samples' size and channels).

        `features` maps uint8 images [B, C, H, W] to a float tensor [B, D];
        `feature_id` names the feature network and its weights (a content hash):
        the result is cached under ganzoo.data.cache_dir()/eval, keyed by it, the
        dataset, its folder and the resolution.
        """
        return self.memo(f"reference:{feature_id}", lambda: reference_features(
            feature_id, features, data=self.data, data_dir=self.data_dir, image_size=self.image_size,
            channels=self.channels, download=self.download, console=self.console))


# -- statistics -------------------------------------------------------------------------------------

@functools.cache
def file_id(path: str | Path) -> str:
    """A short content hash of a feature network's weights file: cached real-data statistics are keyed by it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def gaussian_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (unbiased) of features [N, D], in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise GanzooError(f"Statistics need at least two feature vectors [N, D], got shape {x.shape}.")
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):

        ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))

    (Dowson & Landau 1982; the FID of Heusel et al. 2017 on Inception features).
    A near-singular product gets eps on the diagonal; round-off imaginary parts are dropped.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise GanzooError(f"Statistics of different shapes: mean {mu1.shape} vs {mu2.shape}, "
                          f"covariance {sigma1.shape} vs {sigma2.shape}.")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)   # singular: retry below, do not print
        try:
            covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        except scipy.linalg.LinAlgWarning:
            covmean = np.full_like(sigma1, np.nan)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real  # round-off: the product of two PSD matrices has a real square root
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance_of_features(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """The Fréchet distance between the Gaussians fitted to features x [N, D] and y [M, D].

    When a set is smaller than the dimension (a few hundred 2048-d Inception features), the
    covariances have low rank and the distance comes from the features, exactly, without a D x D
    matrix square root: with A, B the centred features, sigma1 = A'A / (N - 1), sigma2 = B'B / (M - 1),
    and the non-zero eigenvalues of sigma1 sigma2 are the squared singular values of
    A B' / sqrt((N - 1)(M - 1)), so tr((sigma1 sigma2)^(1/2)) is that N x M matrix's nuclear norm
    (milliseconds, where a 2048 x 2048 square root takes minutes on a CPU; no eps needed for the
    singular covariances). Otherwise it is `frechet_distance` of their statistics.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise GanzooError(f"The Fréchet distance needs two sets of at least two feature vectors of one dimension, "
                          f"got shapes {x.shape} and {y.shape}.")
    if min(len(x), len(y)) >= x.shape[1]:
        return frechet_distance(*gaussian_statistics(x), *gaussian_statistics(y))
    a, b = x - x.mean(0), y - y.mean(0)
    diff = x.mean(0) - y.mean(0)
    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / math.sqrt((len(x) - 1) * (len(y) - 1))
    return float(diff @ diff + (a * a).sum() / (len(x) - 1) + (b * b).sum() / (len(y) - 1) - 2 * cross)


def kernel_distance(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray, *, subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / D + 1)^3 (KID, Binkowski et al. 2018).

    Averaged over `subsets` random subsets of `subset_size` from each side (the
    published protocol); returns (mean, standard deviation over subsets).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise GanzooError("The kernel distance needs at least two samples on each side.")
    rng = np.random.default_rng(seed)
    d = x.shape[1]

    def kernel(a, b):
        k = a @ b.T / d + 1
        return k * k * k                                        # ** 3 is several times slower on large arrays

    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx, kyy, kxy = kernel(a, a), kernel(b, b), kernel(a, b)
        # off-diagonal means for the within-set terms: the unbiased estimator
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(within - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def class_histogram_kl(labels: torch.Tensor, classes: int) -> tuple[int, float]:
    """(classes covered, KL(label histogram || uniform over `classes`)) in nats.

    The mode-collapse measure of Metz et al. 2016 / VEEGAN / PacGAN: 0 for a
    perfectly uniform histogram, log(classes) when one class takes everything.
    """
    counts = torch.bincount(labels.flatten().long(), minlength=classes).double()
    p = counts / counts.sum()
    nz = p > 0
    kl = (p[nz] * torch.log(p[nz] * classes)).sum().item()
    return int(nz.sum()), float(kl)


# -- real data -------------------------------------------------------------------------------------

def real_images(data: str, *, split: str, image_size: int, channels: int, data_dir: str | None = None,
                download: bool = True, n: int | None = None, seed: int = 0, with_labels: bool = False):
    """n images of a dataset split (a seeded random subset; all when n is None), as training sees them: uint8
    (and, with_labels, their labels: int64 [n] or None)."""
    loaded = load_dataset(data, root=data_dir, split=split, image_size=image_size, channels=channels,
                          download=download)
    images, labels = loaded.images, loaded.labels
    if n is not None and n < len(images):
        picked = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
        images, labels = images[picked], labels[picked] if labels is not None else None
    return (images, labels) if with_labels else images


def _cache_name(*parts: object) -> str:
    text = "-".join(str(p) for p in parts)
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.safetensors"


def reference_features(feature_id: str, features: Callable[[torch.Tensor], torch.Tensor], *, data: str,
                       image_size: int, channels: int, data_dir: str | None = None, split: str = "test",
                       download: bool = True, batch_size: int = 500, console: Console | None = None) -> Reference:
    """Features and statistics of a dataset split at a resolution, computed once and cached on disk."""
    folder = str(Path(data_dir).resolve()) if data_dir else ""
    path = cache_dir() / "eval" / _cache_name(feature_id, data, split, f"{image_size}px", f"{channels}ch", folder,
                                              data_module.PREPARATION)
    if path in _REFERENCES and path.is_file():     # training evals and compare's curve points ask again and again
        return _REFERENCES[path]
    if path.is_file():
        try:
            t = load_file(str(path))
            _REFERENCES[path] = Reference(t["features"], t["mu"].numpy(), t["sigma"].numpy())
            return _REFERENCES[path]
        except (SafetensorError, OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed, never trusted
    images = real_images(data, split=split, image_size=image_size, channels=channels, data_dir=data_dir,
                         download=download)
    parts = progress(images.split(batch_size), f"real {data} ({split}) statistics",
                     math.ceil(len(images) / batch_size), console)
    feats = torch.cat([features(part).float().cpu() for part in parts])
    mu, sigma = gaussian_statistics(feats)
    tensors = {"features": feats.contiguous(), "mu": torch.from_numpy(mu), "sigma": torch.from_numpy(sigma)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"feature_id": feature_id, "data": data}))
    _REFERENCES[path] = Reference(feats, mu, sigma)
    return _REFERENCES[path]


_REFERENCES: dict[Path, Reference] = {}   # reference_features' cache files, as read in this process


# -- choosing and running metrics ---------------------------------------------------------------------

def default_metrics(data: str, channels: int, regs: Registries | None = None) -> list[str]:
    """The metrics a dataset is scored with when none are named.

    Those the dataset declares (``register(..., metrics=("a", "b"))``); failing that, metrics that name the dataset in their `datasets` (e.g. the MNIST evaluator's
    for "mnist"); failing that, for colour images, the metrics registered for any
    dataset (`datasets=None`: Inception FID/KID).
    """
    regs = regs or registries()
    declared = regs.datasets.get(data).info.get("metrics") if data in regs.datasets else None
    if declared:                                   # the dataset's own choice (register(..., metrics=...))
        for name in declared:
            regs.metrics.get(name)                 # a sentence with the closest name
        return list(declared)
    named = [e.name for e in regs.metrics if data in (e.info.get("datasets") or ())]
    if named:
        return named
    if channels == 3:
        generic = [e.name for e in regs.metrics if e.info.get("datasets") is None]
        if generic:
            return generic
    raise GanzooError(f"No metric is registered for the dataset {data!r} with {channels} channel(s); name some "
                      f"with --metrics (see `ganzoo list`).")


def resolve_metrics(metrics: Iterable[str] | str | None, data: str, channels: int,
                    options: dict[str, Any] | None = None, regs: Registries | None = None
                    ) -> list[tuple[str, Callable]]:
    """(name, metric) pairs for names (a list, or "a,b"), or the dataset's defaults; each metric's check() runs.

    A metric may define check(options) to fail fast, before any sample is drawn
    (e.g. Inception weights missing).
    """
    regs = regs or registries()
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    names = list(metrics) if metrics else default_metrics(data, channels, regs)
    chosen = []
    for name in dict.fromkeys(names):
        metric = regs.metrics.get(name).factory
        check = getattr(metric, "check", None)
        if check is not None:
            check(options or {})
        chosen.append((name, metric))
    return chosen


def default_n(metrics: list[tuple[str, Callable]], regs: Registries | None = None) -> int:
    """The largest sample count the chosen metrics ask for (e.g. 25,600 for Stacked MNIST modes)."""
    regs = regs or registries()
    return max([regs.metrics.get(name).info.get("n", DEFAULT_N) for name, _ in metrics] + [DEFAULT_N])


def score(samples: Samples, metrics: list[tuple[str, Callable]]) -> dict[str, float]:
    """Run each metric on the samples; their named numbers, in order."""
    scores: dict[str, float] = {}
    for name, metric in metrics:
        result = metric(samples)
        if not isinstance(result, dict):
            raise GanzooError(f"Metric {name!r} returned {type(result).__name__}, not a dict of named numbers.")
        scores.update({k: float(v) for k, v in result.items()})
    return scores


def evaluate(generator: str | Path | nn.Module, *, config: RunConfig | None = None,
             metrics: Iterable[str] | str | None = None, n: int | None = None, data: str | None = None,
             data_dir: str | None = None, download: bool = True, device: str | torch.device = "auto",
             seed: int = 0, options: dict[str, Any] | None = None, console: Console | None = None) -> dict[str, float]:
    """Score a generator: draw n samples (fixed seed), run the metrics on them, return {name: value}.

    generator: a weights file written by `ganzoo run` (generator file or checkpoint),
        or a generator module together with its RunConfig as `config`.
    metrics: registered metric names (list or "a,b"); default: the dataset's (see default_metrics).
    n: samples to draw; default: the largest the metrics ask for (10,000; 25,600 for Stacked MNIST modes).
    data, data_dir: the dataset whose real test split is the reference; default: the run's.
    options: metric options, e.g. {"inception_weights": "path/to/fid_inception.safetensors"}.
    """
    device = device if isinstance(device, torch.device) else select_device(device)
    if isinstance(generator, (str, Path)):
        generator, config = load_generator(generator, device)
    elif config is None:
        raise GanzooError("evaluate() needs the RunConfig of a generator module: evaluate(G, config=config).")
    data = data or config.data
    data_dir = data_dir if data_dir is not None else (config.stored_data_dir() if data == config.data else None)
    chosen = resolve_metrics(metrics, data, config.channels, options)
    n = n or default_n(chosen)
    if n < 2:
        raise GanzooError(f"-n must be at least 2, got {n}.")
    images = generate_images(generator, config, n, seed=seed, console=console)
    samples = Samples(images, data, data_dir, download, device, dict(options or {}), label=config.model,
                      console=console, labels=classes(config, range(n)))       # the classes sample i was drawn as
    return score(samples, chosen)


def evaluate_real(*, data: str, image_size: int, channels: int, metrics: Iterable[str] | str | None = None,
                  n: int | None = None, split: str = "train", data_dir: str | None = None, download: bool = True,
                  device: str | torch.device = "auto", seed: int = 0, options: dict[str, Any] | None = None,
                  console: Console | None = None, labelled: bool = False) -> dict[str, float]:
    """Score n real images of `split` (a seeded random subset) exactly as `evaluate` scores generated ones.

    The training split against the test-split reference: the floor of every
    metric, the row a reader compares a generator with. `labelled`: the metrics see the images' labels too
    (the row beside a conditional generator, whose samples carry the classes they were drawn as).
    """
    device = device if isinstance(device, torch.device) else select_device(device)
    chosen = resolve_metrics(metrics, data, channels, options)
    n = n or default_n(chosen)
    images, labels = real_images(data, split=split, image_size=image_size, channels=channels, data_dir=data_dir,
                                 download=download, n=n, seed=seed, with_labels=True)
    samples = Samples(images, data, data_dir, download, device, dict(options or {}), label=f"real ({split})",
                      console=console, labels=labels if labelled else None)
    return score(samples, chosen)


# -- showing results ---------------------------------------------------------------------------------

def better(name: str, regs: Registries | None = None) -> str:
    """'lower', 'higher' or '' for a score name, as its metric registered it (`better={...}`)."""
    for entry in (regs or registries()).metrics:
        if name in (entry.info.get("better") or {}):
            return entry.info["better"][name]
    return ""


def format_value(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def format_scores(scores: dict[str, float]) -> str:
    """One line: 'mnist_fd 3.21  mnist_score 9.1 ...'."""
    return "  ".join(f"{k} {format_value(v)}" for k, v in scores.items())


def metrics_table(rows: dict[str, dict[str, float]], title: str = "evaluation") -> Table:
    """A rich table: one row per number (its name with an arrow saying which way is better), one column
    per scored thing (generators, the real-data floor). Names stay whole at 80 columns, however many."""
    names = list(dict.fromkeys(k for scores in rows.values() for k in scores))
    arrows = {"lower": " ↓", "higher": " ↑"}
    table = Table(title=title, title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    for label in rows:
        table.add_column(label, justify="right", style="dim" if label.startswith("real") else None)
    for name in names:
        table.add_row(name + arrows.get(better(name), ""),
                      *(format_value(scores[name]) if name in scores else "-" for scores in rows.values()))
    return table
