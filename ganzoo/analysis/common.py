"""Shared pieces of the analyses: networks from a weights file, the latent sheet, generation, image boards."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont
from torch.nn import functional as F

from ..files import atomic_write
from ..errors import GanzooError
from ..runfiles import RunFiles, weights_file
from ..sampling import to_uint8

BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)


def parse_indices(text: str, what: str = "indices") -> list[int]:
    """'3,7, 12' -> [3, 7, 12], with a sentence on anything else."""
    try:
        values = [int(part) for part in (p.strip() for p in text.split(",")) if part != ""]
    except ValueError:
        raise GanzooError(f"{what} must be comma-separated sample numbers like 3,7,12; got {text!r}.") from None
    if not values:
        raise GanzooError(f"{what} must name at least one sample number; got {text!r}.")
    if any(v < 0 for v in values):
        raise GanzooError(f"{what} are sample numbers from 0 up; got {text!r}.")
    return values


def default_output(weights: str | Path, name: str) -> Path:
    """Analyses land beside the weights: <run>/analysis/<name>; a pretrained generator's (installed inside a
    package, or in the cache) in the current folder: analysis/<pretrained name>/<name>."""
    from ..pretrained import is_pretrained_name

    if is_pretrained_name(weights):
        return Path(RunFiles.ANALYSIS) / str(weights) / name
    return RunFiles(weights_file(weights, prefer_checkpoint=True).parent, model="").analysis / name


def output_name(*parts: object, suffix: str) -> str:
    """A file name made of what decides a picture's content ('arithmetic', 'seed0', '3,7 - 5 + 1'), so the
    next run of a command with other arguments writes beside it instead of over it. Characters a file
    name should not hold become '_'; a name longer than 100 characters is cut and ends in a hash."""
    text = "-".join(str(p) for p in parts if p not in (None, ""))
    name = re.sub(r"[^A-Za-z0-9.,+=_-]+", "_", text.replace(" ", "")).strip("_") or "analysis"
    if len(name) > 100:
        name = f"{name[:88]}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
    return name + suffix


# -- images -----------------------------------------------------------------------------------------

def view_scale(size: int, target: int = 64) -> int:
    """Integer upscale so a cell is at least `target` pixels (32x32 MNIST is hard to see 1:1)."""
    return max(1, math.ceil(target / max(1, size)))


def to_pil(image: torch.Tensor, scale: int = 1) -> Image.Image:
    """One [C, H, W] image in [-1, 1] -> PIL RGB, upscaled with nearest neighbour (pixels stay pixels)."""
    image = to_uint8(image.detach())
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    pil = Image.fromarray(image[:3].permute(1, 2, 0).numpy(), "RGB")
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    return pil


def normalise_each(maps: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> each map scaled to [-1, 1] by its own min and max; a flat map becomes black."""
    flat = maps.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    span = (high - low).clamp_min(1e-12)
    out = (flat - low[:, None]) / span[:, None] * 2 - 1
    out[(high - low) <= 1e-12] = -1
    return out.view_as(maps)


def resize_maps(maps: torch.Tensor, size: int) -> torch.Tensor:
    """[N, C, h, w] -> [N, C, size, size] by nearest neighbour, so a 4x4 map shows as blocks."""
    if maps.shape[-1] == size and maps.shape[-2] == size:
        return maps
    return F.interpolate(maps, size=(size, size), mode="nearest")


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType's bundled font
        return ImageFont.load_default()


def board(rows: Sequence[Sequence[torch.Tensor | None]], *, captions: Sequence[str] | None = None,
          cell_labels: Sequence[Sequence[str]] | None = None, scale: int = 1, pad: int = 2,
          title: str | Sequence[str] | None = None) -> Image.Image:
    """Images in rows on a dark board: an optional title above (one or more lines), an optional caption left
    of each row, an optional label on each cell.

    `rows` hold [C, H, W] images in [-1, 1] of one size (None leaves a cell empty).
    """
    cells = [c for row in rows for c in row if c is not None]
    if not cells:
        raise GanzooError("Nothing to draw.")
    h, w = cells[0].shape[-2] * scale, cells[0].shape[-1] * scale
    ncols = max(len(row) for row in rows)
    font = _font(max(10, min(18, h // 3)))
    caption_width = 0
    if captions:
        caption_width = max(int(font.getlength(c)) for c in captions) + 3 * pad + 4
    width = caption_width + pad + ncols * (w + pad)
    title_lines = [title] if isinstance(title, str) else list(title or [])
    title_font = _font(13)
    line_height = 17
    top = line_height * len(title_lines) + (2 * pad if title_lines else 0)
    if title_lines:
        width = max(width, max(int(title_font.getlength(t)) for t in title_lines) + 4 * pad)
    height = top + pad + len(rows) * (h + pad)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    if title_lines:
        canvas.info["title"] = " / ".join(title_lines)   # save_png stores it as the PNG's Title too
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(title_lines):
        draw.text((2 * pad, pad + i * line_height), text, fill=TEXT, font=title_font)
    label_font = _font(max(9, min(14, h // 4)))
    for r, row in enumerate(rows):
        y = top + pad + r * (h + pad)
        if captions:
            draw.text((pad + 2, y + h / 2), captions[r], fill=TEXT, font=font, anchor="lm")
        for c, image in enumerate(row):
            if image is None:
                continue
            x = caption_width + pad + c * (w + pad)
            canvas.paste(to_pil(image, scale), (x, y))
            if cell_labels and cell_labels[r][c]:
                text = cell_labels[r][c]
                box = draw.textbbox((x + 1, y + 1), text, font=label_font)
                draw.rectangle(box, fill=(0, 0, 0))
                draw.text((x + 1, y + 1), text, fill=(255, 220, 0), font=label_font)
    return canvas


def save_png(image: Image.Image, path: str | Path) -> Path:
    """A picture as PNG, written atomically; the title drawn on it (board's) also stored as the PNG's Title."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if image.info.get("title"):
        info.add_itxt("Title", image.info["title"])
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=info))


def save_gif(frames: Sequence[Image.Image], path: str | Path, fps: float = 10, loop: int = 0) -> Path:
    """An animated GIF (PIL's encoder), looping forever by default, written atomically."""
    if not frames:
        raise GanzooError("An animation needs at least one frame.")
    duration = max(20, round(1000 / fps))  # browsers clamp faster frames anyway
    first, rest = frames[0], list(frames[1:])
    return atomic_write(path, lambda tmp: first.save(tmp, format="GIF", save_all=True, append_images=rest,
                                                     duration=duration, loop=loop, disposal=1))
