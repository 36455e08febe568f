"""What the built-in datasets share: finding a local copy in torchvision's on-disk layout, downloading
through torchvision when online, and one sentence saying which files go where when neither works.

A dataset's files are looked for, in order: in --data-dir (the folder itself, or the sub-folder
torchvision keeps them in under the root it is given, so a copy torchvision downloaded elsewhere
works as is); in ganzoo's own download folder (<cache>/torchvision); then fetched there through
torchvision's dataset class, unless downloading is off.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ganzoo.api import GanzooError, cache_dir


def torchvision_root() -> Path:
    """Where ganzoo has torchvision download datasets."""
    return cache_dir() / "torchvision"


def locate(root: str | None, *, title: str, layout: Sequence[str], holds: Callable[[Path], bool], files: str,
           download: bool, fetch: Callable[[Path], object] | None) -> Path:
    """The folder holding a dataset's files.

    layout: where the files sit relative to a torchvision root ("" is the root itself), e.g.
            ("cifar-10-batches-py", "") accepts --data-dir as the root or as the folder inside it.
    holds:  whether a folder holds the files the split needs.
    files:  which files go where, for the message, e.g. "cifar-10-python.tar.gz (or the folder
            cifar-10-batches-py/ it unpacks to)".
    fetch:  downloads into the torchvision root given it (None: torchvision cannot download this one).
    """
    def found(base: Path) -> Path | None:
        return next((base / sub for sub in layout if holds(base / sub)), None)

    if root:
        base = Path(root)
        if not base.is_dir():
            raise GanzooError(f"--data-dir {root} is not a folder.")
        folder = found(base)
        if folder is None:
            raise GanzooError(f"{base} holds no {title} files: put {files} in it (torchvision's layout).")
        return folder
    folder = found(torchvision_root())
    if folder is not None:
        return folder
    if fetch is None:
        raise GanzooError(f"{title} cannot be downloaded automatically: put {files} in a folder and pass "
                          f"--data-dir FOLDER.")
    if not download:
        raise GanzooError(f"{title} is not in the cache and downloading is off: put {files} in a folder and pass "
                          f"--data-dir FOLDER.")
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # torchvision prints every mirror and file it tries
            fetch(torchvision_root())
    except Exception as exc:  # offline (URLError), a mirror's quota, a checksum, gdown missing: the same advice
        reason = (str(exc).strip().splitlines() or [""])[0][:160].rstrip(".")
        raise GanzooError(f"{title} could not be downloaded ({type(exc).__name__}{': ' + reason if reason else ''}); "
                          f"on a machine without internet, put {files} in a folder and pass --data-dir FOLDER."
                          ) from None
    folder = found(torchvision_root())
    if folder is None:
        raise GanzooError(f"{title} was downloaded, but its files are not in {torchvision_root()} where torchvision "
                          f"puts them: put {files} there, or in a folder passed as --data-dir.")
    return folder


def all_files(folder: Path, names: Iterable[str]) -> bool:
    return all((folder / name).is_file() for name in names)


def fingerprint(paths: Iterable[Path], base: Path) -> str:
    """Names, sizes and modification times of files: changes whenever one is added, removed or rewritten."""
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(base)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def scan(folder: Path) -> dict[str, os.stat_result]:
    """name -> stat of every file directly in a folder, in one pass (CelebA has 202,599)."""
    with os.scandir(folder) as entries:
        return {e.name: e.stat() for e in entries if e.is_file()}
