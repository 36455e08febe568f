"""Walking the latent space (Radford et al. 2015, section 6.1): smooth transitions mean no memorisation.

A row walks through keyframe z's; between two keyframes the path is linear or spherical.
Spherical interpolation (slerp, Shoemake 1985; White 2016 for GANs) follows the great circle, so
points along a walk between two Gaussian z's keep a typical norm instead of shrinking toward the
origin, where a linear path's midpoints (norm ~ 1/sqrt(2) of the ends) rarely come from the prior.
"""

from __future__ import annotations


import torch
from einops import rearrange
from PIL import Image
from torch import nn

from ..errors import GanzooError
from ..sampling import generate, grid_columns
from .common import BACKGROUND, board

MODES = ("slerp", "lerp")


def fractions(steps: int) -> torch.Tensor:
    """`steps` points from 0 to 1 inclusive, with both ends exact."""
    if steps < 2:
        raise GanzooError(f"--steps must be at least 2 (the two ends), got {steps}.")
    t = torch.linspace(0, 1, steps, dtype=torch.float64)
    t[0], t[-1] = 0.0, 1.0
    return t


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight line: [d], [d], [T] -> [T, d]; t=0 gives z0 and t=1 gives z1 exactly."""
    t = t.to(torch.float64)[:, None]
    return ((1 - t) * z0.double() + t * z1.double()).to(z0.dtype)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Great-circle path: [d], [d], [T] -> [T, d]; falls back to lerp for (anti)parallel ends."""
    a, b = z0.double(), z1.double()
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    if sin.abs() < 1e-6:  # parallel: the circle is the line; antiparallel: no unique circle
        return lerp(z0, z1, t)
    t = t.to(torch.float64)[:, None]
    # at t=0: sin(omega)/sin(omega) = 1 and sin(0) = 0, so the ends come out exact
    path = torch.sin((1 - t) * omega) / sin * a + torch.sin(t * omega) / sin * b
    return path.to(z0.dtype)


def walk(keys: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """A path through keyframes [k, d]: `steps` points per leg, shared keyframes once: [(k-1)*(steps-1)+1, d]."""
    if mode not in MODES:
        raise GanzooError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}.")
    if len(keys) < 2:
        raise GanzooError("A walk needs at least two keyframes.")
    step = slerp if mode == "slerp" else lerp
    t = fractions(steps)
    legs = [step(keys[i], keys[i + 1], t) for i in range(len(keys) - 1)]
    return torch.cat([legs[0]] + [leg[1:] for leg in legs[1:]])


def interpolate(G: nn.Module, keys: torch.Tensor, steps: int, mode: str = "slerp",
                batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Walk every row of keyframes [rows, k, d]; returns (images [rows, cols, C, H, W], z [rows, cols, d])."""
    paths = torch.stack([walk(row, steps, mode) for row in keys])                    # [rows, cols, d]
    images = generate(G, rearrange(paths, "r t d -> (r t) d"), batch_size=batch)
    return rearrange(images, "(r t) c h w -> r t c h w", r=len(keys)), paths


def gif_frames(images: torch.Tensor, scale: int = 1, bounce: bool = True, captions: list[str] | None = None,
               title: str = "") -> list[Image.Image]:
    """Frame t shows every row's t-th image as one grid, each cell labelled with its walk (captions), under
    `title` and the frame's place in the walk; `bounce` plays it back too, so the loop has no jump."""
    rows, cols = images.shape[:2]
    nrow = grid_columns(rows)
    labels = [(captions or [""] * rows)[i:i + nrow] for i in range(0, rows, nrow)]
    frames = []
    for t in range(cols):
        cells = list(images[:, t])
        grid = [cells[i:i + nrow] for i in range(0, rows, nrow)]
        heading = f"{title + ': ' if title else ''}image {t + 1} of {cols}"
        frames.append(board(grid, cell_labels=labels if captions else None, scale=scale, title=heading))
    width, height = max(f.width for f in frames), max(f.height for f in frames)   # one size for every frame
    frames = [f if f.size == (width, height) else _padded(f, width, height) for f in frames]
    if bounce and cols > 2:
        frames += frames[-2:0:-1]
    return frames


def _padded(frame: Image.Image, width: int, height: int) -> Image.Image:
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    canvas.paste(frame, (0, 0))
    return canvas
