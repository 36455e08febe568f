"""The decoded-image cache: images still in their files, decoded once into a memory-mapped uint8 array.

One folder per source and resolution under <cache>/images/ (see ganzoo.files.cache_dir):

    images.u8    the images, uint8 [N, C, S, S] in C order, exactly as prepare_images made them
    labels.i64   their labels, int64 [N] (when the dataset has labels)
    meta.json    source, fingerprint of the files, shape, and how many images are done

Decoding runs in worker threads with a progress bar; the count of finished images is recorded
every few seconds (after the rows are flushed to disk) and when the build stops for any reason,
so an interrupted build continues where it stopped. A source whose fingerprint changed (files
added, removed, rewritten) is rebuilt. Later runs map the finished array without reading it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .files import atomic_write
from .terminal import off_terminal
from .files import cache_dir
from .images import EncodedImages, ImageData, decode_image, prepare_images
from .errors import GanzooError

FORMAT = 1
CHUNK = 256           # images decoded per round of the worker threads
RECORD_EVERY = 2.0    # seconds between recording progress (an interrupted build loses at most this much)


def cache_folder(encoded: EncodedImages, *, image_size: int, channels: int, crop: int | None) -> Path:
    """The folder of a source at a resolution: a readable name, then a hash of everything that keys it."""
    key = json.dumps([FORMAT, encoded.source, image_size, channels, crop])
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", encoded.source).strip("_")[-48:] + f"-{image_size}px-{channels}ch"
    return cache_dir() / "images" / f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _fingerprint(encoded: EncodedImages) -> str:
    return hashlib.sha256(encoded.fingerprint.encode()).hexdigest()


def read_meta(folder: Path) -> dict | None:
    """The cache's meta.json, or None when missing or unreadable (then the cache is rebuilt)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None
    except (OSError, ValueError):
        return None


def status(data: ImageData, *, image_size: int, channels: int) -> tuple[Path, str]:
    """(cache folder, what state it is in) for `ganzoo data`: complete, partial, stale or not built."""
    encoded = data.images
    folder = cache_folder(encoded, image_size=image_size, channels=channels, crop=data.crop)
    meta = read_meta(folder)
    if meta is None:
        return folder, "not built yet"
    if meta["fingerprint"] != _fingerprint(encoded):
        return folder, "stale (the files changed since): rebuilt by the next run"
    n = meta["shape"][0]
    return folder, "complete" if meta["done"] >= n else f"{meta['done']:,} of {n:,} images decoded"


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One process builds a cache at a time; another waits, then finds it built."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cached_images(data: ImageData, *, image_size: int, channels: int, console: Console
                  ) -> tuple[torch.Tensor, torch.Tensor | None, Path]:
    """(images uint8 [N, channels, S, S] memory-mapped, labels or None, cache folder) of encoded images,
    decoding what is not yet in the cache."""
    encoded: EncodedImages = data.images
    folder = cache_folder(encoded, image_size=image_size, channels=channels, crop=data.crop)
    shape = (len(encoded), channels, image_size, image_size)
    fingerprint = _fingerprint(encoded)
    with _locked(folder):
        meta = read_meta(folder)
        usable = (meta is not None and meta.get("fingerprint") == fingerprint and meta.get("shape") == list(shape)
                  and isinstance(meta.get("done"), int) and meta["done"] >= 0 and _sized(folder / "images.u8", shape)
                  and (not meta.get("labels") or _sized(folder / "labels.i64", (shape[0], 8))))
        if meta is not None and not usable:
            console.print(f"[yellow]note[/yellow]: {encoded.source} changed since its image cache was built; "
                          f"rebuilding {folder}", soft_wrap=True)
        if not usable:
            meta = _start(folder, encoded, data.labels, shape, fingerprint)
        if meta["done"] < shape[0]:
            _build(folder, encoded, data.crop, shape, meta, console)
    images = torch.from_numpy(np.memmap(folder / "images.u8", dtype=np.uint8, mode="c", shape=shape))
    labels = None
    if meta.get("labels"):
        labels = torch.from_numpy(np.fromfile(folder / "labels.i64", dtype=np.int64))
    return images, labels, folder


