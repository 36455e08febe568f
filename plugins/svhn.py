"""SVHN (Netzer et al. 2011): house numbers from Street View, 32x32 colour digits.

73,257 train / 26,032 test / 531,131 extra images, as torchvision downloads them: one MATLAB file per
split (train_32x32.mat, ...) holding X [32, 32, 3, N] and y [N, 1] with 10 standing for the digit 0.
scipy.io reads them (MATLAB v5 files hold data only, nothing that runs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch
from einops import rearrange

from ganzoo.api import GanzooError, ImageData, hookimpl

from .dataset_files import locate

SPLITS = ("train", "test", "extra")


def read_svhn(path: Path) -> ImageData:
    try:
        mat = scipy.io.loadmat(str(path), variable_names=["X", "y"])
    except Exception as exc:  # not a MATLAB file, truncated, an HDF5 (v7.3) file: many exception types
        raise GanzooError(f"{path} is not a readable SVHN .mat file ({type(exc).__name__}: {str(exc)[:120]}).") from None
    x, y = mat.get("X"), mat.get("y")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        shown = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else "missing"
        raise GanzooError(f"{path} is not an SVHN .mat file: its X is {shown}, not uint8 [32, 32, 3, N].")
    if not isinstance(y, np.ndarray) or y.size != x.shape[3] or not np.isin(y, np.arange(1, 11)).all():
        raise GanzooError(f"{path} is not an SVHN .mat file: its y is not {x.shape[3]} labels in 1..10.")
    labels = torch.from_numpy(y.reshape(-1).astype(np.int64)) % 10             # 10 is the digit 0
    images = rearrange(torch.from_numpy(x), "h w c n -> n c h w")
    return ImageData(images.contiguous(), labels, classes=tuple(str(d) for d in range(10)), location=str(path))


def load_svhn(*, root, download, split="train", image_size=32, channels=3) -> ImageData:
    """SVHN (Netzer et al. 2011): Street View house-number digits, 32x32 colour; splits train, test, extra."""
    name = f"{split}_32x32.mat"

    def fetch(tv_root: Path) -> None:
        from torchvision.datasets import SVHN
        SVHN(str(tv_root), split=split, download=True)

    folder = locate(root, title="SVHN", layout=("", "svhn"), holds=lambda f: (f / name).is_file(),
                    download=download, fetch=fetch, files=f"{name} (torchvision's name for the {split} split)")
    return read_svhn(folder / name)


@hookimpl
def register_datasets(register):
    register("svhn", load_svhn, image_size=32, channels=3, splits=SPLITS)
