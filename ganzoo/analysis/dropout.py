"""Forgetting to draw something (Radford et al. 2015, section 6.1): drop chosen feature maps of G.

The paper fitted a logistic regression on a G layer's activations to find the maps that draw
windows, zeroed those maps, and G drew the bedrooms without windows. Here the maps are those whose
activations best predict a chosen class (a labeller's verdict on G's own samples), or maps the user
names; dropping zeroes the maps as the next layer reads them (a forward pre-hook), so it works for
any generator.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from ..sampling import generate
from ..errors import GanzooError

from .features import feature_layers, fit_linear, tap


@dataclass(frozen=True)
class Layer:
    """One of G's hidden layers: its position among them, its module name, its width and map size."""

    index: int
    name: str
    channels: int
    size: tuple[int, ...]

    def describe(self) -> str:
        size = "x".join(map(str, self.size))
        return f"{self.index}: {self.name} ({self.channels} maps{' of ' + size if size else ''})"


@torch.no_grad()
def hidden_layers(G: nn.Module, z_dim: int) -> list[Layer]:
    """G's hidden layers, found by one forward pass on a zero z."""
    named = feature_layers(G)
    shapes: dict[int, torch.Size] = {}
    with tap([m for _, m in named], lambda i, x: shapes.__setitem__(i, x.shape)):
        G(torch.zeros(1, z_dim, device=next(G.parameters()).device))
    return [Layer(i, named[i][0], shapes[i][1], tuple(shapes[i][2:])) for i in sorted(shapes)]


def pick_layer(G: nn.Module, z_dim: int, index: int) -> Layer:
    """A hidden layer by position (negative counts from the output), or a sentence listing them."""
    layers = hidden_layers(G, z_dim)
    if not -len(layers) <= index < len(layers):
        listing = "; ".join(layer.describe() for layer in layers)
        raise GanzooError(f"--layer {index} is out of range; {type(G).__name__} has these hidden layers: {listing}.")
    return layers[index]


def check_maps(layer: Layer, maps: Sequence[int]) -> list[int]:
    bad = [m for m in maps if not 0 <= m < layer.channels]
    if bad:
        raise GanzooError(f"Layer {layer.describe()} has maps 0..{layer.channels - 1}; got {bad}.")
    return sorted(set(maps))


@contextlib.contextmanager
def dropped(G: nn.Module, layer: Layer, maps: Sequence[int]) -> Iterator[None]:
    """While inside, G's `layer` reads zeros in place of the chosen maps."""
    module = feature_layers(G)[layer.index][1]
    keep = torch.ones(layer.channels)
    keep[list(maps)] = 0

    def zero(i, x):
        return x * keep.to(x.device, x.dtype).view(1, -1, *([1] * (x.ndim - 2)))

    with tap([module], zero):
        yield


def generate_dropped(G: nn.Module, z: torch.Tensor, layer: Layer, maps: Sequence[int]) -> torch.Tensor:
    with dropped(G, layer, maps):
        return generate(G, z)


@torch.no_grad()
def map_activations(G: nn.Module, z: torch.Tensor, layer: Layer, batch: int = 256) -> torch.Tensor:
    """Each map's mean activation at `layer` for each z: [N, channels]."""
    module = feature_layers(G)[layer.index][1]
    parts: list[torch.Tensor] = []
    device = next(G.parameters()).device
    with tap([module], lambda i, x: parts.append(x.float().flatten(2).mean(2).cpu() if x.ndim > 2
                                                  else x.float().cpu())):
        for chunk in z.split(batch):
            G(chunk.to(device))
    return torch.cat(parts)


def maps_for_class(activations: torch.Tensor, positive: torch.Tensor, top: int | None, lam: float = 1e-2) -> list[int]:
    """The `top` maps with the largest positive weights in a logistic probe: activations -> "is the class".

    top=None takes every map with a positive weight, the paper's rule for the window maps.

    Activations are standardised first, so a weight compares maps on an equal footing. lam is
    fixed (1e-2): the ranking, not the probe's accuracy, is what is used.
    """
    if positive.all() or not positive.any():
        raise GanzooError("The probe needs samples both of the chosen class and of others; raise --pool.")
    targets = positive.double()[:, None] * 2 - 1
    model = fit_linear(activations, targets, lam, loss="logistic")
    weights = model.weight[:, 0]
    order = torch.argsort(weights, descending=True)
    return [int(i) for i in order[:top] if weights[i] > 0]      # order[:None] is every map


@torch.no_grad()
def maps_by_ablation(G: nn.Module, layer: Layer, scores: Callable[[torch.Tensor], torch.Tensor],
                     z_class: torch.Tensor, z_others: torch.Tensor, target: int, top: int) -> list[int]:
    """The `top` maps whose dropping, one map at a time, most removes class `target` and least disturbs the rest.

    `scores` maps G's images to class scores [N, K] (a labeller's). For each map, the mean fall of
    the `target` score on samples of that class (z_class), less the mean fall of each other sample's
    own-class score (z_others): a map that draws 7s scores high, a map every digit needs scores low.
    Only maps whose drop lowers the target score more than it lowers the others' are kept.
    """
    def own(z: torch.Tensor, classes: torch.Tensor, maps: Sequence[int]) -> torch.Tensor:
        images = generate_dropped(G, z, layer, maps) if maps else generate(G, z)
        return scores(images).float().gather(1, classes[:, None]).squeeze(1)

    targets = torch.full((len(z_class),), target, dtype=torch.long)
    others = scores(generate(G, z_others)).float().argmax(1) if len(z_others) else targets[:0]
    base_class, base_others = own(z_class, targets, []), own(z_others, others, [])
    effect = torch.empty(layer.channels)
    for m in range(layer.channels):
        removed = (base_class - own(z_class, targets, [m])).mean()
        harmed = (base_others - own(z_others, others, [m])).mean() if len(z_others) else 0.0
        effect[m] = removed - harmed
    order = torch.argsort(effect, descending=True)
    return sorted(int(m) for m in order[:top] if effect[m] > 0)
