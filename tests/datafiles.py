"""Small datasets written in each one's real on-disk format (torchvision's layout), for the tests.

Every writer makes the files the way the dataset's authors ship them (IDX, Python 2 pickles, MATLAB
v5, column-major binaries, JPEG folders with a partition list, an lmdb of encoded images) and
returns what it wrote, so a test can compare what ganzoo reads with what is on disk.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

# -- IDX (MNIST, Fashion-MNIST) -------------------------------------------------------------------------

IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def write_idx(folder: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    """IDX files: a big-endian magic number and sizes, then the bytes (images uint8 [N, 28, 28])."""
    folder.mkdir(parents=True, exist_ok=True)
    image_name, label_name = IDX_NAMES[split]
    n, h, w = images.shape
    for name, raw in ((image_name, struct.pack(">IIII", 0x803, n, h, w) + images.tobytes()),
                      (label_name, struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())):
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (folder / name).write_bytes(raw)


# -- CIFAR: Python 2 pickles ------------------------------------------------------------------------------

def py2_pickle(obj) -> bytes:
    """obj pickled as Python 2's cPickle (protocol 2) wrote CIFAR's batches: str as byte strings, numpy
    arrays through numpy.core.multiarray._reconstruct. Handles dict, list, int, bytes and uint8 arrays."""
    return b"\x80\x02" + _py2(obj) + b"."


def _py2(obj) -> bytes:
    if isinstance(obj, dict):
        return b"}(" + b"".join(_py2(k) + _py2(v) for k, v in obj.items()) + b"u"    # EMPTY_DICT MARK .. SETITEMS
    if isinstance(obj, list):
        return b"](" + b"".join(_py2(v) for v in obj) + b"e"                         # EMPTY_LIST MARK .. APPENDS
    if isinstance(obj, str):
        obj = obj.encode("latin1")
    if isinstance(obj, bytes):                                                        # a Python 2 str
        return (b"U" + bytes([len(obj)]) if len(obj) < 256 else b"T" + struct.pack("<i", len(obj))) + obj
    if isinstance(obj, (int, np.integer)):
        n = int(obj)
        return b"K" + bytes([n]) if 0 <= n < 256 else b"M" + struct.pack("<H", n) if 0 <= n < 65536 else \
            b"J" + struct.pack("<i", n)
    if isinstance(obj, np.ndarray):
        assert obj.dtype == np.uint8 and obj.flags.c_contiguous
        dtype = (b"cnumpy\ndtype\n" + _py2(b"u1") + b"K\x00K\x01\x87R"              # dtype('u1', 0, 1)
                 + b"(K\x03" + _py2(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        shape = b"(" + b"".join(_py2(d) for d in obj.shape) + b"t"
        return (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + b"K\x00\x85" + _py2(b"b")
                + b"\x87R" + b"(K\x01" + shape + dtype + b"\x89" + _py2(obj.tobytes()) + b"tb")
    raise TypeError(type(obj))


CIFAR_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz",
                {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}, "labels",
                ("batches.meta", "label_names"), 10),
    "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", {"train": ["train"], "test": ["test"]},
                 "fine_labels", ("meta", "fine_label_names"), 100),
}


def cifar_batch(key: str, data: np.ndarray, labels: list[int]) -> bytes:
    label_key = CIFAR_LAYOUT[key][3]
    batch = {"batch_label": "training batch 1 of 5", label_key: labels, "data": data,
             "filenames": [f"image_{i:05d}.png" for i in range(len(labels))]}
    if key == "cifar100":
        batch["coarse_labels"] = [v // 5 for v in labels]
    return py2_pickle(batch)


def write_cifar(root: Path, key: str = "cifar10", per_batch: int = 6, seed: int = 0, archive: bool = False
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """root/<folder>/ with every batch and the meta file (or root/<archive>.tar.gz holding that folder).
    Returns split -> (images uint8 [N, 3, 32, 32], labels [N])."""
    folder, archive_name, batches, _, (meta_name, names_key), classes = CIFAR_LAYOUT[key]
    rng = np.random.default_rng(seed)
    files, written = {}, {}
    for split, names in batches.items():
        images, labels = [], []
        for name in names:
            data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            batch_labels = [int(v) for v in rng.integers(0, classes, per_batch)]
            files[name] = cifar_batch(key, data, batch_labels)
            images.append(data.reshape(-1, 3, 32, 32))
            labels += batch_labels
        written[split] = (np.concatenate(images), np.array(labels))
    files[meta_name] = py2_pickle({names_key: [f"class{i}" for i in range(classes)], "num_vis": 3072})
    if archive:
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(root / archive_name, "w:gz") as tar:
            for name, raw in files.items():
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    else:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, raw in files.items():
            (root / folder / name).write_bytes(raw)
    return written


# -- SVHN: MATLAB v5 ----------------------------------------------------------------------------------------

def write_svhn(root: Path, split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """root/<split>_32x32.mat: X uint8 [32, 32, 3, N], y [N, 1] in 1..10 (10 is the digit 0)."""
    import scipy.io

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    digits = rng.permutation(np.arange(n) % 10)                              # holds a 0 (stored as 10)
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / f"{split}_32x32.mat", {"X": images.transpose(2, 3, 1, 0),
                                                    "y": np.where(digits == 0, 10, digits)[:, None].astype(np.uint8)})
    return images, digits


# -- STL-10: column-major binaries -------------------------------------------------------------------------

def write_stl10(root: Path, counts: dict[str, int], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """root/stl10_binary/<part>_X.bin (uint8 images 3 x 96 x 96, each channel stored column-major) and
    <part>_y.bin (labels 1..10) for part in train, test; unlabeled_X.bin alone."""
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for part, n in counts.items():
        images = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        images.transpose(0, 1, 3, 2).tofile(folder / f"{part}_X.bin")          # column-major per channel
        labels = None
        if part != "unlabeled":
            labels = rng.integers(0, 10, n)
            (labels + 1).astype(np.uint8).tofile(folder / f"{part}_y.bin")
        written[part] = (images, labels)
    (folder / "class_names.txt").write_text("\n".join(["airplane", "bird", "car", "cat", "deer", "dog", "horse",
                                                       "monkey", "ship", "truck"]) + "\n")
    return written


# -- CelebA: aligned JPEGs and the partition list --------------------------------------------------------------

def face(i: int, width: int = 178, height: int = 218) -> Image.Image:
    """A 178x218 'aligned face': a dark frame and a bright 108x108 square at the centre (the crop's)."""
    image = Image.new("RGB", (width, height), (20, 20, 20))
    left, top = round((width - 108) / 2), round((height - 108) / 2)
    image.paste((200, 100 + i % 100, 50), (left, top, left + 108, top + 108))
    return image


def write_celeba(root: Path, partition: list[int]) -> Path:
    """root/celeba/img_align_celeba/000001.jpg ... and root/celeba/list_eval_partition.txt."""
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, part in enumerate(partition, 1):
        face(i).save(folder / "img_align_celeba" / f"{i:06d}.jpg", quality=95)
        lines.append(f"{i:06d}.jpg {part}\n")
    (folder / "list_eval_partition.txt").write_text("".join(lines))
    return folder


# -- LSUN: an lmdb of encoded images -----------------------------------------------------------------------------

def encoded(image: Image.Image, format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, quality=95)
    return buffer.getvalue()


def write_lsun(root: Path, database: str, images: list[Image.Image]) -> Path:
    """root/<database>_lmdb/ (data.mdb, lock.mdb): 40-hex-digit keys, one JPEG (or WebP) per record."""
    import hashlib

    import lmdb

    path = root / f"{database}_lmdb"
    env = lmdb.open(str(path), map_size=64 * 2 ** 20)
    with env.begin(write=True) as txn:
        for i, image in enumerate(images):
            key = hashlib.sha1(f"{database}{i}".encode()).hexdigest().encode()
            txn.put(key, encoded(image, "WEBP" if i % 3 == 2 else "JPEG"))
    env.close()
    return path
