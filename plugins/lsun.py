"""LSUN scenes (Yu et al. 2015): millions of images per category (bedroom: 3,033,042) in lmdb databases.

torchvision's layout: <category>_train_lmdb/ and <category>_val_lmdb/ (data.mdb, lock.mdb) as the
LSUN download script unpacks them; every record is one encoded image (JPEG or WebP, ~256 pixels on
the shorter side). The split names the category the way torchvision's LSUN class does:
bedroom_train, church_outdoor_val, ..., or just a category (its train set); "train" and "test" are
bedroom's. The images are decoded once into ganzoo's image cache, which streams them when they do
not fit in memory. Reading lmdb needs the optional lmdb package.
"""

from __future__ import annotations

from pathlib import Path

from ganzoo.api import EncodedImages, GanzooError, ImageData, hookimpl

from .dataset_files import locate

CATEGORIES = ("bedroom", "bridge", "church_outdoor", "classroom", "conference_room", "dining_room", "kitchen",
              "living_room", "restaurant", "tower")
INSTALL = "pip install 'pyganzoo[lsun]' (or pip install lmdb)"


def _lmdb():
    try:
        import lmdb
    except ImportError:
        raise GanzooError(f"LSUN is stored in lmdb databases, which need the lmdb package: {INSTALL}.") from None
    return lmdb


def database_name(split: str) -> str:
    """A split as torchvision names LSUN's databases: "train" -> bedroom_train, "kitchen" -> kitchen_train."""
    split = {"train": "bedroom_train", "test": "bedroom_val"}.get(split, split)
    category, _, part = split.rpartition("_") if split.endswith(("_train", "_val")) else (split, "", "train")
    if category not in CATEGORIES:
        raise GanzooError(f"LSUN has no split {split!r}; name a category ({', '.join(CATEGORIES)}), optionally "
                          f"with _train or _val, e.g. --split church_outdoor_train.")
    return f"{category}_{part}"


class Records:
    """The values of an lmdb database as a sequence (keys read once, values on demand), for EncodedImages."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.env = _lmdb().open(str(path), readonly=True, lock=False, readahead=False, meminit=False,
                                    max_readers=1)
            self.txn = self.env.begin(write=False)
            self.count = self.env.stat()["entries"]
        except GanzooError:
            raise
        except Exception as exc:  # lmdb.Error and its many kinds: not a database, truncated, wrong version
            raise GanzooError(f"{path} is not a readable lmdb database ({type(exc).__name__}: {exc}).") from None
        self._keys: list[bytes] | None = None

    def keys(self) -> list[bytes]:
        if self._keys is None:
            self._keys = list(self.txn.cursor().iternext(keys=True, values=False))
        return self._keys

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> bytes:
        value = self.txn.get(self.keys()[i])
        if value is None:
            raise GanzooError(f"{self.path} lost its record {self.keys()[i]!r} while being read.")
        return value

    def fingerprint(self) -> str:
        data = self.path / "data.mdb"
        stat = data.stat()
        return f"{data.resolve()}\t{stat.st_size}\t{stat.st_mtime_ns}\t{self.count}"


def load_lsun(*, root, download, split="train", image_size=64, channels=3) -> ImageData:
    """LSUN scenes (Yu et al. 2015) from lmdb; --split CATEGORY[_train|_val] (default bedroom_train)."""
    database = database_name(split)                                       # e.g. church_outdoor_train
    name = f"{database}_lmdb"
    folder = locate(root, title="LSUN", layout=("",), holds=lambda f: (f / name / "data.mdb").is_file(),
                    download=download, fetch=None,
                    files=f"the folder {name}/ (data.mdb; fyu/lsun's download.py -c {database.rsplit('_', 1)[0]} "
                          f"fetches its zip)")
    records = Records(folder / name)
    if not len(records):
        raise GanzooError(f"{folder / name} holds no records.")
    encoded = EncodedImages(records, fingerprint=records.fingerprint(), source=str((folder / name).resolve()),
                            where=lambda i: f"{folder / name} record {records.keys()[i].decode(errors='replace')}")
    return ImageData(encoded, None, name="lsun", location=str(folder / name))


@hookimpl
def register_datasets(register):
    register("lsun", load_lsun, image_size=64, channels=3)
