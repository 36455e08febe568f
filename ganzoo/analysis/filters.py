"""What the networks learned to look for and to draw (Radford et al. 2015, section 6.2).

- D's first-layer filters as small images (a trained D shows strokes and edges where a random one
  shows noise);
- G's feature maps for one sample: the input of every G layer after the first, one cell per map.
"""

from __future__ import annotations


import torch
from einops import rearrange
from PIL import Image
from torch import nn

from ..errors import GanzooError
from ..sampling import generate, grid_columns
from .common import board, normalise_each, resize_maps
from .features import LEARNABLE, feature_layers, tap


def first_layer_filters(D: nn.Module, channels: int, image_size: int) -> torch.Tensor:
    """D's first learnable layer's weights as images [N, C, k, k] (C = 1 or 3), each scaled to [-1, 1].

    A convolution gives one filter per output channel; a fully-connected first layer (an MLP D)
    gives one whole-image template per hidden unit.
    """
    first = next((m for m in D.modules() if isinstance(m, LEARNABLE)), None)
    if first is None:
        raise GanzooError(f"{type(D).__name__} has no Conv or Linear layer to show.")
    w = first.weight.detach().float().cpu()
    if isinstance(first, nn.Conv2d):
        if w.shape[1] not in (1, 3):  # not an image's channels: show each input channel alone
            w = rearrange(w, "o i h w -> (o i) 1 h w")
    elif isinstance(first, nn.Linear) and w.shape[1] == channels * image_size * image_size:
        w = rearrange(w, "o (c h w) -> o c h w", c=channels, h=image_size)
    else:
        raise GanzooError(f"D's first layer is a {type(first).__name__} of weight shape {tuple(w.shape)}; only "
                          f"Conv2d filters or image-sized Linear templates can be shown as images.")
    return normalise_each(w)   # RGB filters keep their colours: one scale for the three channels of a filter


def filters_board(filters: torch.Tensor, limit: int = 256, cell: int = 32, what: str = "D") -> Image.Image:
    """A square-ish board of filters, each upscaled to about `cell` pixels, numbered, under a title
    saying what they are and how they are scaled."""
    total = len(filters)
    filters = filters[:limit]
    per_row = grid_columns(len(filters))
    scale = max(1, cell // filters.shape[-1])
    rows = [list(filters[i:i + per_row]) for i in range(0, len(filters), per_row)]
    labels = [[str(i) for i in range(start, min(start + per_row, len(filters)))]
              for start in range(0, len(filters), per_row)]
    k = "x".join(map(str, filters.shape[-2:]))
    shown = f"{len(filters)} of {total}" if len(filters) < total else f"all {total}"
    title = [f"{what}'s first-layer filters: {shown}, {k} each (x{scale})",
             "each scaled to its own range: black = its most negative weight, white = its most positive"]
    return board(rows, cell_labels=labels if scale * filters.shape[-1] >= 24 else None, scale=scale, title=title)


@torch.no_grad()
def generator_maps(G: nn.Module, z: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """Every hidden feature map G computes for one z [d]: [(hidden layer number, maps [C, h, w])], 4-D layers
    only. The number is the layer's place among G's hidden layers, as `dropout --layer` counts them."""
    layers = feature_layers(G)
    seen: dict[int, torch.Tensor] = {}
    with tap([m for _, m in layers], lambda i, x: seen.__setitem__(i, x[0].detach().float().cpu())):
        generate(G, z[None])
    maps = [(i, x) for i, x in sorted(seen.items()) if x.ndim == 3]
    if not maps:
        raise GanzooError(f"{type(G).__name__} has no convolutional feature maps (its hidden layers are vectors).")
    return maps


def feature_maps_board(G: nn.Module, z: torch.Tensor, per_row: int = 32, limit: int = 128,
                       title: str = "") -> Image.Image:
    """The sample, then each layer's maps (up to `limit` per layer, the caption saying how many of how
    many), all at the sample's size, each map scaled to its own range."""
    sample = generate(G, z[None])[0]
    size = sample.shape[-1]
    scale = max(1, 32 // size)                                            # cells of at least 32 px
    rows, captions = [[sample]], ["sample"]
    for index, maps in generator_maps(G, z):
        c, h, w = maps.shape
        shown = normalise_each(resize_maps(maps[:limit, None], size))        # [min(C, limit), 1, S, S]
        count = f"{c} maps" if c <= limit else f"{len(shown)} of {c} maps"
        for start in range(0, len(shown), per_row):
            rows.append(list(shown[start:start + per_row]))
            captions.append(f"layer {index}: {count} {h}x{w}" if start == 0 else "")
    lines = [title] if title else []
    lines.append("G's input to each hidden layer, one cell per map, each scaled to its own range (black = its "
                 "minimum, white = its maximum)")
    return board(rows, captions=captions, scale=scale, title=lines)
