"""Labellers: anything that says which class a generated image shows.

A labeller is a callable ``images -> Tensor``: images are float [N, C, H, W] in [-1, 1] (what G
makes); it returns class ids [N] (int), or scores [N, num_classes] (float) where column c scores
class c, in which case exemplars are picked by confidence. Vector arithmetic and feature-map
dropout take any such callable.

Labellers are plugins: the `register_labellers` hook (ganzoo.hookspecs) registers builders
``builder(context) -> labeller``, and `--labeller NAME` picks one. The built-in `probe` (below) is
registered by ganzoo_plugins.labellers; a classifier trained elsewhere (an evaluator's MNIST
classifier, say) plugs in through the same hook, or is passed straight to the functions that take
a labeller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from rich.console import Console

from ..data import load_dataset
from ..errors import GanzooError
from ..sampling import to_uint8
from ..plugins import Registries, registries
from ..checkpoint import Networks
from .features import Probe, hidden_features, per_class_subset, train_probe

Labeller = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class LabellerContext:
    """What a labeller builder may use: the networks, the labelled data to learn from, the user's choices."""

    nets: Networks
    data: str
    data_dir: str | None
    per_class: int = 100
    seed: int = 0
    download: bool = True
    console: Console | None = None


def labelled_split(context: LabellerContext, split: str):
    """The run's dataset (or the one asked for) at the networks' resolution, with labels, or a sentence."""
    config = context.nets.config
    data = load_dataset(context.data, root=context.data_dir, split=split, image_size=config.image_size,
                        channels=config.channels, download=context.download)
    if data.labels is None:
        raise GanzooError(f"Dataset {context.data!r} has no labels; a probe learns from labelled images "
                          f"(pass --data mnist, or another labelled dataset).")
    return data


class ProbeLabeller:
    """A linear probe on the discriminator's hidden features, trained on labelled real images."""

    def __init__(self, D: torch.nn.Module, probe: Probe):
        self.D, self.probe = D, probe

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # hidden_features takes uint8 pixels, as data arrives; quantising G's output costs nothing visible
        pixels = to_uint8(images)
        x, _ = hidden_features(self.D, pixels)
        scores = self.probe.scores(x).float()
        full = torch.full((len(images), int(self.probe.classes.max()) + 1), float("-inf"))
        full[:, self.probe.classes] = scores
        return full


def build_probe_labeller(context: LabellerContext) -> Labeller:
    """L2-SVM on D's features, fitted on --per-class labelled real images of the run's dataset."""
    D = context.nets.need_discriminator("The probe labeller", features=True)
    data = labelled_split(context, "train")
    idx = per_class_subset(data.labels, context.per_class, context.seed)
    x, _ = hidden_features(D, data.images[idx], progress="labeller: D features of labelled images")
    probe = train_probe(x, data.labels[idx], seed=context.seed)
    if context.console:
        context.console.print(f"labeller: linear probe on D features, {context.per_class} labelled images per "
                              f"class, held-out accuracy {probe.val_accuracy:.1%}")
    return ProbeLabeller(D, probe)


def make_labeller(name: str, context: LabellerContext, regs: Registries | None = None) -> Labeller:
    """The labeller registered as `name`, built for this context."""
    return (regs or registries()).labellers.get(name).factory(context)


def __getattr__(name: str):
    if name == "LABELLERS":       # the registry the register_labellers hook fills (its name before the hook)
        return registries().labellers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def label(labeller: Labeller, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(class ids [N], confidence [N]) from a labeller's ids or scores; bare ids count as equally sure."""
    out = labeller(images)
    if not isinstance(out, torch.Tensor) or len(out) != len(images) or out.ndim not in (1, 2):
        raise GanzooError("A labeller must return class ids [N] or scores [N, classes] for N images.")
    if out.ndim == 1:
        return out.long(), torch.zeros(len(out))
    scores = out.float()
    top = scores.topk(min(2, scores.shape[1]), dim=1).values
    margin = top[:, 0] - top[:, 1] if top.shape[1] > 1 else top[:, 0]  # how far ahead the winner is
    return scores.argmax(1), margin


def class_scores(labeller: Labeller, images: torch.Tensor, classes: int = 0) -> torch.Tensor:
    """A labeller's class scores [N, K] with K >= classes (bare class ids become one-hot scores); classes
    it never predicts score a large negative number rather than -inf, so differences stay finite."""
    out = labeller(images)
    if not isinstance(out, torch.Tensor) or len(out) != len(images) or out.ndim not in (1, 2):
        raise GanzooError("A labeller must return class ids [N] or scores [N, classes] for N images.")
    if out.ndim == 1:
        return torch.nn.functional.one_hot(out.long(), max(int(out.max()) + 1, classes)).float()
    scores = torch.nan_to_num(out.float(), neginf=-1e6, posinf=1e6)
    if scores.shape[1] < classes:
        scores = torch.cat([scores, scores.new_full((len(scores), classes - scores.shape[1]), -1e6)], 1)
    return scores


def pick_by_class(ids: torch.Tensor, confidence: torch.Tensor, wanted: int, count: int) -> torch.Tensor:
    """Positions of the `count` most confident images labelled `wanted` (ties: the lower position first)."""
    members = (ids == wanted).nonzero().flatten()
    order = torch.argsort(-confidence[members], stable=True)
    return members[order[:count]]


def class_counts(ids: torch.Tensor) -> str:
    """'0: 80, 3: 41, ...': how many images a labeller put in each class, most common first."""
    values, counts = ids.unique(return_counts=True)
    order = torch.argsort(counts, descending=True, stable=True)
    return ", ".join(f"{int(values[i])}: {int(counts[i])}" for i in order)
