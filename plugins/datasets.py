"""Built-in datasets: MNIST and Fashion-MNIST (downloaded or from a local copy), any folder of images (sub-folders
as classes), and synthetic blobs. CIFAR, SVHN, STL-10, CelebA and LSUN have a module each beside this one."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from ganzoo.api import EncodedImages, GanzooError, ImageData, atomic_write, cache_dir, hookimpl

from .dataset_files import fingerprint, locate

# -- MNIST and Fashion-MNIST: the same IDX files ------------------------------------------------------

IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000)}


@dataclass(frozen=True)
class IdxSet:
    title: str
    torchvision_class: str    # its files live under <torchvision root>/<class name>/raw/
    description: str
    classes: tuple[str, ...]


IDX_SETS = {
    "mnist": IdxSet("MNIST", "MNIST", "MNIST handwritten digits (LeCun et al.), 60,000 train / 10,000 test, 28x28 "
                    "grey.", tuple(str(d) for d in range(10))),
    "fashion-mnist": IdxSet("Fashion-MNIST", "FashionMNIST", "Fashion-MNIST (Xiao et al. 2017): Zalando clothing in "
                            "10 classes, 60,000 train / 10,000 test, 28x28 grey.",
                            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                             "Bag", "Ankle boot")),
}


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
    target = cache_dir() / "idx" / key / name
    if not target.is_file():
        def unpack(tmp: Path) -> None:
            try:
                with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError, zlib.error) as exc:
                raise GanzooError(f"{packed} is not a readable gzip file: {exc}") from None
        atomic_write(target, unpack)
    return target


def _read_idx(reader, path: Path, what: str, title: str) -> torch.Tensor:
    try:
        return reader(str(path))
    except Exception as exc:  # torchvision asserts on malformed headers
        raise GanzooError(f"{path} is not a valid {title} {what} file ({type(exc).__name__}: {exc}).") from None


def _holds_idx(folder: Path, split: str) -> bool:
    return any((folder / n).is_file() or (folder / f"{n}.gz").is_file() for n in IDX_FILES[split][:2])


def _from_folder(folder: Path, split: str, key: str) -> ImageData:
    idx = IDX_SETS[key]
    image_name, label_name, expected = IDX_FILES[split]
    files = {n: _plain_copy(folder, n) for n in (image_name, label_name)}
    missing = [n for n, p in files.items() if p is None]
    if missing:
        raise GanzooError(f"{folder} lacks the {idx.title} file(s) {', '.join(missing)} (plain or .gz); "
                          f"it needs the official IDX files under torchvision's names.")
    from torchvision.datasets.mnist import read_image_file, read_label_file   # torchvision loads only when read

    images = _read_idx(read_image_file, files[image_name], "image", idx.title)
    labels = _read_idx(read_label_file, files[label_name], "label", idx.title)
    if images.ndim != 3 or tuple(images.shape[1:]) != (28, 28) or len(images) != expected:
        raise GanzooError(f"{files[image_name]} holds images of shape {tuple(images.shape)}; {idx.title}'s {split} "
                          f"split has {expected} x 28 x 28.")
    if labels.shape != (expected,) or labels.max() > 9:
        raise GanzooError(f"{files[label_name]} holds {tuple(labels.shape)} labels (largest {labels.max()}); "
                          f"{idx.title}'s {split} split has {expected}, each 0..9.")
    return ImageData(images[:, None].contiguous(), labels.long(), name=key, classes=idx.classes,
                     location=str(folder))


def _idx_loader(key: str):
    idx = IDX_SETS[key]

    def load(*, root, download, split="train", image_size=32, channels=1) -> ImageData:
        if root:  # the IDX files themselves, or torchvision's root with <folder>/raw/ inside
            folder = Path(root)
            if not folder.is_dir():
                raise GanzooError(f"--data-dir {root} is not a folder.")
            raw = folder / idx.torchvision_class / "raw"
            return _from_folder(raw if not _holds_idx(folder, split) and _holds_idx(raw, split) else folder, split, key)

        def fetch(tv_root: Path) -> None:
            import torchvision.datasets

            getattr(torchvision.datasets, idx.torchvision_class)(str(tv_root), train=(split == "train"), download=True)

        names = ", ".join(f"{n}.gz" for s in ("train", "test") for n in IDX_FILES[s][:2])
        folder = locate(None, title=idx.title, layout=(f"{idx.torchvision_class}/raw",), holds=lambda f: _holds_idx(f, split),
                        download=download, fetch=fetch, files=f"the four {idx.title} IDX files ({names})")
        return _from_folder(folder, split, key)

    load.__doc__ = idx.description
    return load


load_mnist = _idx_loader("mnist")
load_fashion_mnist = _idx_loader("fashion-mnist")


# -- any folder of images -----------------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def image_files(folder: Path) -> list[Path]:
    """Every image file under a folder, at any depth, sorted; hidden files and folders are skipped."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts) and p.is_file())


def load_folder(*, root, download, split="train", image_size=64, channels=3) -> ImageData:
    """Every image under a folder (searched recursively), centre-cropped and resized; sub-folders are classes."""
    if not root:
        raise GanzooError("The folder dataset needs a path: --data path/to/images (or --data folder --data-dir PATH).")
    folder = Path(root)
    if not folder.is_dir():
        raise GanzooError(f"{folder} is not a folder.")
    paths = image_files(folder)
    if not paths:
        raise GanzooError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    # torchvision's ImageFolder layout: when every image lies in a sub-folder, each sub-folder is a class
    tops = [p.relative_to(folder).parts[0] if len(p.relative_to(folder).parts) > 1 else None for p in paths]
    labels = classes = None
    if None not in tops:
        classes = tuple(sorted(set(tops)))
        labels = torch.tensor([classes.index(t) for t in tops], dtype=torch.int64)
    encoded = EncodedImages(paths, fingerprint=fingerprint(paths, folder), source=str(folder.resolve()))
    return ImageData(encoded, labels, name=str(folder), classes=classes, location=str(folder))


def write_example_folder(folder: Path, split: str) -> None:
    """Six small colour PNGs in two class folders: what the conformance kit writes and loads as a folder."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for i in range(6):
        path = folder / ("cats" if i % 2 else "dogs") / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (20, 24, 3), dtype=torch.uint8, generator=g)     # [H, W, C]
        Image.fromarray(pixels.numpy()).save(path)


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
    register("mnist", load_mnist, image_size=32, channels=1, splits=("train", "test"), classes=10)
    register("fashion-mnist", load_fashion_mnist, image_size=32, channels=1, splits=("train", "test"),
             classes=10)
    # a folder has no splits of its own: train (a run's images) and test (evaluation references) are all of them
    register("folder", load_folder, image_size=64, channels=3, splits=("train", "test"),
             example_files=write_example_folder)
    register("fake", load_fake, image_size=32, channels=1, splits=("train", "test"), classes=4)
