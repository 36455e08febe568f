"""Pretrained generators: weights a plugin registers by name (``register_pretrained``), verified, loaded, fetched.

    ganzoo sample dcgan-mnist                   # a pretrained name wherever a weights file goes
    ganzoo pretrained                           # what is registered, with its card
    G = ganzoo.load_pretrained("dcgan-mnist")   # from Python: G.sample(64), G.config, G.card

A registered generator is a weights file shipped in a package, or a URL its card names (fetched once into
``<cache>/pretrained/``, see ganzoo.data.cache_dir). Either way the file's sha256 must be the card's: a file
that differs is refused in one sentence, never loaded.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import RunConfig
from .errors import GanzooError
from .registry import Entry

DOWNLOAD_TIMEOUT_S = 60
CHUNK = 1 << 20


def pretrained_entry(name: str) -> Entry | None:
    """The registered pretrained generator of this name, or None."""
    from .plugins import registries

    registry = registries().pretrained
    return registry.get(name) if name in registry else None


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_path(entry: Entry) -> Path:
    """Where a downloaded file lives in the cache: named by its sha256, so another version never collides."""
    from .data import cache_dir

    tail = Path(str(entry.card["url"]).split("?")[0]).name or "weights.safetensors"
    return cache_dir() / "pretrained" / f"{entry.card['sha256'][:16]}-{tail}"


def weights_path(name: str, *, download: bool = True, console=None) -> Path:
    """The verified weights file of a registered pretrained generator: its shipped file, or its cached download
    (fetched now if missing). A sha256 other than the card's is refused."""
    from .plugins import registries

    entry = registries().pretrained.get(name)                  # unknown: the registry's sentence, closest name
    want = entry.card["sha256"]
    if entry.factory is not None:
        path = Path(entry.factory)
        if not path.is_file():
            raise GanzooError(f"The weights file of the pretrained generator {name!r} is missing ({path}); "
                              f"reinstall the package of the plugin {entry.plugin!r}.")
        got = sha256_of(path)
        if got != want:
            raise GanzooError(f"The weights file of the pretrained generator {name!r} ({path}) has sha256 "
                              f"{got[:12]}..., not the {want[:12]}... its card names, so it was changed or damaged; "
                              f"reinstall the package of the plugin {entry.plugin!r}.")
        return path
    path = cached_path(entry)
    if path.is_file() and sha256_of(path) == want:
        return path
    if not download:
        raise GanzooError(f"The pretrained generator {name!r} is downloaded from {entry.card['url']}, which is not "
                          f"allowed here (downloads are off); put the file at {path}.")
    return fetch(entry.card["url"], want, path, what=f"the pretrained generator {name!r}", console=console)


def fetch(url: str, sha256: str, path: Path, *, what: str, console=None) -> Path:
    """Download url to path through a temporary file, checking the sha256 before the file takes its name; a
    mismatch leaves nothing behind."""
    from .checkpoint import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()

    def download(tmp: Path) -> None:
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as f:
                total = int(response.headers.get("Content-Length") or 0) or None
                for chunk in _progress(iter(lambda: response.read(CHUNK), b""), total, what, console):
                    digest.update(chunk)
                    f.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = (f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else
                      getattr(exc, "reason", None) or exc)
            raise GanzooError(f"Could not download {what} from {url}: {reason}.") from None
        got = digest.hexdigest()
        if got != sha256:
            raise GanzooError(f"The file downloaded from {url} for {what} has sha256 {got[:12]}..., not the "
                              f"{sha256[:12]}... its card names, so it was refused and nothing was cached.")

    return atomic_write(path, download)


def _progress(chunks, total: int | None, what: str, console):
    """The chunks, with a download bar on the console when there is one."""
    if console is None:
        yield from chunks
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from .terminal import off_terminal

    with Progress(TextColumn(f"downloading {what}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True, disable=off_terminal(console)) as bar:
        task = bar.add_task("download", total=total)
        for chunk in chunks:
            bar.advance(task, len(chunk))
            yield chunk


def resolve(argument: str | Path) -> Path | None:
    """What a command's weights argument names when it is a pretrained name and no file or folder of that name
    exists here: the verified weights file. None for anything else (a path, or a name no plugin registers)."""
    if not is_pretrained_name(argument):
        return None
    return weights_path(str(argument), console=_stderr())


def name_of(path: str | Path) -> str | None:
    """The pretrained generator whose weights file this is (shipped or downloaded), or None."""
    from .plugins import registries

    path = Path(path).resolve()
    for entry in registries().pretrained:
        source = Path(entry.factory) if entry.factory is not None else cached_path(entry)
        if source.resolve() == path:
            return entry.name
    return None


def is_pretrained_name(argument: str | Path) -> bool:
    """Whether a command's weights argument names a pretrained generator (and no file or folder here)."""
    text = str(argument)
    return not Path(text).exists() and os.sep not in text and pretrained_entry(text) is not None


def _stderr():
    from .terminal import Console

    return Console(stderr=True)


def unknown_weights_message(argument: str | Path) -> str | None:
    """For a weights argument that is neither a file nor a folder: the closest pretrained name, if any is close."""
    import difflib

    from .plugins import registries

    names = registries().pretrained.names()
    close = difflib.get_close_matches(str(argument), names, n=1, cutoff=0.6)
    if close:
        return (f"No weights file or run folder at {argument}, and no pretrained generator of that name; did you "
                f"mean {close[0]!r}? (see `ganzoo pretrained`)")
    return None


@dataclass
class PretrainedGenerator:
    """A loaded pretrained generator: the network (eval mode, float32), the run config its file carries, its
    card and where the verified file is."""

    G: nn.Module
    config: RunConfig
    card: dict[str, Any]
    path: Path
    name: str

    def sample(self, n: int = 64, *, seed: int = 0, cls: int | None = None) -> torch.Tensor:
        """n images [n, C, H, W] in [-1, 1] from the seeded latents (number i is the same z as on `ganzoo sheet`)."""
        from .sampling import sample

        return sample(self.G, self.config, n, seed=seed, cls=cls)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.G(*inputs)


def load_pretrained(name: str, device: str | torch.device = "cpu", *, download: bool = True) -> PretrainedGenerator:
    """A registered pretrained generator, its file verified against its card (downloaded and cached first when
    the card names a url): ``G = ganzoo.load_pretrained("dcgan-mnist"); images = G.sample(64)``."""
    from .checkpoint import load_networks
    from .device import select_device
    from .plugins import registries

    entry = registries().pretrained.get(name)
    path = weights_path(name, download=download)
    nets = load_networks(path, select_device(str(device)) if not isinstance(device, torch.device) else device,
                         discriminator=False)
    return PretrainedGenerator(nets.G, nets.config, entry.card, path, name)
