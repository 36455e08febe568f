"""Images as ganzoo holds them: uint8 tensors [N, C, H, W] (`ImageData`), or still in their files
(`EncodedImages`), and the one way any image is brought to a run's resolution (`prepare_images`)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from PIL import Image

from .errors import GanzooError, MalformedData


class EncodedImages:
    """Images still in their files (PNG/JPEG in a folder, records in an lmdb), decoded on demand.

    items:       item i is a path or the bytes of one encoded image, any size; fetched in the
                 calling thread (an lmdb transaction is not shared between threads), decoded in workers.
    fingerprint: text that changes whenever the images do (names, sizes and times of the files);
                 a cache built from another fingerprint is rebuilt.
    source:      what the images are, e.g. "/data/celeba (train)": it names the cache, with the resolution.
    where:       item index -> where that image is, for error messages (default: the item, for paths).
    """

    def __init__(self, items: Sequence[Any], *, fingerprint: str, source: str,
                 where: Callable[[int], str] | None = None):
        self.items = items
        self.fingerprint = fingerprint
        self.source = source
        self.where = where or (lambda i: str(self.items[i]))

    def __len__(self) -> int:
        return len(self.items)

    def decode(self, i: int, channels: int) -> torch.Tensor:
        """Image i as uint8 [channels, H, W] at its own size."""
        return decode_image(self.items[i], channels, lambda: self.where(i))


def decode_image(item: Any, channels: int, where: Callable[[], str]) -> torch.Tensor:
    """A path or encoded bytes -> uint8 [channels, H, W]; anything unreadable is a sentence naming it."""
    from torchvision.transforms.v2 import functional as TF     # here, not at import: `ganzoo sample` starts quicker

    try:
        with Image.open(io.BytesIO(item) if isinstance(item, (bytes, bytearray, memoryview)) else item) as pil:
            return TF.pil_to_tensor(pil.convert("L" if channels == 1 else "RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise GanzooError(f"{where()} is not a readable image ({exc}); remove it or fix it.") from None


@dataclass
class ImageData:
    """A dataset split: its images, optional labels, and where it came from.

    images:   uint8 [N, C, H, W] at any size (ganzoo crops, resizes and converts), or EncodedImages,
              which ganzoo decodes once into its cache. `load_dataset` always returns a tensor,
              memory-mapped from that cache for encoded images.
    labels:   int64 [N], -1 for an image without one (STL-10's unlabelled split); None: no labels.
    classes:  the name of each label value, when known.
    location: where the files are (shown by `ganzoo data`).
    crop:     side of the central square cut before resizing (CelebA: 108); None: the largest square.
    cache:    the cache folder the images are mapped from (set by load_dataset), or None.
    """

    images: torch.Tensor | EncodedImages
    labels: torch.Tensor | None = None
    name: str = ""
    classes: tuple[str, ...] | None = None
    location: str = ""
    crop: int | None = None
    cache: Path | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        encoded = isinstance(self.images, EncodedImages)
        if not encoded and (not isinstance(self.images, torch.Tensor) or self.images.dtype != torch.uint8
                            or self.images.ndim != 4):
            shown = (f"{self.images.dtype} of shape {tuple(self.images.shape)}" if isinstance(self.images, torch.Tensor)
                     else type(self.images).__name__)
            raise MalformedData(f"Dataset {self.name!r} must give uint8 images [N, C, H, W] or EncodedImages, "
                              f"got {shown}.")
        if len(self.images) == 0:
            raise GanzooError(f"Dataset {self.name!r} holds no images.")
        if self.labels is not None and (self.labels.shape != (len(self.images),) or self.labels.is_floating_point()):
            raise MalformedData(f"Dataset {self.name!r} gives labels of shape {tuple(self.labels.shape)} "
                              f"({self.labels.dtype}) for {len(self.images)} images; they must be integers [N].")

    def __len__(self) -> int:
        return len(self.images)


# What prepare_images makes of an image, as a tag: caches of prepared images that outlive a process
# (the real-data statistics of evaluate.reference_features) carry it in their names, so a change to the
# preparation (as from resize-only to centre-crop-then-resize) is never answered from a stale cache.
PREPARATION = "centre-crop-then-antialiased-resize"


def prepare_images(images: torch.Tensor, image_size: int, channels: int, crop: int | None = None,
                   chunk: int = 4096) -> torch.Tensor:
    """Bring uint8 [N, C, H, W] images to [N, channels, image_size, image_size], still uint8.

    The central square is cut first (of side `crop`, or the shorter side), then resized with
    antialiasing; grey becomes RGB by repetition, RGB becomes grey by luminance, alpha is dropped.
    Every dataset and every evaluator goes through here, so training, evaluation and real-data
    statistics see pixels prepared the same way.
    """
    from torchvision.transforms.v2 import functional as TF     # here, not at import: `ganzoo sample` starts quicker

    n, c, h, w = images.shape
    if c == 4:
        images, c = images[:, :3], 3
    if c not in (1, 3):
        raise MalformedData(f"Images with {c} channels are not supported (use 1, 3 or 4).")
    side = min(h, w) if crop is None else min(crop, h, w)
    out = []
    for part in images.split(chunk):
        if (h, w) != (side, side):
            part = TF.center_crop(part, [side, side])
        if side != image_size:
            part = TF.resize(part, [image_size, image_size], antialias=True)
        if c == 1 and channels == 3:
            part = part.expand(-1, 3, -1, -1)
        elif c == 3 and channels == 1:
            part = TF.rgb_to_grayscale(part)
        out.append(part.contiguous())
    return torch.cat(out)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels [0, 255] -> float in [-1, 1], the range G's Tanh produces."""
    return images.float().div_(127.5).sub_(1.0)
