"""Checks of the recipe pieces: regularisers, augmentations and labellers.

Regularisers: the factory fits its contract (``factory()``); its penalty, given a step context of a small
D on real and fake images, is a finite scalar tensor whose gradient reaches D's weights (so the loop's
``weight * penalty`` trains D), the same under the same seed.

Augmentations: ``transform(x)`` keeps x's shape, dtype and device, stays finite, passes a finite, non-zero
gradient back to x (D's verdict on a fake must reach G through it), and draws its randomness from torch's
global RNG (the same seed, the same output).

Labellers: the builder fits its contract (``builder(context)``); building one needs trained networks and
data, which the kit does not have, so that is all it checks.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contracts import check_factory
from ..recipe import DOutputs, StepContext
from ..registry import Entry
from .kit import BATCH, SEED, blame, fail, images, same
from .networks import Checks

SIZE, CHANNELS = 16, 3


class SmallD(nn.Module):
    """A small convolutional D: what a regulariser's penalty is computed on."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(CHANNELS, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                                 nn.Linear(8 * (SIZE // 2) ** 2, 1))

    def forward(self, x):
        return self.net(x).flatten()


def step_context(D: nn.Module, device: torch.device) -> StepContext:
    """A D step's context: D, a real batch and a detached fake batch, their labels and D's main-pass outputs on
    them, as the loop passes a regulariser."""
    real = images(BATCH, CHANNELS, SIZE, device, seed=11)
    fake = images(BATCH, CHANNELS, SIZE, device, seed=12)
    outputs = lambda x: DOutputs(D(x))                       # D's main-pass outputs, as the step gives them
    return StepContext(D, real, fake, "Dmain", labels=torch.arange(BATCH, device=device) % 3, d_real=outputs(real),
                       d_fake=outputs(fake), d_outputs_of=outputs)


def regularizer_checks(entry: Entry, device: torch.device) -> Checks:
    what = f"regularizer {entry.name!r}"

    def make():
        check_factory("regularizer", f"The {what} (plugin {entry.plugin!r})", entry.factory)
        with blame(f"Building the {what}", "The factory is called with no arguments: factory()."):
            penalty = entry.factory()
        if not callable(penalty):
            fail(f"{what}: factory() returned {type(penalty).__name__}; it must return a callable penalty(context).")
        return penalty

    def value(penalty, D) -> torch.Tensor:
        with blame(f"{what}: penalty(context) on a small D", "penalty(context) uses context.real, context.fake, "
                   "context.discriminate(x) and context.input_gradient(outputs, x)."):
            out = penalty(step_context(D, device))
        if not isinstance(out, torch.Tensor) or out.ndim != 0 or not out.is_floating_point():
            got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
            fail(f"{what}: penalty(context) returned {got}; it must return a scalar float tensor.")
        if not torch.isfinite(out):
            fail(f"{what}: penalty(context) is {out.item()} on a small D and random images; it must be finite.")
        return out

    def trains_d():
        penalty = make()
        torch.manual_seed(SEED)
        D = SmallD().to(device)
        out = value(penalty, D)
        if not out.requires_grad:
            fail(f"{what}: the penalty carries no gradient to D's weights (it does not require grad), so adding it "
                 f"to D's loss changes nothing; compute it from context.discriminate(...) without detach() or "
                 f"no_grad.")
        with blame(f"{what}: backward() of the penalty", "The penalty must be differentiable in D's weights."):
            out.backward()
        grads = [p.grad for p in D.parameters() if p.grad is not None]
        if any(not torch.isfinite(g).all() for g in grads):
            fail(f"{what}: the penalty's gradient to D's weights is NaN/Inf on a small D and random images.")
        if not any(g.any() for g in grads):
            fail(f"{what}: the penalty gives D's weights no gradient (all zero or none), so adding it to D's loss "
                 f"changes nothing; compute it from context.discriminate(...) without detach() or no_grad.")

    def deterministic():
        penalty = make()
        values = []
        for _ in range(2):
            torch.manual_seed(SEED)
            D = SmallD().to(device)
            torch.manual_seed(SEED)
            values.append(value(penalty, D).detach())
        if not same(values[0], values[1]):
            fail(f"{what}: the same seed gives penalties {values[0].item()} and {values[1].item()}; draw any "
                 f"randomness from torch's global RNG.")

    def contract():
        make()

    return [("contract", contract), ("penalty trains D", trains_d), ("deterministic under a seed", deterministic)]


def augmentation_checks(entry: Entry, device: torch.device) -> Checks:
    what = f"augmentation {entry.name!r}"

    def contract():
        check_factory("augmentation", f"The {what} (plugin {entry.plugin!r})", entry.factory)

    def apply(x: torch.Tensor) -> torch.Tensor:
        with blame(f"{what}: transform(x) on images of shape {tuple(x.shape)}",
                   "transform(x) maps [B, C, H, W] images to images of the same shape."):
            return entry.factory(x)

    def shape_and_gradient():
        contract()
        for channels in (1, 3):
            x = images(BATCH, channels, SIZE, device, seed=13).requires_grad_(True)
            torch.manual_seed(SEED)
            out = apply(x)
            if not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != x.dtype \
                    or out.device != x.device:
                got = (f"{out.dtype} {tuple(out.shape)} on {out.device}" if isinstance(out, torch.Tensor)
                       else type(out).__name__)
                fail(f"{what}: transform(x) turned {x.dtype} {tuple(x.shape)} on {x.device} into {got}; it must keep "
                     f"the shape, dtype and device.")
            if not torch.isfinite(out).all():
                fail(f"{what}: transform(x) gives NaN/Inf on images in [-1, 1].")
            with blame(f"{what}: backward() through transform(x)", "transform(x) must be differentiable."):
                (out.float() * images(BATCH, channels, SIZE, device, seed=14)).sum().backward()
            if x.grad is None or not torch.isfinite(x.grad).all() or not x.grad.any():
                fail(f"{what}: no finite, non-zero gradient reaches x through transform(x); D's verdict on a fake "
                     f"must reach G through it (a detach(), or an op without a gradient?).")

    def deterministic():
        contract()
        x = images(BATCH, 3, SIZE, device, seed=15)
        outs = []
        for _ in range(2):
            torch.manual_seed(SEED)
            with torch.no_grad():
                outs.append(apply(x))
        if not same(outs[0], outs[1]):
            fail(f"{what}: the same seed gives different outputs; draw random numbers from torch's global RNG "
                 f"(on x's device), not numpy or random.")

    return [("contract", contract), ("shape and gradient", shape_and_gradient),
            ("deterministic under a seed", deterministic)]


def labeller_checks(entry: Entry, device: torch.device) -> Checks:
    what = f"labeller {entry.name!r}"

    def contract():
        check_factory("labeller", f"The {what} (plugin {entry.plugin!r})", entry.factory)

    return [("contract", contract)]

