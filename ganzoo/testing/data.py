"""Checks of datasets and metrics.

Datasets: the factory fits its contract; offline, in an empty folder the kit made, it either gives images or
refuses with a GanzooError that says which files go where (never a bare traceback); and, when the dataset
declares ``example_files=writer`` (``writer(folder, split)`` writes a few images in the dataset's own
format; for a dataset read from one file, ``file_root=True``, it returns that file's path), the kit has it
write them into a folder of its own and loads them the way `ganzoo run` does (through load_dataset):
uint8 images at the asked size and channels, one int64 label per image within the declared classes,
every declared split, the same images twice, and an unknown split refused. A dataset that needs no files
(generated, like ``fake``) is validated the same way on what it gives offline; one that needs files and has
no ``example_files`` can only be checked for its contract and its offline sentence.

Metrics: the factory fits its contract; real training images score better than uniform noise on every
number whose direction the metric declares (``better=``), both finite, against the dataset's real test
split (the metric's first declared dataset, or the built-in ``fake`` one).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path

import torch

from ..contracts import check_factory
from ..data import ImageData, load_dataset
from ..errors import GanzooError, MalformedData
from ..registry import Entry
from .kit import blame, fail
from .networks import Checks
from ..terminal import Console


@contextlib.contextmanager
def own_cache(folder: str):
    """Decoded images go to the kit's folder, not the user's cache, and are deleted with it."""
    before = os.environ.get("GANZOO_CACHE")
    os.environ["GANZOO_CACHE"] = os.path.join(folder, ".cache")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GANZOO_CACHE", None)
        else:
            os.environ["GANZOO_CACHE"] = before

SIZE = 16                     # the resolution the kit asks a dataset for: small, and not the dataset's own


UNKNOWN_SPLIT = "no-such-split"


def dataset_checks(entry: Entry, device: torch.device) -> Checks:
    what = f"dataset {entry.name!r}"
    splits = entry.info.get("splits") or ("train",)
    channels = entry.info.get("channels", 1)
    classes = entry.info.get("classes")
    file_root = bool(entry.info.get("file_root"))

    def load(root: str, split: str, where: str) -> ImageData:
        """Through load_dataset, as `ganzoo run` loads it; a MalformedData is the dataset's fault: a failure."""
        try:
            with blame(f"{what}: loading {where} (split {split!r})",
                       "The factory must read the files from root (the user's --data-dir)."):
                return load_dataset(entry.name, root=root, split=split, image_size=SIZE, channels=channels,
                                    download=False, console=Console(quiet=True))
        except MalformedData as exc:
            fail(f"{what}: loading {where} (split {split!r}): {exc}")

    def validate(root: str, where: str) -> None:
        """Every declared split: uint8 at the asked size and channels, int64 labels one per image within the
        declared classes, the same images twice; an unknown split refused with a sentence."""
        for split in splits:
            loads = [load(root, split, where) for _ in range(2)]
            data = loads[0]
            shape = tuple(data.images.shape)
            if data.images.dtype != torch.uint8 or shape[1:] != (channels, SIZE, SIZE):
                fail(f"{what}: split {split!r} came out as {data.images.dtype} {shape}, expected uint8 "
                     f"[N, {channels}, {SIZE}, {SIZE}].")
            labels = data.labels
            if labels is not None:
                if labels.dtype != torch.int64 or labels.shape != (shape[0],):
                    fail(f"{what}: split {split!r} has labels {labels.dtype} {tuple(labels.shape)}; give "
                         f"int64 [N] (-1: no label) or None.")
                if len(labels) and (labels.min() < -1 or (classes and labels.max() >= classes)):
                    fail(f"{what}: split {split!r} has labels from {labels.min().item()} to {labels.max().item()}, "
                         f"but it declares classes={classes}; labels are 0..classes-1 (-1: no label).")
            if not torch.equal(data.images, loads[1].images):
                fail(f"{what}: loading split {split!r} twice gave different images; a dataset is read, not drawn.")
        try:
            load_dataset(entry.name, root=root, split=UNKNOWN_SPLIT, image_size=SIZE, channels=channels,
                         download=False, console=Console(quiet=True))
        except MalformedData:
            pass                                          # refused, if not for the right reason: the loads above say
        except GanzooError:
            return
        except Exception as exc:
            fail(f"{what}: asked for the split {UNKNOWN_SPLIT!r}, its factory raised {type(exc).__name__}: {exc}; "
                 f"refuse a split it does not have with a GanzooError (or declare splits=...).")
        fail(f"{what}: the split {UNKNOWN_SPLIT!r} loaded; a dataset refuses a split it does not have (declare "
             f"register(..., splits=(...)), or raise a GanzooError in the factory).")

    def contract():
        check_factory("dataset", f"The {what} (plugin {entry.plugin!r})", entry.factory)

    def offline():
        """With nothing in --data-dir: a sentence saying which files go where, or (a generated set) valid data."""
        with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as empty, own_cache(empty):
            root = os.path.join(empty, "missing.npz") if file_root else empty
            try:
                data = entry.factory(root=root, download=False, split=splits[0], image_size=SIZE, channels=channels)
            except MalformedData as exc:
                fail(f"{what}: offline, with --data-dir an empty {'path' if file_root else 'folder'}: {exc}")
            except GanzooError:
                return                                   # a sentence saying which files go where: right
            except Exception as exc:
                fail(f"{what}: offline, with --data-dir an empty folder, its factory raised {type(exc).__name__}: "
                     f"{exc}; raise a GanzooError saying which files to put where.")
            if not isinstance(data, ImageData):
                fail(f"{what}: its factory returned {type(data).__name__}; it must return a ganzoo.ImageData.")
            validate(root, "what it gives without files")   # it needs none (generated): check what it gives

    def files():
        writer = entry.info["example_files"]
        with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as folder, own_cache(folder):
            root = folder
            for split in splits:
                with blame(f"{what}: its example_files writer (split {split!r})",
                           "example_files(folder, split) writes a few images in the dataset's format into folder"
                           + (" and returns the file's path (file_root=True)." if file_root else ".")):
                    written = writer(Path(folder), split)
                if file_root:
                    if not written or not os.path.isfile(written):
                        fail(f"{what} declares file_root=True, so its example_files(folder, split) must return the "
                             f"path of the file it wrote; it returned {written!r}.")
                    root = str(written)
            validate(root, "the files its example_files wrote")

    checks = [("contract", contract), ("offline without files", offline)]
    if "example_files" in entry.info:
        checks.append(("reads the files it writes", files))
    return checks


