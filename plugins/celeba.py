"""CelebA (Liu et al. 2015), aligned: 202,599 face images of 178x218, the face centred by its eyes.

Read from torchvision's layout, celeba/ holding img_align_celeba/ (the JPEGs of img_align_celeba.zip)
and list_eval_partition.txt (one "000001.jpg 0" line per image: 0 train, 1 valid, 2 test). Each
image is centre-cropped to 108x108, the crop of the TensorFlow DCGAN (carpedm20/DCGAN-tensorflow,
which cuts it then resizes to 64x64), so the face fills the frame; ganzoo then resizes to the run's
resolution. The JPEGs are decoded once into ganzoo's image cache.
"""

from __future__ import annotations

from pathlib import Path

from ganzoo.api import EncodedImages, GanzooError, ImageData, hookimpl

from .dataset_files import locate, scan

CROP = 108
PARTITION = "list_eval_partition.txt"
IMAGES = "img_align_celeba"
SPLITS = {"train": "0", "valid": "1", "test": "2", "all": None}


def read_partition(path: Path, split: str) -> list[str]:
    """The image names of a split, as list_eval_partition.txt assigns them."""
    names = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2") or "/" in fields[0]:
            raise GanzooError(f"{path} line {number} reads {line.strip()[:60]!r}; each line of CelebA's partition "
                              f"file is an image name and 0, 1 or 2 (train, valid, test).")
        if SPLITS[split] in (None, fields[1]):
            names.append(fields[0])
    if not names:
        raise GanzooError(f"{path} assigns no image to CelebA's {split} split.")
    return names


def read_celeba(folder: Path, split: str) -> ImageData:
    names = read_partition(folder / PARTITION, split)
    images = folder / IMAGES
    present = scan(images)                                                       # one pass over the folder
    missing = [n for n in names if n not in present]
    if missing:
        raise GanzooError(f"{images} lacks {len(missing):,} of the {len(names):,} images {PARTITION} lists for "
                          f"the {split} split (the first: {missing[0]}); unpack all of img_align_celeba.zip there.")
    listing = "".join(f"{n}\t{present[n].st_size}\t{present[n].st_mtime_ns}\n" for n in names)
    encoded = EncodedImages([images / n for n in names], fingerprint=listing,
                            source=f"{folder.resolve()} ({split})")
    return ImageData(encoded, None, name="celeba", location=str(folder), crop=CROP)


def load_celeba(*, root, download, split="train", image_size=64, channels=3) -> ImageData:
    """CelebA aligned faces (Liu et al. 2015), centre-cropped to 108x108 as the TensorFlow DCGAN does; splits
    train, valid, test, all."""
    def fetch(tv_root: Path) -> None:
        from torchvision.datasets import CelebA
        CelebA(str(tv_root), split=split, target_type=[], download=True)    # from Google Drive (needs gdown)

    folder = locate(root, title="CelebA", layout=("celeba", ""),
                    holds=lambda f: (f / PARTITION).is_file() and (f / IMAGES).is_dir(), download=download,
                    fetch=fetch, files=f"celeba/ holding {IMAGES}/ (the JPEGs of {IMAGES}.zip) and {PARTITION}")
    return read_celeba(folder, split)


@hookimpl
def register_datasets(register):
    register("celeba", load_celeba, image_size=64, channels=3, splits=tuple(SPLITS))
