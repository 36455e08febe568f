"""Image data as one uint8 tensor at the run's resolution: held on the device, or streamed from a cache.

The reference DCGAN decodes PIL images one by one in a DataLoader; on a GPU that is the
bottleneck. Here every dataset is brought to the run's resolution once (`prepare_images`):
- a set that fits the memory budget (MNIST is 47 MB as uint8) is held whole on the training
  device, and batches are index gathers (`DeviceBatches`);
- images still in their files (a folder of JPEGs, CelebA, LSUN's lmdb: `EncodedImages`) are
  decoded once into a memory-mapped uint8 cache at that resolution (`ganzoo.imagecache`), which
  later runs reuse;
- a set larger than the budget (LSUN bedrooms at 64x64 is ~37 GB) streams its batches from host
  memory, gathered a step ahead into pinned buffers and copied on a side stream (`StreamedBatches`).
Both batch sources draw the same permutation, so where the images come from never changes a run.
"""

from __future__ import annotations

import os

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import numpy as np
import torch
from rich.console import Console

from .device import free_memory
from .errors import GanzooError
from .files import cache_dir
from .imagecache import cached_images
from .images import PREPARATION, EncodedImages, ImageData, decode_image, prepare_images, to_model_range
from .plugins import Registries, registries

__all__ = ["PREPARATION", "DeviceBatches", "EncodedImages", "ImageData", "StreamedBatches", "cache_dir",
           "check_split", "decode_image", "load_dataset", "make_batches", "memory_budget", "peek", "prepare_images",
           "read_dataset", "to_model_range"]


# -- batches ------------------------------------------------------------------------------------------

def _part(batch_size: int, share: tuple[int, int]) -> slice:
    """Rank r of n's slice of a batch (the batch size is a multiple of n: ganzoo.distributed.start checks)."""
    rank, ranks = share
    size = batch_size // ranks
    return slice(rank * size, (rank + 1) * size)


def _check_batch(n: int, batch_size: int) -> None:
    if n < batch_size:
        raise GanzooError(f"The dataset has {n} images, fewer than one batch of {batch_size}; lower --batch-size.")


class DeviceBatches:
    """Shuffled fixed-size batches drawn from images resident on one device, with their labels if any.

    The last partial batch of an epoch is dropped, so every step has the same
    shape (BatchNorm statistics and compiled or captured steps rely on it).
    `share` (rank, ranks): under data-parallel training each process yields its
    slice of every batch of the one permutation (ganzoo.distributed).
    """

    streamed = False

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device,
                 labels: torch.Tensor | None = None, share: tuple[int, int] = (0, 1)):
        _check_batch(len(images), batch_size)
        self.images = images.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.batch_size = batch_size
        self.device = device
        self.part = _part(batch_size, share)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.images) // self.batch_size

    def epoch(self, generator: torch.Generator, start: int = 0) -> Iterator[torch.Tensor]:
        """Yield the epoch's batches from step `start` on, as floats in [-1, 1]: [B, C, H, W]."""
        return (images for images, _ in self.labelled(generator, start))

    def labelled(self, generator: torch.Generator, start: int = 0
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """The same batches as `epoch`, each with its labels: (images [B, C, H, W], int64 [B] or None)."""
        order = torch.randperm(len(self.images), device=self.device, generator=generator)
        for step in range(start, self.steps_per_epoch):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size][self.part]
            yield to_model_range(self.images[idx]), self.labels[idx] if self.labels is not None else None


