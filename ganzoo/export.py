"""Samples written for other evaluators: `ganzoo sample RUN -n 50000 --format npz|png-folder --out PATH`.

    png-folder  PATH/000000.png, 000001.png, ...: uint8 PNGs (grey for a grey model, RGB for a colour one),
                sample i in file i. torch-fidelity (`fidelity --input1 PATH`) and clean-fid
                (`fid.compute_fid(PATH, ...)`) read the folder as it is; StudioGAN's src/evaluate.py reads a
                torchvision ImageFolder, one sub-folder per class: write to `--out gen/0` and give it `gen`.
    npz         one uncompressed .npz with `arr_0`, uint8 [N, H, W, 3] (channels last, grey repeated to RGB),
                and `arr_1`, int64 [N] classes, for a conditional model: the layout of the ADM/guided-diffusion
                evaluator suite, which StyleGAN-XL and many papers' FID scripts read.

Both carry how they were made (`ganzoo.json` in the folder, a `ganzoo` entry in the npz): the generator file and
its sha256, the seed, the precision, n, the ganzoo version. The samples are ganzoo's own (sample i of seed s is
the same z in every command: ganzoo.sampling), drawn in batches and written as they come, so 50,000 or more never
sit in memory; the result appears at PATH only once complete.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from torch import nn

from .checkpoint import atomic_write
from .config import RunConfig
from .errors import GanzooError
from .sampling import SEED_STRIDE, draw, generate, progress

FORMATS = ("npz", "png-folder")
BATCH = 500


def batches(G: nn.Module, config: RunConfig, n: int, seed: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor | None]]:
    """(first index, uint8 images [B, C, H, W], classes or None) for samples 0..n-1 of `seed`, in batches."""
    for start in range(0, n, BATCH):
        z, y = draw(config, seed, range(start, min(start + BATCH, n)))
        yield start, generate(G, z, y, uint8=True), y


def provenance(config: RunConfig, weights: Path, n: int, seed: int, layout: str) -> dict[str, Any]:
    from . import __version__
    from .evaluate import file_sha256

    return {"model": config.model, "weights": weights.name, "weights_sha256": file_sha256(weights.resolve()),
            "n": n, "seed": seed, "precision": "fp32", "image_size": config.image_size, "channels": config.channels,
            "layout": layout, "ganzoo": __version__}


def write_png_folder(G: nn.Module, config: RunConfig, n: int, seed: int, out: Path, about: dict[str, Any],
                     console: Console | None = None) -> Path:
    """PATH/000000.png ...: written into a temporary folder beside PATH, renamed to PATH when all are there."""
    width = max(6, len(str(n - 1)))
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)            # what an interrupted export left
    partial.mkdir(parents=True)
    try:
        steps = progress(batches(G, config, n, seed), f"writing {n} PNGs", -(-n // BATCH), console)
        for start, images, _ in steps:
            for i, image in enumerate(images):
                pixels = image.permute(1, 2, 0).numpy()
                Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(
                    partial / f"{start + i:0{width}d}.png", compress_level=1)
        (partial / "ganzoo.json").write_text(json.dumps(about, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)         # nothing half-written is left behind
        raise
    if out.exists():
        out.rmdir()                                       # an empty folder (a full one was refused before)
    partial.rename(out)
    return out


def _npy_entry(archive: zipfile.ZipFile, name: str, dtype: str, shape: tuple[int, ...]):
    """An open .npy member of `archive` whose header says dtype and shape; its data is written after."""
    member = archive.open(f"{name}.npy", "w", force_zip64=True)
    np.lib.format.write_array_header_1_0(member, {"descr": np.dtype(dtype).str, "fortran_order": False,
                                                  "shape": shape})
    return member


def write_npz(G: nn.Module, config: RunConfig, n: int, seed: int, out: Path, about: dict[str, Any],
              console: Console | None = None) -> Path:
    """One .npz (uncompressed, as np.savez writes): arr_0 uint8 [N, H, W, 3], arr_1 int64 [N] for a conditional
    model, ganzoo: how it was made (a JSON string)."""
    size = config.image_size

    def write(tmp: Path) -> None:
        labels = []
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            with _npy_entry(archive, "arr_0", "|u1", (n, size, size, 3)) as member:
                steps = progress(batches(G, config, n, seed), f"writing {n} samples", -(-n // BATCH), console)
                for _, images, y in steps:
                    member.write(images.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).contiguous().numpy().tobytes())
                    if y is not None:
                        labels.append(y)
            if labels:
                with _npy_entry(archive, "arr_1", "<i8", (n,)) as member:
                    member.write(torch.cat(labels).numpy().astype("<i8").tobytes())
            text = np.array(json.dumps(about))
            with _npy_entry(archive, "ganzoo", text.dtype.str, ()) as member:
                member.write(text.tobytes())

    return atomic_write(out, write)


def export_samples(G: nn.Module, config: RunConfig, weights: Path, n: int, fmt: str, out: str | Path, *,
                   seed: int = 0, console: Console | None = None) -> Path:
    """Write samples 0..n-1 of `seed` as `fmt` (npz or png-folder) at `out`."""
    out = Path(out)
    if fmt not in FORMATS:
        raise GanzooError(f"Unknown --format {fmt!r}; choose npz or png-folder (or leave it out for a PNG grid).")
    if not 0 < n < SEED_STRIDE:
        raise GanzooError(f"-n must lie between 1 and {SEED_STRIDE - 1}, got {n}.")
    if fmt == "png-folder":
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise GanzooError(f"{out} already exists and is not an empty folder; choose another --out or remove it.")
        return write_png_folder(G, config, n, seed, out, provenance(config, weights, n, seed, fmt), console)
    if out.suffix != ".npz":
        raise GanzooError(f"--out for --format npz must name a .npz file, got {str(out)!r}.")
    if out.is_dir():
        raise GanzooError(f"{out} is a folder; --format npz writes one .npz file.")
    return write_npz(G, config, n, seed, out, provenance(config, weights, n, seed, fmt), console)
