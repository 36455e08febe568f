"""STL-10 (Coates, Ng, Lee 2011): 96x96 colour images of 10 classes, and 100,000 unlabelled ones.

Splits as torchvision names them: train (5,000 labelled), test (8,000 labelled), unlabeled
(100,000; label -1) and train+unlabeled. The files are the binary release, stl10_binary/:
*_X.bin holds uint8 images of 3 x 96 x 96 stored column-major, *_y.bin one byte per label, 1..10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from ganzoo.api import GanzooError, ImageData, hookimpl

from .dataset_files import all_files, locate

FOLDER = "stl10_binary"
IMAGE_BYTES = 3 * 96 * 96
PARTS = {"train": [("train_X.bin", "train_y.bin")], "test": [("test_X.bin", "test_y.bin")],
         "unlabeled": [("unlabeled_X.bin", None)],
         "train+unlabeled": [("train_X.bin", "train_y.bin"), ("unlabeled_X.bin", None)]}


def _images(path: Path) -> torch.Tensor:
    size = path.stat().st_size
    if size == 0 or size % IMAGE_BYTES:
        raise GanzooError(f"{path} is not an STL-10 image file: its {size:,} bytes are not whole 3 x 96 x 96 "
                          f"images (truncated?).")
    rows = np.memmap(path, dtype=np.uint8, mode="c", shape=(size // IMAGE_BYTES, 3, 96, 96))  # read as needed
    return rearrange(torch.from_numpy(rows), "n c w h -> n c h w")            # stored column-major


def _labels(path: Path | None, n: int) -> torch.Tensor:
    if path is None:
        return torch.full((n,), -1, dtype=torch.int64)                        # torchvision's "no label"
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) != n or not ((raw >= 1) & (raw <= 10)).all():
        raise GanzooError(f"{path} is not the STL-10 label file of its {n:,} images: it holds {len(raw):,} bytes"
                          f"{'' if len(raw) != n else ' outside 1..10'}.")
    return torch.from_numpy(raw.astype(np.int64) - 1)


def read_stl10(folder: Path, split: str) -> ImageData:
    images, labels = [], []
    for x_name, y_name in PARTS[split]:
        part = _images(folder / x_name)
        images.append(part)
        labels.append(_labels(folder / y_name if y_name else None, len(part)))
    classes = None
    names = folder / "class_names.txt"
    if names.is_file():
        found = tuple(line.strip() for line in names.read_text(errors="replace").splitlines() if line.strip())
        classes = found if len(found) == 10 else None
    return ImageData(torch.cat(images) if len(images) > 1 else images[0], torch.cat(labels), classes=classes,
                     location=str(folder))


def load_stl10(*, root, download, split="train", image_size=64, channels=3) -> ImageData:
    """STL-10 (Coates et al. 2011): 96x96 colour; splits train, test (labelled), unlabeled (100,000), train+unlabeled."""
    needed = [name for pair in PARTS[split] for name in pair if name]

    def fetch(tv_root: Path) -> None:
        # torchvision's URL, checksum and download code; its class would then load all 2.7 GB to check them
        from torchvision.datasets import STL10
        from torchvision.datasets.utils import download_and_extract_archive

        download_and_extract_archive(STL10.url, str(tv_root), filename=STL10.filename, md5=STL10.tgz_md5)

    folder = locate(root, title="STL-10", layout=(FOLDER, ""), holds=lambda f: all_files(f, needed),
                    download=download, fetch=fetch,
                    files=f"the folder {FOLDER}/ from stl10_binary.tar.gz (with {', '.join(needed)})")
    return read_stl10(folder, split)


@hookimpl
def register_datasets(register):
    register("stl10", load_stl10, image_size=64, channels=3, splits=tuple(PARTS))
