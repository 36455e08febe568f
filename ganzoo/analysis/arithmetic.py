"""Vector arithmetic on z (Radford et al. 2015, section 6.3): average a concept's exemplars, add and subtract.

Single samples are unstable; the mean z of a few exemplars of a concept is not. An expression like

    "3,7,12 - 5,9,20 + class:4"

averages the sheet's z's number 3, 7 and 12, subtracts the mean of 5, 9 and 20, and adds the mean
of the exemplars a labeller calls class 4. The result is shown with variations: the result z plus
uniform noise (the paper used +-0.25), which shows how robust the direction is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import nn

from ..config import RunConfig
from ..errors import GanzooError
from ..sampling import generate, latents
from .common import board, parse_indices
from .labellers import Labeller, class_counts, label, pick_by_class

_CLASS = re.compile(r"^class:(\d+)$")


@dataclass
class Term:
    """One concept in an expression: its sign and either sheet indices or a class for the labeller."""

    sign: int
    text: str
    indices: list[int] = field(default_factory=list)
    label: int | None = None


def parse_expression(expression: str) -> list[Term]:
    """'3,7 - 5,9 + class:4' -> terms; a sentence for anything else."""
    tokens = [t for t in (part.strip() for part in re.split(r"([+-])", expression)) if t]
    terms: list[Term] = []
    sign: int | None = None                                            # a sign waiting for its term
    for token in tokens:
        if token in ("+", "-"):
            if sign is not None:
                raise GanzooError(f"Two signs in a row in {expression!r}; write e.g. '3,7 - 5,9 + class:4'.")
            sign = 1 if token == "+" else -1
            continue
        if terms and sign is None:
            raise GanzooError(f"Missing + or - before {token!r} in {expression!r}.")
        match = _CLASS.match(token)
        if match:
            terms.append(Term(sign or 1, token, label=int(match.group(1))))
        else:
            terms.append(Term(sign or 1, token, indices=parse_indices(token, f"The term {token!r}")))
        sign = None
    if not terms:
        raise GanzooError(f"The expression {expression!r} has no terms; write e.g. '3,7 - 5,9 + 1,2'.")
    if sign is not None:
        raise GanzooError(f"The expression {expression!r} ends with a sign.")
    return terms


def combine(means: list[torch.Tensor], signs: list[int]) -> torch.Tensor:
    """sign-weighted sum of the concepts' mean z's: [d]."""
    return sum(s * m for s, m in zip(signs, means))


@dataclass
class Arithmetic:
    """A worked expression: each term's exemplar z's, the result z and its variations."""

    terms: list[Term]
    exemplars: list[torch.Tensor]     # per term: [k, d]
    result: torch.Tensor              # [d]
    variations: torch.Tensor          # [v, d]


def resolve_terms(terms: list[Term], config: RunConfig, G: nn.Module, seed: int, *, exemplars: int = 3,
                  pool: int = 512, labeller: Labeller | None = None) -> list[torch.Tensor]:
    """Each term's exemplar z's [k, d]: its sheet indices, or the labeller's most confident picks in a pool.

    Class terms record the indices they picked in term.indices, so the grid can name them and a user
    can reproduce the result by index.
    """
    wanted = [t for t in terms if t.label is not None]
    if wanted:
        if labeller is None:
            raise GanzooError("class:N terms need a labeller to find exemplars; use sheet indices instead, or pass "
                              "a checkpoint (the default labeller is a probe on its discriminator).")
        ids, confidence = label(labeller, generate(G, latents(config, seed, range(pool))))
        for term in wanted:
            picked = pick_by_class(ids, confidence, term.label, exemplars)
            if len(picked) < exemplars:
                raise GanzooError(f"Only {len(picked)} of {pool} samples were labelled class {term.label} (the "
                                  f"labeller's classes there: {class_counts(ids)}); raise --pool, lower "
                                  f"--exemplars or pick a more common class.")
            term.indices = picked.tolist()
    return [latents(config, seed, t.indices) for t in terms]


def vector_arithmetic(terms: list[Term], config: RunConfig, G: nn.Module, seed: int = 0, *, exemplars: int = 3,
                      pool: int = 512, labeller: Labeller | None = None, variations: int = 8,
                      noise: float = 0.25) -> Arithmetic:
    zs = resolve_terms(terms, config, G, seed, exemplars=exemplars, pool=pool, labeller=labeller)
    result = combine([z.mean(0) for z in zs], [t.sign for t in terms])
    g = torch.Generator().manual_seed(seed)
    jitter = (torch.rand(variations, config.z_dim, generator=g) * 2 - 1) * noise
    return Arithmetic(terms, zs, result, result[None] + jitter)


def arithmetic_title(expression: str, seed: int, model: str, variations: int, noise: float) -> list[str]:
    """The two title lines of an arithmetic picture (ganzoo arithmetic's and the view's, the same picture)."""
    return [f"vector arithmetic {expression} on samples of seed {seed} ({model})",
            f"each row: a term's exemplars and the image of their mean z; last: the result and "
            f"{variations} variations (noise {noise:g})"]


def arithmetic_board(G: nn.Module, work: Arithmetic, scale: int = 1, title=None) -> Image.Image:
    """One row per term: its exemplars then the image of their mean z; last row: result then variations; the
    title above."""
    rows, captions, labels = [], [], []
    width = max(max(len(z) for z in work.exemplars) + 1, 1 + len(work.variations))
    for term, z in zip(work.terms, work.exemplars):
        images = generate(G, torch.cat([z, z.mean(0, keepdim=True)]))
        row = list(images[:-1]) + [None] * (width - len(z) - 1) + [images[-1]]
        rows.append(row)
        sign = "+" if term.sign > 0 else "-"      # ASCII: the bundled font lacks the minus sign
        captions.append(f"{sign} {term.text}")
        labels.append([f"#{i}" for i in term.indices] + [""] * (width - len(z) - 1) + ["mean"])
    images = generate(G, torch.cat([work.result[None], work.variations]))
    rows.append(list(images) + [None] * (width - len(images)))
    captions.append("= result")
    labels.append(["result"] + ["" for _ in range(width - 1)])
    return board(rows, captions=captions, cell_labels=labels, scale=scale, title=title)
