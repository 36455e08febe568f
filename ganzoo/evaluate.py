"""Evaluation: draw samples from a generator, score them with registered metrics, compare with real data.

The metric registry is filled through the `register_metrics` hook (see ganzoo.hookspecs).
A metric is a callable taking a `Samples` and returning named numbers:

    def my_metric(samples: Samples) -> dict[str, float]: ...

The engine here knows no metric by name. It gives metrics what they share:
- `generate_images`: a generator's samples as uint8 images, in batches under inference mode;
- `Samples.reference`: features of the real reference images (the dataset's test split, brought
  to the samples' resolution by ganzoo.data.prepare_images as training data is), cached on disk;
- `FeatureSpace`, `Samples.features`, `Samples.note`: a feature network named with its weights' sha256,
  the samples' features in it computed once, and what each metric records in its protocol;
- `frechet_distance` (from statistics), `frechet_distance_of_features` and `kernel_distance`: the
  two-sample statistics behind FID and KID.

Every score comes with its protocol (ganzoo.protocol): `score` returns `Scores`, the numbers with each
metric's protocol in `.protocol`.

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
from safetensors import SafetensorError, safe_open
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
from .runfiles import weights_file
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
    images_sha256: str = ""     # the real images' pixels, as prepared (pixels_sha256)


@dataclass(frozen=True)
class FeatureSpace:
    """A feature network as a protocol names it, and the function that runs it.

    name: what the network is ("FID Inception v3 ..., pool3 2048-d"); weights_sha256: its weights file's
    sha256; resize: how images reach its input size; input_range: how pixels are scaled for it;
    extract: uint8 images [B, C, H, W] -> features [B, D] (float).
    """

    name: str
    weights_sha256: str
    resize: str
    input_range: str
    extract: Callable[[torch.Tensor], torch.Tensor] = field(compare=False, repr=False)
    batch_size: int = field(default=500, compare=False)

    @property
    def key(self) -> str:
        """What cached features in this space are filed under: the network, its weights, the resize."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")[:40]
        return f"{slug}-{self.weights_sha256[:12]}-{re.sub(r'[^a-z0-9]+', '-', self.resize.lower())[:24]}"

    def protocol(self) -> dict[str, str]:
        return {"features": self.name, "features_sha256": self.weights_sha256, "resize": self.resize,
                "input_range": self.input_range}


def feature_space(name: str, samples: "Samples", regs: Registries | None = None) -> FeatureSpace:
    """The registered feature space `name` ("mnist_evaluator", "inception", ...) built for these samples: what a
    metric plugin passes to `samples.features(space)` and `samples.reference(space)`."""
    space = (regs or registries()).feature_spaces.get(name).factory(samples)
    if not isinstance(space, FeatureSpace):
        raise GanzooError(f"Feature space {name!r} built a {type(space).__name__}, not a ganzoo.api.FeatureSpace.")
    return space


