"""Built-in datasets: MNIST (downloaded or from a local copy), any folder of images, and synthetic blobs."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import shutil
from pathlib import Path

import torch
from PIL import Image
from rich.progress import track
from torchvision.datasets import MNIST
from torchvision.datasets.mnist import read_image_file, read_label_file
from torchvision.transforms.v2 import functional as TF

from ganzoo import GanzooError, ImageData, hookimpl
from ganzoo.checkpoint import atomic_write
from ganzoo.data import cache_dir

# -- MNIST --------------------------------------------------------------------------------------

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000)}


def _plain_copy(folder: Path, name: str) -> Path | None:
    """The IDX file `name` from folder, as a plain file: itself, or its .gz decompressed into the cache.

    A .gz is accepted as given (one of the common copies is re-compressed, so its
    archive checksum differs while its content is the same); the content is
    checked by its shape instead.
    """
    plain = folder / name
    if plain.is_file():
        return plain
    packed = folder / f"{name}.gz"
    if not packed.is_file():
        return None
    stat = packed.stat()
    key = hashlib.sha1(f"{packed.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "mnist" / key / name
    if not target.is_file():
        def unpack(tmp: Path) -> None:
            try:
                with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as exc:
                raise GanzooError(f"{packed} is not a readable gzip file: {exc}") from None
        atomic_write(target, unpack)
    return target


def _read_idx(reader, path: Path, what: str) -> torch.Tensor:
    try:
        return reader(str(path))
    except Exception as exc:  # torchvision asserts on malformed headers
        raise GanzooError(f"{path} is not a valid MNIST {what} file ({type(exc).__name__}: {exc}).") from None


def _from_folder(folder: Path, split: str) -> ImageData:
    image_name, label_name, expected = MNIST_FILES[split]
    files = {n: _plain_copy(folder, n) for n in (image_name, label_name)}
    missing = [n for n, p in files.items() if p is None]
    if missing:
        raise GanzooError(f"{folder} lacks the MNIST file(s) {', '.join(missing)} (plain or .gz); "
                          f"it needs the official IDX files under torchvision's names.")
    images = _read_idx(read_image_file, files[image_name], "image")
    labels = _read_idx(read_label_file, files[label_name], "label")
    if images.ndim != 3 or tuple(images.shape[1:]) != (28, 28) or len(images) != expected:
        raise GanzooError(f"{files[image_name]} holds images of shape {tuple(images.shape)}; MNIST's {split} "
                          f"split has {expected} x 28 x 28.")
    if labels.shape != (expected,):
        raise GanzooError(f"{files[label_name]} holds {tuple(labels.shape)} labels; MNIST's {split} split has "
                          f"{expected}.")
    return ImageData(images[:, None].contiguous(), labels.long(), name="mnist")


def load_mnist(*, root, download, split="train", image_size=32, channels=1) -> ImageData:
    """MNIST handwritten digits (LeCun et al.), 60,000 train / 10,000 test, 28x28 grey."""
    if root:
        folder = Path(root)
        if not folder.is_dir():
            raise GanzooError(f"--data-dir {root} is not a folder.")
        return _from_folder(folder, split)
    cached = cache_dir() / "torchvision"
    raw = cached / "MNIST" / "raw"
    if (raw / MNIST_FILES[split][0]).is_file():
        return _from_folder(raw, split)
    if not download:
        raise GanzooError("MNIST is not in the cache and downloading is off: pass --data-dir DIR with the "
                          "four MNIST IDX files (gzipped or not).")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torchvision prints every mirror it tries
            MNIST(str(cached), train=(split == "train"), download=True)
    except Exception as exc:
        raise GanzooError(f"MNIST could not be downloaded ({type(exc).__name__}); if this machine is offline, "
                          f"copy the four MNIST IDX files (train-images-idx3-ubyte.gz, ...) into a folder and "
                          f"pass --data-dir FOLDER.") from None
    return _from_folder(raw, split)


# -- any folder of images -----------------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_folder(*, root, download, split="train", image_size=64, channels=3) -> ImageData:
    """Every image under a folder (searched recursively), resized and centre-cropped; no labels."""
    if not root:
        raise GanzooError("The folder dataset needs a path: --data path/to/images (or --data folder --data-dir PATH).")
    folder = Path(root)
    if not folder.is_dir():
        raise GanzooError(f"{folder} is not a folder.")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise GanzooError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    mode = "L" if channels == 1 else "RGB"
    images = torch.empty(len(paths), channels, image_size, image_size, dtype=torch.uint8)
    for i, path in enumerate(track(paths, description=f"decoding {len(paths)} images", transient=True)):
        try:
            with Image.open(path) as pil:
                image = TF.pil_to_tensor(pil.convert(mode))                 # [C, H, W] uint8
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise GanzooError(f"{path} is not a readable image ({exc}); remove it or fix it.") from None
        image = TF.resize(image, [image_size], antialias=True)
        images[i] = TF.center_crop(image, [image_size, image_size])
    return ImageData(images, None, name=str(folder))


# -- synthetic ------------------------------------------------------------------------------------

def load_fake(*, root, download, split="train", image_size=32, channels=1, n=1024) -> ImageData:
    """Synthetic blobs: one bright Gaussian spot per image, labelled by quadrant (for smoke tests)."""
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    centres = torch.rand(n, 2, generator=g) * 0.6 + 0.2                    # [n, 2] in (0.2, 0.8)
    radius = (torch.rand(n, 1, 1, generator=g) * 0.08 + 0.06) * image_size
    axis = torch.arange(image_size, dtype=torch.float32)
    dy = axis[None, :, None] - centres[:, 0, None, None] * image_size       # [n, S, 1]
    dx = axis[None, None, :] - centres[:, 1, None, None] * image_size       # [n, 1, S]
    spots = torch.exp(-(dx ** 2 + dy ** 2) / (2 * radius ** 2))             # [n, S, S]
    images = (spots * 255).round().to(torch.uint8)[:, None].expand(-1, channels, -1, -1).contiguous()
    labels = (centres[:, 0] > 0.5).long() * 2 + (centres[:, 1] > 0.5).long()
    return ImageData(images, labels, name="fake")


@hookimpl
def register_datasets(register):
    register("mnist", load_mnist, image_size=32, channels=1)
    register("folder", load_folder, image_size=64, channels=3)
    register("fake", load_fake, image_size=32, channels=1)
