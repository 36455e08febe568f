"""Drawing samples from a generator: the one place G(z) (a conditional model's G(z, y)) runs outside a
training step.

`ganzoo sample`, the epoch grids, evaluation, compare's pictures and the analyses all call
`generate` (or `sample`, which draws the seeded latents first). `draw` is the one way their (z, y)
are drawn: sample number i of a seed is the same z in every command (`latents`), and for a
conditional model the same class, i % num_classes unless one class is asked for (`classes`). What
sampling means is decided here, once: eval mode (BatchNorm's running statistics) under inference
mode, in batches, the generator's train/eval mode restored, the result on the CPU. A run with an
exponential moving average of G hands `generate` the averaged copy to sample from.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Iterable

import torch
from rich.console import Console
from rich.progress import track

from .terminal import off_terminal
from torch import nn

from .files import atomic_write
from .config import RunConfig
from .errors import GanzooError
from .models import sample_latent


def progress(parts: Iterable, description: str, total: int, console: Console | None) -> Iterable:
    """A transient progress bar on `console`; none without one (e.g. inside a training run's own bar)."""
    if console is None:
        return parts
    return track(parts, description=description, total=total, console=console, transient=True,
                 disable=off_terminal(console))


# Sample number i of seed s is drawn from its own generator, seeded s * SEED_STRIDE + i, so a number
# names the same z in every command (sample, eval, sheet, the analyses) and for every sample count
# (torch's CPU randn is not prefix-stable: randn(64)[:16] differs from randn(16)).
SEED_STRIDE = 1_000_003


def latents(config: RunConfig, seed: int, indices: Iterable[int]) -> torch.Tensor:
    """z number i of `seed` for each i in indices: [len(indices), z_dim] on the CPU, from the config's prior.

    Each from its own seeded CPU generator: the same for a seed and number on any device, in any
    command, and no draw on the global RNG a training run relies on.
    """
    indices = [int(i) for i in indices]
    if any(not 0 <= i < SEED_STRIDE for i in indices):
        raise GanzooError(f"Sample numbers run from 0 to {SEED_STRIDE - 1}, got {min(indices)}..{max(indices)}.")
    out = torch.empty(len(indices), config.z_dim)
    g = torch.Generator()
    for row, i in enumerate(indices):
        g.manual_seed(int(seed) * SEED_STRIDE + i)
        out[row] = sample_latent(1, config, generator=g)[0]
    return out


def check_class(config: RunConfig, cls: int) -> int:
    """A class a user asked for (--class): one of the model's, else a sentence saying which there are."""
    if not config.conditional:
        raise GanzooError(f"The model {config.model!r} is not conditioned on a class; --class needs a conditional "
                          f"model (e.g. cdcgan).")
    if type(cls) is not int or not 0 <= cls < config.num_classes:
        raise GanzooError(f"--class must be one of the model's {config.num_classes} classes, 0 to "
                          f"{config.num_classes - 1}, got {cls}.")
    return cls


def classes(config: RunConfig, indices: Iterable[int], cls: int | None = None) -> torch.Tensor | None:
    """The class of sample number i for each i in indices: int64 [len(indices)] on the CPU, `cls` for every
    sample when given, else i % num_classes (so n samples cover the classes evenly, the same in every command);
    None for an unconditional model."""
    if not config.conditional:
        if cls is not None:
            check_class(config, cls)
        return None
    indices = torch.as_tensor([int(i) for i in indices], dtype=torch.int64)
    if cls is not None:
        return torch.full_like(indices, check_class(config, cls))
    return indices % config.num_classes


def draw(config: RunConfig, seed: int, indices: Iterable[int], cls: int | None = None
         ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z, y) of sample number i of `seed` for each i in indices: `latents` and `classes` (y None when the model
    is unconditional)."""
    indices = [int(i) for i in indices]
    return latents(config, seed, indices), classes(config, indices, cls)


def per_class(config: RunConfig, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, y) for a grid with one row per class and n columns: column j is z number j in every row, so a
    row shows its class and a column one z (the style) across the classes. [num_classes * n, ...]."""
    if not config.conditional:
        raise GanzooError(f"The model {config.model!r} is not conditioned on a class: a grid of one row per class "
                          f"needs a conditional model (e.g. cdcgan).")
    z = latents(config, seed, range(n))
    return z.repeat(config.num_classes, 1), torch.arange(config.num_classes).repeat_interleave(n)


class ClassFixed(nn.Module):
    """A conditional G with its class fixed, as an unconditional G(z): what the analyses walk (interpolations,
    vector arithmetic, feature maps), so their z move while the class stays put. Its labels come from `classes`."""

    def __init__(self, G: nn.Module, config: RunConfig, cls: int):
        super().__init__()
        self.G, self.config, self.cls = G, config, check_class(config, cls)

    def forward(self, z):                                               # [B, z_dim] -> [B, C, S, S]
        return self.G(z, classes(self.config, range(len(z)), self.cls).to(z.device))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 pixels, rounded as a saved image would be (the inverse of to_model_range)."""
    return images.float().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def _device_of(module: nn.Module) -> torch.device:
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def generate(G: nn.Module, z: torch.Tensor, y: torch.Tensor | None = None, *, batch_size: int = 256,
             autocast: torch.dtype | None = None, uint8: bool = False, console: Console | None = None,
             description: str = "sampling") -> torch.Tensor:
    """G(z) for latents z [N, z_dim], or G(z, y) with class labels y [N] for a conditional G: images [N, C, H, W]
    on the CPU, float32 in [-1, 1] (uint8 pixels if asked).

    G runs in eval mode under inference mode, `batch_size` latents at a time, on the device its weights
    are on (under autocast to `autocast` if given, as the trainer's own precision); its train/eval mode
    is restored afterwards.
    """
    device = _device_of(G)
    was_training = G.training
    G.eval()
    out = []
    parts = z.split(batch_size)
    labels = y.split(batch_size) if y is not None else [None] * len(parts)
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            for part, part_y in progress(list(zip(parts, labels)), description, len(parts), console):
                images = (G(part.to(device)) if part_y is None else G(part.to(device), part_y.to(device))).float()
                out.append((to_uint8(images) if uint8 else images).cpu())
            return torch.cat(out) if out else torch.empty(0)
    finally:
        G.train(was_training)


def sample(G: nn.Module, config: RunConfig, n: int, *, seed: int = 0, cls: int | None = None,
           **options) -> torch.Tensor:
    """Samples number 0..n-1 of `seed` (`draw`: sample i is the same z, and class, in every command), all of
    class `cls` if given; options as for `generate`."""
    return generate(G, *draw(config, seed, range(n), cls), **options)


def grid_columns(n: int, num_classes: int = 0) -> int:
    """Images per row of a grid of n samples: a conditional model's classes (sample i is of class
    i % num_classes, so each column is one class), else the side of the smallest square that holds them."""
    return num_classes or max(1, math.ceil(math.sqrt(n)))


def grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: int = 0) -> torch.Tensor:
    """uint8 images [N, C, H, W] -> one uint8 grid [3, H', W'], nrow per row, `padding` pixels of `pad_value`
    around each (torchvision's make_grid layout: grey images become RGB, and one image is itself, unpadded)."""
    n, c, h, w = images.shape
    if c == 1:
        images = images.expand(-1, 3, -1, -1)
    if n == 1:
        return images[0, :3]
    columns = min(nrow, n)
    rows = -(-n // columns)
    out = torch.full((3, rows * (h + padding) + padding, columns * (w + padding) + padding), pad_value,
                     dtype=torch.uint8)
    for i, image in enumerate(images[:, :3]):
        y, x = divmod(i, columns)
        top, left = y * (h + padding) + padding, x * (w + padding) + padding
        out[:, top:top + h, left:left + w] = image
    return out


def grid_png(images: torch.Tensor, nrow: int = 8) -> bytes:
    """[-1, 1] images as the bytes of one PNG grid (`grid`'s layout, PIL alone: torchvision takes a second to
    import): what `save_grid` writes and `ganzoo view` downloads."""
    from PIL import Image

    pixels = grid(to_uint8(images.detach().cpu().clamp(-1, 1)), nrow=nrow).permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="png")
    return buffer.getvalue()


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    """Save [-1, 1] images as one PNG grid, atomically."""
    data = grid_png(images, nrow)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))