@dataclass
class Samples:
    """What a metric scores: images, and where the real data they are compared with comes from.

    images: uint8 [N, C, H, W] on the CPU (generated, or real for the floor row).
    data / data_dir / download: the registered dataset whose test split is the reference.
    options: metric options from the command line (e.g. {"inception_weights": path, "resize": "tf"}).
    console: where long work shows a progress bar (None: no bar).
    labels: int64 [N], the class each image was drawn as (a conditional generator's requested classes, or
            real images' labels); None when there are none.
    train_split: the split the generator learned from (what memorisation compares with).
    seed, precision, source, generator_sha256: how the images were made, for the protocol (ganzoo.protocol)
            of every score; `evaluate` and `evaluate_real` fill them.
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
    train_split: str = "train"
    seed: int | None = None
    precision: str = "fp32"
    source: str = "images"
    generator_sha256: str | None = None
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)
    _notes: dict[str, Any] = field(default_factory=dict, repr=False)
    exhibits: dict[str, Any] = field(default_factory=dict, repr=False)

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

    def note(self, **settings: Any) -> None:
        """Record settings of the metric now running in its protocol (ganzoo.protocol): a metric notes what
        only it knows (e.g. k=5); the feature helpers below note the network, the resize and the real images."""
        self._notes.update(settings)

    def features(self, space: FeatureSpace) -> torch.Tensor:
        """The samples' features in `space` as float64 [N, D] on the CPU, computed once per Samples (metrics
        sharing a network run it once); the space goes into the running metric's protocol."""
        self.note(**space.protocol())

        def compute() -> torch.Tensor:
            parts = self.images.split(space.batch_size)
            return torch.cat([space.extract(p).double().cpu()
                              for p in progress(parts, f"features ({space.name})", len(parts), self.console)])

        return self.memo(f"features:{space.key}", compute)

    def reference(self, feature_id: str | FeatureSpace, features: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  *, split: str = "test") -> Reference:
        """Features of the reference images (the dataset's `split`, the test split by default, at these samples'
        size and channels), noted in the running metric's protocol.

        Either a FeatureSpace, or `features` mapping uint8 images [B, C, H, W] to a float tensor [B, D] with
        `feature_id` naming the feature network and its weights (a content hash). The result is cached under
        ganzoo.data.cache_dir()/eval, keyed by it, the dataset, its folder and the resolution.
        """
        if isinstance(feature_id, FeatureSpace):
            space, feature_id, features = feature_id, feature_id.key, feature_id.extract
            self.note(**space.protocol())
        reference = self.memo(f"reference:{feature_id}:{split}", lambda: reference_features(
            feature_id, features, data=self.data, data_dir=self.data_dir, image_size=self.image_size,
            channels=self.channels, split=split, download=self.download, console=self.console))
        if split == "test" or "real_split" not in self._notes:
            self.note(real=f"{self.data} {split} split at {self.image_size}x{self.image_size}x{self.channels}",
                      real_split=split, n_real=len(reference.features), real_sha256=reference.images_sha256)
        return reference


# -- statistics -------------------------------------------------------------------------------------

def file_sha256(path: str | Path) -> str:
    """The sha256 of a file (a network's weights: every protocol names them by it); read again when the file
    changes (a run's generator file is rewritten as it trains)."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.cache
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_id(path: str | Path) -> str:
    """A short content hash of a feature network's weights file: cached real-data statistics are keyed by it."""
    return file_sha256(path)[:12]


