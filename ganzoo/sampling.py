"""Drawing samples from a generator: the one place G(z) runs outside a training step.

`ganzoo sample`, the epoch grids, evaluation, compare's pictures and the analyses all call
`generate` (or `sample`, which draws the seeded latents first). `latents` is the one way their z
are drawn: sample number i of a seed is the same z in every command. What sampling means is decided
here, once: eval mode (BatchNorm's running statistics) under inference mode, in batches, the
generator's train/eval mode restored, the result on the CPU. When generators grow class labels
or an exponential moving average of their weights, this is where they go: `generate` will pass
the labels beside z, and the caller hands it the averaged copy to sample from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from rich.console import Console
from rich.progress import track
from torch import nn
from torchvision.utils import save_image

from .checkpoint import atomic_write
from .config import RunConfig
from .errors import GanzooError
from .models import sample_latent


def progress(parts: Iterable, description: str, total: int, console: Console | None) -> Iterable:
    """A transient progress bar on `console`; none without one (e.g. inside a training run's own bar)."""
    if console is None:
        return parts
    return track(parts, description=description, total=total, console=console, transient=True)


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


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 pixels, rounded as a saved image would be (the inverse of to_model_range)."""
    return images.float().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


def _device_of(module: nn.Module) -> torch.device:
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def generate(G: nn.Module, z: torch.Tensor, *, batch_size: int = 256, autocast: torch.dtype | None = None,
             uint8: bool = False, console: Console | None = None, description: str = "sampling") -> torch.Tensor:
    """G(z) for latents z [N, z_dim]: images [N, C, H, W] on the CPU, float32 in [-1, 1] (uint8 pixels if asked).

    G runs in eval mode under inference mode, `batch_size` latents at a time, on the device its weights
    are on (under autocast to `autocast` if given, as the trainer's own precision); its train/eval mode
    is restored afterwards.
    """
    device = _device_of(G)
    was_training = G.training
    G.eval()
    out = []
    parts = z.split(batch_size)
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            for part in progress(parts, description, len(parts), console):
                images = G(part.to(device)).float()
                out.append((to_uint8(images) if uint8 else images).cpu())
            return torch.cat(out) if out else torch.empty(0)
    finally:
        G.train(was_training)


def sample(G: nn.Module, config: RunConfig, n: int, *, seed: int = 0, **options) -> torch.Tensor:
    """Samples number 0..n-1 of `seed` (`latents`: sample i is the same z in every command); options as
    for `generate`."""
    return generate(G, latents(config, seed, range(n)), **options)


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    """Save [-1, 1] images as one PNG grid, atomically."""
    return atomic_write(path, lambda tmp: save_image(images.float(), tmp, nrow=nrow, normalize=True,
                                                     value_range=(-1, 1), format="png"))