def metric_checks(entry: Entry, device: torch.device, *, data_dir: str | None = None, n: int = 256) -> Checks:
    """`data_dir`: a local copy of the dataset the metric scores by default (e.g. MNIST's four IDX files)."""
    from ..evaluate import Samples
    from ..plugins import registries

    what = f"metric {entry.name!r}"
    datasets = entry.info.get("datasets")
    data = datasets[0] if datasets else "fake"
    better = entry.info.get("better") or {}

    def contract():
        check_factory("metric", f"The {what} (plugin {entry.plugin!r})", entry.factory)

    def real_and_noise():
        check = getattr(entry.factory, "check", None)
        if callable(check):
            check({})                                    # e.g. weights missing: its own sentence
        info = registries().datasets.get(data).info
        size, channels = info.get("image_size", 32), 3 if not datasets else info.get("channels", 1)
        with blame(f"{what}: loading {data!r}, the dataset it scores", f"Give the kit a local copy (data_dir=) of "
                   f"{data!r}."):
            loaded = load_dataset(data, root=data_dir, split="train", image_size=size, channels=channels,
                                  download=False)
        real = loaded.images[:n].clone()
        labels = loaded.labels[:n].clone() if loaded.labels is not None else None   # as a conditional G's classes
        noise = torch.randint(0, 256, real.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        scores = {}
        for label, images in (("real images", real), ("noise", noise)):
            with blame(f"{what}: scoring {label}", "metric(samples) returns a dict of named numbers."):
                scores[label] = entry.factory(Samples(images, data, data_dir, download=False, device=device,
                                                      labels=labels))
            if not isinstance(scores[label], dict) or not scores[label]:
                fail(f"{what}: returned {type(scores[label]).__name__}; it must return a dict of named numbers.")
            bad = {k: v for k, v in scores[label].items() if not isinstance(v, (int, float)) or not math.isfinite(v)}
            if bad:
                fail(f"{what}: scoring {label} gave {bad}; every value must be a finite number.")
        for name, direction in better.items():
            r, z = scores["real images"].get(name), scores["noise"].get(name)
            if r is None:
                fail(f"{what}: declares better={{{name!r}: ...}} but returned no {name!r}.")
            if not (r < z if direction == "lower" else r > z):
                fail(f"{what}: {name} is {r:.4g} for real {data} images and {z:.4g} for uniform noise; with "
                     f"{direction!r} better, real images must score better than noise.")
        if not better and scores["real images"] == scores["noise"]:
            fail(f"{what}: real images and noise get the same scores {scores['noise']}; it measures nothing.")

    return [("contract", contract), ("real images beat noise", real_and_noise)]