def _sized(path: Path, shape: tuple[int, ...]) -> bool:
    return path.is_file() and path.stat().st_size == int(np.prod(shape))


def _start(folder: Path, encoded: EncodedImages, labels: torch.Tensor | None, shape: tuple[int, ...],
           fingerprint: str) -> dict:
    """A fresh, empty cache: space reserved for every image, nothing done yet."""
    needed = int(np.prod(shape)) + (labels.numel() * 8 if labels is not None else 0)
    free = shutil.disk_usage(folder).free + sum(p.stat().st_size for p in folder.glob("*.*") if p.is_file())
    if needed > free:
        raise GanzooError(f"Decoding {encoded.source} at {shape[2]}x{shape[3]} needs {needed / 2 ** 30:.1f} GiB in "
                          f"{folder}, which has {free / 2 ** 30:.1f} GiB free; set GANZOO_CACHE to a disk with room.")
    meta = {"format": FORMAT, "source": encoded.source, "fingerprint": fingerprint, "shape": list(shape),
            "labels": labels is not None, "done": 0}
    _record(folder, {**meta, "done": -1})               # a crash from here on leaves a cache marked unusable
    with open(folder / "images.u8", "wb") as f:
        f.truncate(int(np.prod(shape)))                 # sparse: the disk fills as images are decoded
    if labels is not None:
        atomic_write(folder / "labels.i64", lambda tmp: labels.to(torch.int64).numpy().tofile(tmp))
    else:
        (folder / "labels.i64").unlink(missing_ok=True)
    _record(folder, meta)
    return meta


def _record(folder: Path, meta: dict) -> None:
    atomic_write(folder / "meta.json", lambda tmp: tmp.write_text(json.dumps(meta, indent=1) + "\n"))


def _build(folder: Path, encoded: EncodedImages, crop: int | None, shape: tuple[int, ...], meta: dict,
           console: Console) -> None:
    """Decode images meta["done"]: into the array, recording progress as it goes."""
    n, channels, size = shape[0], shape[1], shape[2]
    rows = np.memmap(folder / "images.u8", dtype=np.uint8, mode="r+", shape=shape)

    def prepared(item_and_index):
        item, i = item_and_index
        image = decode_image(item, channels, lambda: encoded.where(i))            # [C, H, W], its own size
        return prepare_images(image[None], size, channels, crop)[0].numpy()       # [C, S, S]

    done, recorded_at = meta["done"], time.monotonic()
    verb = "continuing to decode" if done else "decoding"
    progress = Progress(TextColumn(f"{verb} {encoded.source} into the image cache ({size}x{size})"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                        transient=True, disable=off_terminal(console))
    try:
        with progress, ThreadPoolExecutor(min(8, os.cpu_count() or 1), thread_name_prefix="ganzoo-decode") as pool:
            task = progress.add_task("decode", total=n, completed=done)
            while done < n:
                stop = min(done + CHUNK, n)
                items = [(encoded.items[i], i) for i in range(done, stop)]        # fetched here, decoded there
                rows[done:stop] = np.stack(list(pool.map(prepared, items)))
                done = stop
                progress.update(task, completed=done)
                if time.monotonic() - recorded_at >= RECORD_EVERY:
                    _flush_and_record(rows, folder, meta, done)
                    recorded_at = time.monotonic()
    finally:  # whatever stopped the build (done, a bad image, Ctrl-C), what is decoded is kept
        _flush_and_record(rows, folder, meta, done)
        del rows
    if done == n:
        console.print(f"{n:,} images of {encoded.source} decoded into {folder}", soft_wrap=True)


def _flush_and_record(rows: np.memmap, folder: Path, meta: dict, done: int) -> None:
    rows.flush()                                        # the rows reach the disk before the count says so
    meta["done"] = done
    _record(folder, meta)
