"""Checks made before a run loads any data: a writable run folder with room for its checkpoints, memory
for the networks, and one process per run folder. A run that cannot finish should fail in the first
second with a sentence, not after an hour with a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Iterator

import torch

from .files import TMP_MARK
from .config import RunConfig
from .device import free_memory
from .errors import GanzooError
from .models import build_on_meta
from .runfiles import RunFiles

NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
MB = 2 ** 20


def make_run_folder(root: Path) -> None:
    """Create the run folder and prove a file can be written in it."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe{TMP_MARK}{os.getpid()}"
        probe.write_bytes(b"ganzoo")
        probe.unlink()
    except OSError as exc:
        raise GanzooError(f"Cannot write in the run folder {root} ({exc.strerror or exc}); choose another --out."
                          ) from None


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def model_bytes(config: RunConfig) -> tuple[int, int, int] | None:
    """(G's bytes, D's bytes, trainable bytes) of the networks the config describes, built on the meta
    device (no memory used); None for a plugin network that cannot be built there."""
    nets = build_on_meta(config)
    if nets is None:
        return None
    G, D = nets
    g, d = (_tensor_bytes(net.state_dict().values()) for net in (G, D))
    trainable = _tensor_bytes(p for net in (G, D) for p in net.parameters())
    return g, d, trainable


def check_memory(config: RunConfig, device: torch.device, sizes: tuple[int, int, int]) -> None:
    """Refuse networks whose weights, gradients and Adam moments alone exceed the free memory."""
    needed = 4 * sizes[2] + (sizes[0] + sizes[1] - sizes[2])
    free = free_memory(device)
    if free is not None and needed > free:
        raise GanzooError(f"G and D need at least {needed / 2 ** 30:,.1f} GiB for weights, gradients and Adam state, "
                          f"more than the {free / 2 ** 30:,.1f} GiB free on {device}; lower --g-width, --d-width, "
                          f"--z-dim or --image-size.")


def check_room(root: Path, sizes: tuple[int, int, int]) -> int:
    """Reserve (and release) room for a checkpoint and a generator file beside the previous ones.

    posix_fallocate asks the file system itself, so a user quota or a file-size limit counts as well
    as free blocks; where it is not supported the free space reported by statvfs is compared.
    Returns the bytes checked for.
    """
    g, d, trainable = sizes
    checkpoint = g + d + 2 * trainable + 64 * 1024          # weights, Adam's two moments, RNG states
    existing = sum(p.stat().st_size for p in root.glob("*.safetensors") if p.is_file())
    needed = max(2 * (checkpoint + g) - existing, 0) + MB   # old files stay until the new ones are whole
    probe = root / f".space-probe{TMP_MARK}{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, needed)
        finally:
            os.close(fd)
            probe.unlink()
    except (AttributeError, OSError) as exc:                 # AttributeError: no posix_fallocate here
        if isinstance(exc, OSError) and exc.errno in NO_ROOM:
            raise GanzooError(f"{root} has no room for this run's checkpoints: reserving {needed / MB:,.1f} MB "
                              f"failed ({exc.strerror}). Free some space or choose another --out.") from None
        free = shutil.disk_usage(root).free
        if free < needed:
            raise GanzooError(f"{root} has {free / MB:,.1f} MB free, less than the "
                              f"{needed / MB:,.1f} MB this run's checkpoints need. Free some space or choose "
                              f"another --out.") from None
    return needed


def check_run(config: RunConfig) -> None:
    """Everything that can be checked before the data is loaded."""
    device = torch.device(config.device)                   # decided, and checked, by ganzoo.resolve
    sizes = model_bytes(config)                            # e.g. an image size the network cannot take
    if sizes is not None:
        check_memory(config, device, sizes)
    root = Path(config.out)
    make_run_folder(root)
    if sizes is not None:
        check_room(root, sizes)


def remove_if_unused(created: list[Path]) -> None:
    """Remove the folders a refused run created (deepest first), as long as they hold nothing else."""
    if created:
        with contextlib.suppress(OSError):
            (created[0] / RunFiles.LOCK).unlink()
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return


@contextlib.contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """Hold the run folder for this process: a second `ganzoo run` on it fails instead of interleaving files.

    The lock is the kernel's (flock), so a killed process never leaves a stale one held; a run that ends removes
    its `.lock` file (while still holding it: a process that opened the old file finds, once it holds the lock,
    that the file is gone, and takes a fresh one).
    """
    try:
        import fcntl
    except ImportError:  # not on this OS: no lock
        yield
        return
    path = root / RunFiles.LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise GanzooError(f"{root} is in use by another ganzoo process (pid {holder}); wait for it to finish "
                              f"or choose another --out.") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break                          # the file we hold is the folder's lock
        except FileNotFoundError:
            pass
        os.close(fd)                           # removed by the run that just ended: take the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()                      # still held: nobody else can be using it
        os.close(fd)
