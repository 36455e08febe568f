"""The optimisers and learning-rate schedules ganzoo ships, registered through the same hooks a plugin uses.

Optimisers: Adam (fused: one kernel per step), RMSprop (alpha = beta2) and SGD (momentum = beta1), each
`factory(params, *, lr, betas)`. Schedules: `factory(*, total_steps)` -> factor(step), the multiplier of
both networks' learning rates: constant, linear (to 0 at the last step) and cosine with a linear warm-up
(Loshchilov & Hutter 2017, SGDR; warm-up as Goyal et al. 2017).
"""

from __future__ import annotations

import math

import torch

from ganzoo.api import hookimpl


def adam(params, *, lr, betas):
    """Adam (Kingma & Ba 2015), fused."""
    return torch.optim.Adam(list(params), lr=lr, betas=betas, fused=True)


def rmsprop(params, *, lr, betas):
    """RMSprop, alpha (the squared gradients' decay) = beta2."""
    return torch.optim.RMSprop(list(params), lr=lr, alpha=betas[1])


def sgd(params, *, lr, betas):
    """SGD, momentum = beta1."""
    return torch.optim.SGD(list(params), lr=lr, momentum=betas[0])


def constant(*, total_steps):
    """Constant learning rate."""
    return lambda step: 1.0


def linear(*, total_steps):
    """Linear decay to 0 at the run's last step."""
    return lambda step: max(0.0, 1.0 - step / total_steps)


def cosine(*, total_steps, warmup: float = 0.05, floor: float = 0.0):
    """Cosine decay to `floor` at the last step, after a linear warm-up over the first `warmup` of the run."""
    warm = int(round(warmup * total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


@hookimpl
def register_optimizers(register):
    register("adam", adam)
    register("rmsprop", rmsprop)
    register("sgd", sgd)


@hookimpl
def register_schedules(register):
    register("constant", constant)
    register("linear", linear, needs_total_steps=True)
    register("cosine", cosine, needs_total_steps=True)
