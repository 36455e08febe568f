"""Image data as one uint8 tensor, brought to the run's resolution once, shuffled on the device.

The reference DCGAN decodes PIL images one by one in a DataLoader; on a GPU that
is the bottleneck. Datasets that fit in memory (MNIST is 47 MB as uint8) are
held whole, on the training device, and batches are index gathers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torchvision.transforms.v2 import functional as TF

from .errors import GanzooError
from .plugins import Registries, registries


@dataclass
class ImageData:
    """All images of a dataset split: uint8 [N, C, H, W], optional int64 labels [N]."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise GanzooError(f"Dataset {self.name!r} must give uint8 images [N, C, H, W], "
                              f"got {self.images.dtype} of shape {tuple(self.images.shape)}.")
        if len(self.images) == 0:
            raise GanzooError(f"Dataset {self.name!r} holds no images.")

    def __len__(self) -> int:
        return len(self.images)


def prepare_images(images: torch.Tensor, image_size: int, channels: int, chunk: int = 4096) -> torch.Tensor:
    """Bring uint8 [N, C, H, W] images to [N, channels, image_size, image_size], still uint8.

    Non-square images are resized on their shorter side and centre-cropped; grey
    becomes RGB by repetition, RGB becomes grey by luminance, alpha is dropped.
    Every dataset goes through here, so training, evaluation and real-data
    statistics see pixels prepared the same way.
    """
    n, c, h, w = images.shape
    if c == 4:
        images, c = images[:, :3], 3
    if c not in (1, 3):
        raise GanzooError(f"Images with {c} channels are not supported (use 1, 3 or 4).")
    out = []
    for part in images.split(chunk):
        if (h, w) != (image_size, image_size):
            part = TF.resize(part, [image_size], antialias=True)
            part = TF.center_crop(part, [image_size, image_size])
        if c == 1 and channels == 3:
            part = part.expand(-1, 3, -1, -1)
        elif c == 3 and channels == 1:
            part = TF.rgb_to_grayscale(part)
        out.append(part.contiguous())
    return torch.cat(out)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [0, 255] -> float in [-1, 1], the range G's Tanh produces."""
    return images.float().div_(127.5).sub_(1.0)


class DeviceBatches:
    """Shuffled fixed-size batches drawn from images resident on one device.

    The last partial batch of an epoch is dropped, so every step has the same
    shape (BatchNorm statistics and compiled or captured steps rely on it).
    """

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device):
        if len(images) < batch_size:
            raise GanzooError(f"The dataset has {len(images)} images, fewer than one batch of {batch_size}; "
                              f"lower --batch-size.")
        self.images = images.to(device)
        self.batch_size = batch_size
        self.device = device

    @property
    def steps_per_epoch(self) -> int:
        return len(self.images) // self.batch_size

    def epoch(self, generator: torch.Generator, start: int = 0) -> Iterator[torch.Tensor]:
        """Yield the epoch's batches from step `start` on, as floats in [-1, 1]: [B, C, H, W]."""
        order = torch.randperm(len(self.images), device=self.device, generator=generator)
        for step in range(start, self.steps_per_epoch):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size]
            yield to_model_range(self.images[idx])


def cache_dir() -> Path:
    """Where ganzoo keeps downloads and decompressed files: $GANZOO_CACHE, else ~/.cache/ganzoo."""
    root = os.environ.get("GANZOO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ganzoo")
    return Path(root)


def load_dataset(name: str, *, root: str | None, split: str, image_size: int, channels: int,
                 download: bool = True, regs: Registries | None = None) -> ImageData:
    """Load a registered dataset and prepare it for a run: [N, channels, image_size, image_size] uint8."""
    entry = (regs or registries()).datasets.get(name)
    data = entry.factory(root=root, download=download, split=split, image_size=image_size, channels=channels)
    if not isinstance(data, ImageData):
        raise GanzooError(f"Dataset {name!r} returned {type(data).__name__}, not ganzoo.ImageData.")
    images = prepare_images(data.images, image_size, channels)
    return ImageData(images, data.labels, name=data.name or name)