def pixels_sha256(images: torch.Tensor) -> str:
    """The sha256 of uint8 images' pixels (shape included): which real images a score compared with, exactly."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().numpy().tobytes())
    return digest.hexdigest()


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
    The subsets are drawn as torch-fidelity draws them (numpy's RandomState(seed), x's subset then y's,
    without replacement), so the same seed picks the same subsets and gives the same KID.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise GanzooError("The kernel distance needs at least two samples on each side.")
    rng = np.random.RandomState(seed)
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
                                              data_module.PREPARATION, "v2")
    if path in _REFERENCES and path.is_file():     # training evals and compare's curve points ask again and again
        return _REFERENCES[path]
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as f:
                images_sha256 = (f.metadata() or {})["images_sha256"]
            t = load_file(str(path))
            _REFERENCES[path] = Reference(t["features"], t["mu"].numpy(), t["sigma"].numpy(), images_sha256)
            return _REFERENCES[path]
        except (SafetensorError, OSError, KeyError, ValueError):
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed, never trusted
    images = real_images(data, split=split, image_size=image_size, channels=channels, data_dir=data_dir,
                         download=download)
    parts = progress(images.split(batch_size), f"real {data} ({split}) features",
                     math.ceil(len(images) / batch_size), console)
    feats = torch.cat([features(part).float().cpu() for part in parts])
    mu, sigma = gaussian_statistics(feats)
    digest = pixels_sha256(images)
    tensors = {"features": feats.contiguous(), "mu": torch.from_numpy(mu), "sigma": torch.from_numpy(sigma)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={"feature_id": feature_id, "data": data,
                                                                          "images_sha256": digest}))
    _REFERENCES[path] = Reference(feats, mu, sigma, digest)
    return _REFERENCES[path]


_REFERENCES: dict[Path, Reference] = {}   # reference_features' cache files, as read in this process


# -- choosing and running metrics ---------------------------------------------------------------------

def default_metrics(data: str, channels: int, regs: Registries | None = None) -> list[str]:
    """The metrics a dataset is scored with when none are named.

    Those the dataset declares (``register(..., metrics=("a", "b"))``); failing that, metrics that name the dataset in their `datasets` (e.g. the MNIST evaluator's
    for "mnist"); failing that, for colour images, the metrics registered for any
    dataset (`datasets=None`: Inception FID/KID, precision/recall/density/coverage).
    Metrics registered with default=False (memorisation) run only when named.
    """
    regs = regs or registries()
    declared = regs.datasets.get(data).info.get("metrics") if data in regs.datasets else None
    if declared:                                   # the dataset's own choice (register(..., metrics=...))
        for name in declared:
            regs.metrics.get(name)                 # a sentence with the closest name
        return list(declared)
    named = [e.name for e in regs.metrics if data in (e.info.get("datasets") or ()) and e.info.get("default", True)]
    if named:
        return named
    if channels == 3:
        generic = [e.name for e in regs.metrics if e.info.get("datasets") is None and e.info.get("default", True)]
        if generic:
            return generic
    raise GanzooError(f"No metric is registered for the dataset {data!r} with {channels} channel(s); name some "
                      f"with --metrics (see `ganzoo list`).")


def resolve_metrics(metrics: Iterable[str] | str | None, data: str, channels: int,
                    options: dict[str, Any] | None = None, regs: Registries | None = None,
                    conditional: bool | None = None) -> list[tuple[str, Callable]]:
    """(name, metric) pairs for names (a list, or "a,b"), or the dataset's defaults; each metric's check() runs.
    `conditional` False (an unconditional generator): the metrics registered conditional=True are left out of
    the defaults, and refused when named.

    A metric may define check(options) to fail fast, before any sample is drawn
    (e.g. Inception weights missing).
    """
    regs = regs or registries()
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    names = list(metrics) if metrics else default_metrics(data, channels, regs)
    if conditional is False:
        only = [n for n in names if regs.metrics.get(n).info.get("conditional")]
        if metrics and only:
            raise GanzooError(f"The metric {only[0]!r} scores class-conditional generators only, and this one is "
                              f"unconditional; leave it out of --metrics.")
        names = [n for n in names if n not in only]
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


def own_rng(device: torch.device | str | None = None):
    """A block whose draws on torch's global RNG (CPU, and the CUDA device it names) are undone when it ends.

    What a metric builds (an evaluator network initialised before its weights load, a subset drawn) must
    never move the RNG a training run draws its latents from: --eval-every would change the run it scores.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [device] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda, enabled=True)


