"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009): 50,000 train / 10,000 test colour images, 32x32.

The python version torchvision downloads stores each batch as a pickle, and unpickling can run any
code a file names. Batches are read here with an unpickler that admits only what those files hold
(dicts, lists, strings, numbers and numpy uint8 arrays): a tampered batch is refused with a
sentence, and nothing it names is ever called. A copy is read from the folder the archive unpacks
to (cifar-10-batches-py/, cifar-100-python/) or from the archive itself.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from ganzoo.api import GanzooError, ImageData, hookimpl

from .dataset_files import all_files, locate


@dataclass(frozen=True)
class Cifar:
    title: str
    folder: str           # what the archive unpacks to
    archive: str          # torchvision's file name for the download
    batches: dict         # split -> batch file names
    label_key: str
    meta: str
    names_key: str
    classes: int


CIFARS = {
    "cifar10": Cifar("CIFAR-10", "cifar-10-batches-py", "cifar-10-python.tar.gz",
                     {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
                     "labels", "batches.meta", "label_names", 10),
    "cifar100": Cifar("CIFAR-100", "cifar-100-python", "cifar-100-python.tar.gz",
                      {"train": ["train"], "test": ["test"]}, "fine_labels", "meta", "fine_label_names", 100),
}


# -- a pickle that can only build data --------------------------------------------------------------

_reconstruct = np.ndarray(0).__reduce__()[0]     # numpy's array rebuilder, without importing numpy.core
PLAIN_DTYPES = {"b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8"}


def _plain_dtype(name, align=False, copy=False):
    """numpy.dtype for plain numbers only: no object arrays, whose items a pickle could fill."""
    if name not in PLAIN_DTYPES:
        raise pickle.UnpicklingError(f"it asks for a numpy dtype {name!r:.20}, which a CIFAR batch never holds")
    return np.dtype(name, align, copy)


def _latin1(text, encoding="latin1"):
    """What protocol 2 writes for a bytes object (_codecs.encode(text, 'latin1')): that and nothing else."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("it calls _codecs.encode on something other than latin-1 text, which a CIFAR "
                                     "batch never holds")
    return text.encode("latin1")


def _frombuffer(buffer, dtype, shape, order):
    """What protocol 5 writes for a contiguous array (numpy's _frombuffer), for plain dtypes only."""
    if not isinstance(dtype, np.dtype) or dtype.str[1:] not in PLAIN_DTYPES or order not in ("C", "F"):
        raise pickle.UnpicklingError("it rebuilds an array of a kind a CIFAR batch never holds")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that admits only the types CIFAR's batches hold; any other global is refused.

    Every callable a pickle can call comes through find_class (REDUCE, NEWOBJ, INST, OBJ and the
    extension registry all resolve names here), so nothing outside ADMITTED can run.
    """

    ADMITTED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,   # written by numpy 1.x (the files)
                ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # written by numpy 2.x
                ("numpy", "ndarray"): np.ndarray,
                ("numpy", "dtype"): _plain_dtype,
                ("_codecs", "encode"): _latin1,                            # bytes, as protocol 2 writes them
                ("numpy._core.numeric", "_frombuffer"): _frombuffer,       # arrays, as protocol 5 writes them
                ("numpy.core.numeric", "_frombuffer"): _frombuffer}

    def find_class(self, module, name):
        try:
            return self.ADMITTED[(module, name)]
        except (KeyError, TypeError):
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR batch never holds") from None


def load_batch(raw: bytes, where: str, title: str) -> dict:
    """A batch's dict (str keys), unpickled with BatchUnpickler; anything else is one sentence."""
    try:
        batch = BatchUnpickler(io.BytesIO(raw), encoding="latin1").load()   # the files are Python 2 pickles
    except pickle.UnpicklingError as exc:
        if "never holds" in str(exc):
            raise GanzooError(f"{where} is not a {title} batch: {exc}, so it was not loaded (the file was "
                              f"tampered with or replaced; download it again).") from None
        raise GanzooError(f"{where} is not a {title} batch ({exc}).") from None
    except Exception as exc:  # truncated or not a pickle at all: EOFError, ValueError, KeyError, ...
        raise GanzooError(f"{where} is not a {title} batch ({type(exc).__name__}: {str(exc)[:120]}).") from None
    if not isinstance(batch, dict):
        raise GanzooError(f"{where} is not a {title} batch (it holds a {type(batch).__name__}, not a dict).")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}


# -- the files ----------------------------------------------------------------------------------------

def _holds(cifar: Cifar, split: str):
    def holds(path: Path) -> bool:
        if path.name == cifar.archive:
            return path.is_file()
        return path.is_dir() and all_files(path, cifar.batches[split])
    return holds


def _read_files(location: Path, cifar: Cifar, names: list[str]) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, where it came from), from the unpacked folder or straight from the archive."""
    if location.is_dir():
        return {n: ((location / n).read_bytes(), str(location / n)) for n in names if (location / n).is_file()}
    found = {}
    try:
        with tarfile.open(location, "r:gz") as tar:          # read in memory: nothing is extracted to disk
            for member in tar:
                name = member.name.removeprefix(f"{cifar.folder}/")
                if name in names and member.isfile():
                    found[name] = (tar.extractfile(member).read(), f"{location}:{member.name}")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise GanzooError(f"{location} is not a readable {cifar.archive} ({type(exc).__name__}: {exc}).") from None
    return found


def _images_and_labels(batch: dict, where: str, cifar: Cifar) -> tuple[np.ndarray, list]:
    data, labels = batch.get("data"), batch.get(cifar.label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shown = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise GanzooError(f"{where} is not a {cifar.title} batch: its 'data' is {shown}, not uint8 rows of "
                          f"3 x 32 x 32 = 3072 pixels.")
    if (not isinstance(labels, list) or len(labels) != len(data)
            or not all(type(v) is int and 0 <= v < cifar.classes for v in labels)):
        raise GanzooError(f"{where} is not a {cifar.title} batch: its '{cifar.label_key}' are not {len(data)} "
                          f"integers in 0..{cifar.classes - 1}.")
    return data, labels


def read_cifar(location: Path, cifar: Cifar, split: str) -> ImageData:
    names = cifar.batches[split]
    files = _read_files(location, cifar, [*names, cifar.meta])
    missing = [n for n in names if n not in files]
    if missing:
        raise GanzooError(f"{location} lacks the {cifar.title} file(s) {', '.join(missing)}.")
    parts, labels = [], []
    for name in names:
        raw, where = files[name]
        data, batch_labels = _images_and_labels(load_batch(raw, where, cifar.title), where, cifar)
        parts.append(data)
        labels += batch_labels
    images = rearrange(torch.from_numpy(np.concatenate(parts)), "n (c h w) -> n c h w", c=3, h=32)
    classes = None
    if cifar.meta in files:  # the class names are nice to have; a damaged meta file still refuses to run code
        raw, where = files[cifar.meta]
        names_found = load_batch(raw, where, cifar.title).get(cifar.names_key)
        if isinstance(names_found, list) and len(names_found) == cifar.classes:
            classes = tuple(str(n) for n in names_found)
    return ImageData(images.contiguous(), torch.tensor(labels, dtype=torch.int64), classes=classes,
                     location=str(location))


def _fetch(cifar: Cifar):
    def fetch(tv_root: Path) -> None:
        # torchvision's own URL, checksum and download code. (Constructing torchvision.datasets.CIFAR10
        # would also load the batches with the unrestricted pickle module: it is not done.)
        from torchvision.datasets import CIFAR10, CIFAR100
        from torchvision.datasets.utils import download_and_extract_archive

        cls = CIFAR10 if cifar.title == "CIFAR-10" else CIFAR100
        download_and_extract_archive(cls.url, str(tv_root), filename=cls.filename, md5=cls.tgz_md5)
    return fetch


def _loader(key: str):
    cifar = CIFARS[key]

    def load(*, root, download, split="train", image_size=32, channels=3) -> ImageData:
        location = locate(root, title=cifar.title, layout=(cifar.folder, "", cifar.archive),
                          holds=_holds(cifar, split), download=download, fetch=_fetch(cifar),
                          files=f"{cifar.archive} (or the folder {cifar.folder}/ it unpacks to)")
        return read_cifar(location, cifar, split)
    return load


@hookimpl
def register_datasets(register):
    register("cifar10", _loader("cifar10"), "CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test colour "
             "images of 10 classes, 32x32", image_size=32, channels=3, splits=("train", "test"))
    register("cifar100", _loader("cifar100"), "CIFAR-100 (Krizhevsky 2009): 50,000 train / 10,000 test colour "
             "images of 100 classes (fine labels), 32x32", image_size=32, channels=3, splits=("train", "test"))
