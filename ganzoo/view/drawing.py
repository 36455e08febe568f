"""What the viewer draws, as tensors: grids, a point on a latent walk, vector arithmetic, the same z across runs.

Every draw goes through ganzoo.sampling (sample number i of a seed is the same z, and class, as in `ganzoo
sample` and `ganzoo sheet`) and the analyses' own functions (ganzoo.analysis.interpolate's slerp/lerp/interpolate,
ganzoo.analysis.arithmetic's parse_expression/vector_arithmetic/arithmetic_board), so the browser shows what the
commands write.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from ..analysis.arithmetic import arithmetic_board, parse_expression, vector_arithmetic
from ..analysis.interpolate import MODES, interpolate, lerp, slerp
from ..errors import GanzooError
from ..sampling import ClassFixed, check_class, draw, generate, latents, sample
from .catalog import Entry

MAX_SAMPLES = 256
MAX_SEED = 2 ** 31 - 1


class Generators:
    """Generators rebuilt from their entries' files, the last few kept; an entry whose files changed (a run still
    training wrote new weights) is rebuilt on its next use."""

    def __init__(self, keep: int = 8):
        self.keep = keep
        self.loaded: OrderedDict[tuple, tuple[nn.Module, object]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, entry: Entry, name: str | None = None) -> tuple[nn.Module, object]:
        """(G, config) of `entry`'s generator `name` (its first when None or not offered)."""
        if not entry.loaders:
            if entry.status == "error":
                raise GanzooError(entry.message)
            raise GanzooError(f"{entry.key} holds no generator weights yet"
                              + (" (the first checkpoint is written after --checkpoint-every steps or the first "
                                 "epoch)" if entry.status == "training" else "") + ".")
        if name not in entry.loaders:
            name = next(iter(entry.loaders))
        key = (entry.key, name, entry.signature)
        with self.lock:
            if key in self.loaded:
                self.loaded.move_to_end(key)
                return self.loaded[key]
        G, config = entry.loaders[name]()
        G = G.cpu().eval()
        with self.lock:
            for old in [k for k in self.loaded if k[:2] == key[:2]]:   # an older version of the same generator
                del self.loaded[old]
            self.loaded[key] = (G, config)
            while len(self.loaded) > self.keep:
                self.loaded.popitem(last=False)
        return G, config


def check_seed(seed) -> int:
    if seed is None or int(seed) != seed or not 0 <= int(seed) <= MAX_SEED:
        raise GanzooError(f"A seed is a whole number from 0 to {MAX_SEED}, got {seed}.")
    return int(seed)


def check_count(n) -> int:
    if n is None or int(n) != n or not 1 <= int(n) <= MAX_SAMPLES:
        raise GanzooError(f"The number of samples lies between 1 and {MAX_SAMPLES}, got {n}.")
    return int(n)


def class_of(config, cls) -> int | None:
    """The class the picker names (None: every class in turn), checked against the model."""
    if cls is None or cls == "" or not getattr(config, "num_classes", 0):
        return None
    return check_class(config, int(cls))


def grid(G: nn.Module, config, n: int, seed: int, cls: int | None = None) -> torch.Tensor:
    """Samples number 0..n-1 of `seed` (of class `cls` when given), as `ganzoo sample` draws them."""
    return sample(G, config, check_count(n), seed=check_seed(seed), cls=class_of(config, cls))


def sample_titles(config, n: int, seed: int, cls: int | None = None) -> list[str]:
    """A tooltip per sample: its number and seed (and its class, for a conditional model)."""
    _, y = draw(config, seed, range(n), class_of(config, cls))
    return [f"sample {i} of seed {seed}" + (f", class {int(y[i])}" if y is not None else "") for i in range(n)]


@dataclass
class Point:
    """A sample picked as a walk's end or an arithmetic exemplar: sample number `index` of `seed`."""

    seed: int
    index: int = 0

    def z(self, config) -> torch.Tensor:
        return latents(config, check_seed(self.seed), [int(self.index)])[0]


def walk_generator(G: nn.Module, config, a: Point, cls: int | None) -> nn.Module:
    """What a walk moves through: G itself, or for a conditional model G with its class fixed (the picker's class,
    else the class sample `a` was drawn as), so only z moves."""
    if not getattr(config, "num_classes", 0):
        return G
    fixed = class_of(config, cls)
    return ClassFixed(G, config, fixed if fixed is not None else int(a.index) % config.num_classes)


def walk_point(G: nn.Module, config, a: Point, b: Point, t: float, mode: str = "slerp",
               cls: int | None = None) -> torch.Tensor:
    """The image at fraction t of the walk from a to b: t = 0 and t = 1 are exactly a's and b's samples."""
    if mode not in MODES:
        raise GanzooError(f"The walk is one of {', '.join(MODES)}, got {mode!r}.")
    if not 0 <= t <= 1:
        raise GanzooError(f"The walk's position lies between 0 and 1, got {t}.")
    step = slerp if mode == "slerp" else lerp
    z = step(a.z(config), b.z(config), torch.tensor([float(t)], dtype=torch.float64))
    return generate(walk_generator(G, config, a, cls), z)[0]


def walk_strip(G: nn.Module, config, a: Point, b: Point, steps: int = 9, mode: str = "slerp",
               cls: int | None = None) -> torch.Tensor:
    """The whole walk in `steps` images (ganzoo interpolate's row): [steps, C, H, W]."""
    keys = torch.stack([a.z(config), b.z(config)])[None]
    images, _ = interpolate(walk_generator(G, config, a, cls), keys, steps, mode)
    return images[0]


def arithmetic(G: nn.Module, config, seed: int, groups: tuple[str, str, str], cls: int | None = None,
               variations: int = 8):
    """The DCGAN paper's vector arithmetic on three groups of sample numbers of `seed`: mean A - mean B + mean C,
    as ganzoo arithmetic draws it (a PIL image: each group's exemplars and mean, then the result and variations)."""
    texts = [g.strip() for g in groups]
    if not all(texts):
        missing = ", ".join(name for name, text in zip("ABC", texts) if not text)
        raise GanzooError(f"Pick samples for every group (click them in Sample, or type numbers like 3,7,12): "
                          f"{missing} is empty.")
    expression = f"{texts[0]} - {texts[1]} + {texts[2]}"
    terms = parse_expression(expression)
    fixed = class_of(config, cls)
    network = ClassFixed(G, config, fixed if fixed is not None else 0) if getattr(config, "num_classes", 0) else G
    noise = 0.25                                           # ganzoo arithmetic's default
    work = vector_arithmetic(terms, config, network, check_seed(seed), variations=variations, noise=noise)
    from ..analysis.arithmetic import arithmetic_title
    from ..analysis.common import view_scale
    title = arithmetic_title(expression, seed, config.model, len(work.variations), noise)
    return arithmetic_board(network, work, scale=view_scale(config.image_size), title=title)


def same_z(runs: list[tuple[str, nn.Module, object]], n: int, seed: int) -> tuple[list[tuple[str, torch.Tensor]],
                                                                                 str]:
    """Each run's samples number 0..n-1 of `seed`: the same z wherever the runs share z_dim and prior (a note says
    where they do not)."""
    out, priors = [], set()
    for label, G, config in runs:
        out.append((label, grid(G, config, n, seed)))
        priors.add((config.z_dim, getattr(config, "latent", "normal")))
    note = "" if len(priors) <= 1 else ("these runs draw z of different sizes or priors, so the same seed gives "
                                        "each its own z")
    return out, note