class Scores(dict):
    """{score name: number}, as `evaluate` returns them, and with them:

    protocol: {metric: its protocol} (ganzoo.protocol: the feature network and the sha256 of its weights, the
        resize, the input range, the images scored and the real ones, the seed, the precision, the versions);
    exhibits: {name: what a metric left to show, e.g. the memorisation metric's closest pairs}.
    A plain dict to everything else (json.dumps writes the numbers alone).
    """

    def __init__(self, *args, protocol: dict[str, dict[str, Any]] | None = None,
                 exhibits: dict[str, Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.protocol = dict(protocol or {})
        self.exhibits = dict(exhibits or {})


def metric_version(name: str, regs: Registries | None = None) -> str:
    """The version a metric registered (`version=`), bumped whenever its numbers change; '1' when it says none."""
    regs = regs or registries()
    return str(regs.metrics.get(name).info.get("version", "1")) if name in regs.metrics else "1"


def protocol_of(name: str, numbers: Iterable[str], samples: Samples, notes: dict[str, Any],
                regs: Registries | None = None) -> dict[str, Any]:
    """The protocol of one metric's numbers on these samples (see ganzoo.protocol)."""
    from . import __version__

    record: dict[str, Any] = {"metric": name, "version": metric_version(name, regs), "numbers": list(numbers)}
    record.update({k: v for k, v in notes.items() if k in ("features", "features_sha256", "resize", "input_range")})
    record.update({"samples": samples.source, "n": len(samples)})
    if samples.generator_sha256:
        record["generator_sha256"] = samples.generator_sha256
    record.update({"seed": samples.seed, "precision": samples.precision})
    record.update({k: v for k, v in notes.items() if k not in record})
    record["ganzoo"] = __version__
    return record


def score(samples: Samples, metrics: list[tuple[str, Callable]], regs: Registries | None = None) -> Scores:
    """Run each metric on the samples; their named numbers, in order, each metric's protocol beside them.
    Torch's global RNG is left as it was."""
    scores = Scores()
    for name, metric in metrics:
        samples._notes = {}
        with own_rng(samples.device):                 # a metric never moves the training RNG
            result = metric(samples)
        if not isinstance(result, dict):
            raise GanzooError(f"Metric {name!r} returned {type(result).__name__}, not a dict of named numbers.")
        scores.update({k: float(v) for k, v in result.items()})
        scores.protocol[name] = protocol_of(name, result, samples, samples._notes, regs)
    scores.exhibits.update(samples.exhibits)
    return scores


def evaluate(generator: str | Path | nn.Module, *, config: RunConfig | None = None,
             metrics: Iterable[str] | str | None = None, n: int | None = None, data: str | None = None,
             data_dir: str | None = None, download: bool = True, device: str | torch.device = "auto",
             seed: int = 0, options: dict[str, Any] | None = None, console: Console | None = None,
             weights: str | Path | None = None) -> Scores:
    """Score a generator: draw n samples (fixed seed), run the metrics on them, return {name: value}.

    generator: a weights file written by `ganzoo run` (generator file or checkpoint),
        or a generator module together with its RunConfig as `config`.
    metrics: registered metric names (list or "a,b"); default: the dataset's (see default_metrics).
    n: samples to draw; default: the largest the metrics ask for (10,000; 25,600 for Stacked MNIST modes).
    data, data_dir: the dataset whose real test split is the reference; default: the run's.
    options: metric options, e.g. {"inception_weights": "path/to/fid_inception.safetensors", "resize": "clean"}.
    weights: the file a generator module was loaded from, for the protocol (a path given as `generator` is).
    Returns Scores: the numbers, with each metric's protocol (ganzoo.protocol) in `.protocol`.
    """
    device = device if isinstance(device, torch.device) else select_device(device)
    if isinstance(generator, (str, Path)):
        weights = weights_file(generator)                 # a run folder names its generator file
        generator, config = load_generator(weights, device)
    source, digest = "a generator module", None
    if weights is not None:
        weights = weights_file(weights)
        source, digest = weights.name, file_sha256(weights.resolve())
    if config is None:
        raise GanzooError("evaluate() needs the RunConfig of a generator module: evaluate(G, config=config).")
    data = data or config.data
    data_dir = data_dir if data_dir is not None else (config.stored_data_dir() if data == config.data else None)
    chosen = resolve_metrics(metrics, data, config.channels, options)
    n = n or default_n(chosen)
    if n < 2:
        raise GanzooError(f"-n must be at least 2, got {n}.")
    images = generate_images(generator, config, n, seed=seed, console=console)
    samples = Samples(images, data, data_dir, download, device, dict(options or {}), label=config.model,
                      console=console, labels=classes(config, range(n)),       # the classes sample i was drawn as
                      train_split=config.split if data == config.data else "train", seed=seed,
                      precision="fp32", source=f"generated by {source}", generator_sha256=digest)
    return score(samples, chosen)


def evaluate_real(*, data: str, image_size: int, channels: int, metrics: Iterable[str] | str | None = None,
                  n: int | None = None, split: str = "train", data_dir: str | None = None, download: bool = True,
                  device: str | torch.device = "auto", seed: int = 0, options: dict[str, Any] | None = None,
                  console: Console | None = None, labelled: bool = False) -> Scores:
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
                      console=console, labels=labels if labelled else None, train_split=split, seed=seed,
                      precision="-", source=f"real {data} {split} split (a seeded subset)")
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