class StreamedBatches:
    """The same batches as DeviceBatches, gathered from host memory (a memory-mapped cache) a step ahead.

    For sets larger than the memory budget. A worker thread gathers each batch's rows into a
    host buffer (numpy's take releases the GIL, so this overlaps the training step); on CUDA the
    buffers are pinned and copied on a side stream, the step waiting for its own copy only, and a
    buffer is refilled only once its copy is done. The permutation is DeviceBatches' own, drawn on
    the device, so a run streamed from the cache equals a run from memory.
    """

    streamed = True
    AHEAD = 2  # batches gathered ahead of the one in use

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device,
                 labels: torch.Tensor | None = None, share: tuple[int, int] = (0, 1)):
        _check_batch(len(images), batch_size)
        self.images = images.cpu()
        self.labels = labels.to(device) if labels is not None else None   # small: held on the device whole
        self.rows = self.images.numpy()
        self.batch_size = batch_size
        self.device = device
        self.cuda = device.type == "cuda"
        self.part = _part(batch_size, share)
        shape = (self.part.stop - self.part.start, *images.shape[1:])
        self.buffers = [torch.empty(shape, dtype=torch.uint8, pin_memory=self.cuda) for _ in range(self.AHEAD + 1)]
        self.copied: list[Any] = [None] * len(self.buffers)     # CUDA events: the buffer's copy is done
        self.stream = torch.cuda.Stream(device) if self.cuda else None

    @property
    def steps_per_epoch(self) -> int:
        return len(self.images) // self.batch_size

    def _gather(self, rows: np.ndarray, slot: int) -> None:
        if self.copied[slot] is not None:
            self.copied[slot].synchronize()                     # its last copy to the device has finished
        np.take(self.rows, rows, axis=0, out=self.buffers[slot].numpy())

    def _on_device(self, slot: int) -> torch.Tensor:
        if not self.cuda:
            return self.buffers[slot]
        with torch.cuda.stream(self.stream):
            batch = self.buffers[slot].to(self.device, non_blocking=True)
            self.copied[slot] = torch.cuda.Event()
            self.copied[slot].record(self.stream)
        main = torch.cuda.current_stream(self.device)
        main.wait_stream(self.stream)
        batch.record_stream(main)                               # its memory is the main stream's from here
        return batch

    def epoch(self, generator: torch.Generator, start: int = 0) -> Iterator[torch.Tensor]:
        """Yield the epoch's batches from step `start` on, as floats in [-1, 1]: [B, C, H, W]."""
        return (images for images, _ in self.labelled(generator, start))

    def labelled(self, generator: torch.Generator, start: int = 0
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """The same batches as `epoch`, each with its labels: (images [B, C, H, W], int64 [B] or None)."""
        permutation = torch.randperm(len(self.images), device=self.device, generator=generator)
        order = permutation.cpu().numpy()
        steps = range(start, self.steps_per_epoch)
        B, slots = self.batch_size, len(self.buffers)
        with ThreadPoolExecutor(1, thread_name_prefix="ganzoo-batches") as worker:
            def gather(step: int):
                return step % slots, worker.submit(self._gather, order[step * B:(step + 1) * B][self.part], step % slots)

            ahead = deque(gather(step) for step in steps[:self.AHEAD])
            for k, step in enumerate(steps):
                slot, gathered = ahead.popleft()
                gathered.result()
                batch = to_model_range(self._on_device(slot))   # the buffer of step-1 is free from here
                if k + self.AHEAD < len(steps):
                    ahead.append(gather(steps[k + self.AHEAD]))
                labels = self.labels[permutation[step * B:(step + 1) * B][self.part]] if self.labels is not None else None
                yield batch, labels


def memory_budget(requested: int, device: torch.device) -> int:
    """Bytes of images to hold whole on `device`: what was asked, else half of what is free there."""
    if requested:
        return requested
    free = free_memory(device)
    return free // 2 if free is not None else 0


def make_batches(data: ImageData, batch_size: int, device: torch.device, budget: int, share: tuple[int, int] = (0, 1),
                 labelled: bool = True) -> DeviceBatches | StreamedBatches:
    """Batches held on the device when the images fit the budget, else streamed from host memory; with their
    labels when `labelled` (a conditional model's: an unconditional step neither needs nor gathers them)."""
    images, labels = data.images, data.labels if labelled else None
    if images.nbytes <= budget:
        if data.cache is not None and device.type == "cpu":
            images = images.clone()                             # in memory, not paged in from the cache file
        return DeviceBatches(images, batch_size, device, labels=labels, share=share)
    return StreamedBatches(images, batch_size, device, labels=labels, share=share)


# -- loading -------------------------------------------------------------------------------------------

def check_split(name: str, split: str, splits: Any) -> None:
    """A split the dataset does not have is a sentence listing those it has (`splits=` of its registration)."""
    if splits is not None and split not in splits:
        raise GanzooError(f"Dataset {name!r} has no split {split!r}; its splits: {', '.join(splits)}.")


def check_root(name: str, root: str, *, stored: bool = False, regs: Registries | None = None) -> None:
    """A dataset's --data-dir is what it declares: one file (register(..., file_root=True)) or a folder.

    `stored`: the path a run recorded, read again by eval, --resume and the analyses."""
    regs = regs or registries()
    file_root = name in regs.datasets and bool(regs.datasets.get(name).info.get("file_root"))
    whose = f"The run's --data-dir {root}" if stored else f"--data-dir {root}"
    if not os.path.exists(root):
        if not stored:
            return                                 # the dataset's own sentence says which files go where
        raise GanzooError(f"The run's data {'file' if file_root else 'folder'} {root} is not a "
                          f"{'file' if file_root else 'folder'} from here; pass --data-dir with the dataset's "
                          f"{'file' if file_root else 'files'}.")
    if file_root and os.path.isdir(root):
        raise GanzooError(f"{whose} is a folder, but the dataset {name!r} reads one file; pass that file.")
    if not file_root and not os.path.isdir(root):
        raise GanzooError(f"{whose} is not a folder, and the dataset {name!r} reads a folder (a dataset read from "
                          f"one file declares file_root=True); pass the folder that holds its files.")


def read_dataset(name: str, *, root: str | None, split: str, image_size: int, channels: int,
                 download: bool = True, regs: Registries | None = None) -> ImageData:
    """What a registered dataset's factory returns, checked: images maybe still encoded, not yet prepared."""
    entry = (regs or registries()).datasets.get(name)
    check_split(name, split, entry.info.get("splits"))
    data = entry.factory(root=root, download=download, split=split, image_size=image_size, channels=channels)
    if not isinstance(data, ImageData):
        raise GanzooError(f"Dataset {name!r} returned {type(data).__name__}, not ganzoo.ImageData.")
    data.name = data.name or name
    return data


def peek(data: ImageData, n: int, image_size: int, channels: int, seed: int = 0
         ) -> tuple[torch.Tensor, torch.Tensor, set[tuple[int, int]]]:
    """n images picked at random (seeded) from data as read, prepared as a run sees them.

    Returns (their indices [n], the images uint8 [n, channels, image_size, image_size], the (H, W)
    sizes they had before): `ganzoo data` shows them without decoding a whole encoded set.
    """
    picked = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    if isinstance(data.images, EncodedImages):
        originals = [data.images.decode(int(i), channels) for i in picked]
        sizes = {tuple(image.shape[1:]) for image in originals}
        images = torch.cat([prepare_images(image[None], image_size, channels, data.crop) for image in originals])
    else:
        sizes = {tuple(data.images.shape[2:])}
        images = prepare_images(data.images[picked], image_size, channels, data.crop)
    return picked, images, sizes


def load_dataset(name: str, *, root: str | None, split: str, image_size: int, channels: int,
                 download: bool = True, console: Console | None = None, regs: Registries | None = None) -> ImageData:
    """Load a registered dataset and prepare it for a run: [N, channels, image_size, image_size] uint8.

    Encoded images are decoded into the cache once (with a progress bar on `console`) and come
    back memory-mapped from it; the rest is prepared in memory.
    """

    data = read_dataset(name, root=root, split=split, image_size=image_size, channels=channels, download=download,
                        regs=regs)
    common = dict(name=data.name, classes=data.classes, location=data.location)
    if isinstance(data.images, EncodedImages):
        images, labels, folder = cached_images(data, image_size=image_size, channels=channels,
                                               console=console or Console(stderr=True))
        return ImageData(images, labels, cache=folder, **common)
    return ImageData(prepare_images(data.images, image_size, channels, data.crop), data.labels, **common)
