"""Writing files so that a crash never leaves half of one: every file ganzoo writes goes through here.

`atomic_write` writes through a temporary file in the same folder (`.<name>.tmp<pid>`), fsyncs it and
renames it over the target; `remove_stale_temporaries` deletes what a killed process left of such
temporaries. `write_text` and `write_json` are the two shapes most writes take.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any, Callable

TMP_MARK = ".tmp"  # atomic_write's temporaries: .<name>.tmp<pid>


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """`text` to `path`, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """`data` as JSON (ending in a newline) to `path`, atomically."""
    return write_text(path, json.dumps(data, indent=indent) + "\n")


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete what atomic writes of a killed process left behind (call with the folder locked)."""
    removed = []
    for path in Path(folder).glob(f".*{TMP_MARK}*"):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def cache_dir() -> Path:
    """Where ganzoo keeps downloads and decoded images: $GANZOO_CACHE, else ~/.cache/ganzoo."""
    root = os.environ.get("GANZOO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ganzoo")
    return Path(root)
