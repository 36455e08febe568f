"""Checks of losses and regularisers, called as the training step calls them: through `LossAdapter`, with a
synthetic step context (ganzoo.api.StepContext: a small D, real and fake images, the batch's labels and D's
main-pass outputs on them with a "class_logits" extra), so a loss that reads the context is tested on the
path training runs.

Losses: scalar outputs that point the right way, stay finite at extreme logits and under bf16 autocast, and
repeat under a seed. Regularisers: a finite scalar penalty in every D phase whose gradient reaches D's
weights, the same under a seed."""

from __future__ import annotations

from typing import Any

import torch

from torch import nn

from ..contracts import check_factory, check_methods
from ..recipe import DOutputs, LossAdapter, StepContext
from ..registry import Entry
from .kit import CLASSES, SEED, autocast, blame, fail, same
from .networks import Checks

RANDOM_PROBES = (0, 1, 2)     # seeds of the random logits the direction check probes besides the constant +-1

SIZE = 8                     # the synthetic context's images: [n, 1, 8, 8]


class KitDiscriminator(nn.Module):
    """The synthetic context's D: a 3x3 convolution and a softplus (so its input gradient depends on x), then an
    8x8 convolution to a logit and another to CLASSES class logits."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Softplus())
        self.logit = nn.Conv2d(4, 1, SIZE)
        self.classes = nn.Conv2d(4, CLASSES, SIZE)

    def forward(self, x) -> DOutputs:
        h = self.features(x)
        return DOutputs(self.logit(h).flatten(), {"class_logits": self.classes(h).flatten(1)})


def synthetic_context(real_logits: torch.Tensor, fake_logits: torch.Tensor, phase: str,
                      D: nn.Module | None = None) -> StepContext:
    """A step context as the training step builds one, for a batch of len(real_logits): images from fixed seeds,
    labels i % CLASSES, D's main-pass outputs whose logits are exactly the ones the loss is given (and class
    logits beside them), `discriminate` and `d_outputs_of` running a small D."""
    n, device = len(real_logits), real_logits.device
    gen = torch.Generator().manual_seed(SEED)
    D = D or KitDiscriminator().to(device)
    real = (torch.rand(n, 1, SIZE, SIZE, generator=gen) * 2 - 1).to(device)
    fake = (torch.rand(n, 1, SIZE, SIZE, generator=gen) * 2 - 1).to(device)
    labels = (torch.arange(n) % CLASSES).to(device)
    class_real, class_fake = (torch.randn(n, CLASSES, generator=gen).to(device) for _ in range(2))
    return StepContext(lambda x: D(x).logits, real, fake, phase, labels=labels,
                       d_real=DOutputs(real_logits, {"class_logits": class_real}),
                       d_fake=DOutputs(fake_logits, {"class_logits": class_fake}), d_outputs_of=D)


def loss_checks(entry: Entry, device: torch.device) -> Checks:
    what = f"loss {entry.name!r}"

    def make():
        check_factory("loss", f"The {what} (plugin {entry.plugin!r})", entry.factory)
        with blame(f"Building the {what}", "The factory is called with no arguments: factory()."):
            loss = entry.factory()
        check_methods("loss", f"The {what}", loss)
        return loss

    def d_loss(loss, real, fake):
        with blame(f"{what}: d_loss(real_logits, fake_logits[, context]) on logits of shape {tuple(real.shape)}",
                   "d_loss takes two [B] float logit tensors (and the step's context)."):
            return LossAdapter(loss).d_loss(real, fake, synthetic_context(real, fake, "Dmain"))

    def g_loss(loss, fake):
        with blame(f"{what}: g_loss(fake_logits[, context]) on logits of shape {tuple(fake.shape)}",
                   "g_loss takes one [B] float logit tensor (and the step's context)."):
            return LossAdapter(loss).g_loss(fake, synthetic_context(fake.detach(), fake, "Gmain"))

    def logits(seed: int, value: float | None = None, n: int = 64) -> torch.Tensor:
        if value is not None:
            return torch.full((n,), float(value), device=device)
        return torch.randn(n, generator=torch.Generator().manual_seed(seed)).to(device)

    def scalar(value: Any, method: str, context: str) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or value.ndim != 0 or not value.is_floating_point():
            got = (f"shape {tuple(value.shape)} ({value.dtype})" if isinstance(value, torch.Tensor)
                   else type(value).__name__)
            fail(f"{what}: {method} returned {got}; it must return a scalar float tensor (reduce with .mean()).")
        if not torch.isfinite(value):
            fail(f"{what}: {method} is {value.item()} {context}; compute it from logits with stable forms "
                 f"(softplus(-l) for -log sigmoid(l), never log(sigmoid(l))).")
        return value

    def interface():
        loss = make()
        scalar(d_loss(loss, logits(1), logits(2)), "d_loss", "on N(0, 1) logits")
        scalar(g_loss(loss, logits(3)), "g_loss", "on N(0, 1) logits")

    def direction():
        loss = make()
        right = scalar(d_loss(loss, logits(0, 1.0), logits(0, -1.0)), "d_loss", "at logits of +-1")
        wrong = scalar(d_loss(loss, logits(0, -1.0), logits(0, 1.0)), "d_loss", "at logits of +-1")
        if not right < wrong:
            fail(f"{what}: d_loss is {right.item():.4f} when D is right (real logits +1, fake -1) and "
                 f"{wrong.item():.4f} when it is wrong (real -1, fake +1); D must minimise it, so the first must "
                 f"be lower. Are real and fake swapped, or is the sign flipped?")
        fooled = scalar(g_loss(loss, logits(0, 1.0)), "g_loss", "at logits of +1")
        caught = scalar(g_loss(loss, logits(0, -1.0)), "g_loss", "at logits of -1")
        if not fooled < caught:
            fail(f"{what}: g_loss is {fooled.item():.4f} when D is fooled (fake logits +1) and {caught.item():.4f} "
                 f"when it is not (-1); G must minimise it, so the first must be lower. Is the sign flipped?")
        for seed in RANDOM_PROBES:                     # and at random logits: not only the constant probes above
            real, fake = logits(10 * seed + 1), logits(10 * seed + 2)
            right = scalar(d_loss(loss, real + 1, fake - 1), "d_loss", "at random logits")
            wrong = scalar(d_loss(loss, real - 1, fake + 1), "d_loss", "at random logits")
            if not right < wrong:
                fail(f"{what}: at N(0, 1) logits (seed {seed}), d_loss is {right.item():.4f} with the real logits "
                     f"raised by 1 and the fake lowered by 1, and {wrong.item():.4f} the other way round; D must "
                     f"minimise it, so the first must be lower (it is at the constant +-1 probes: does it special-"
                     f"case them?).")
            fooled = scalar(g_loss(loss, fake + 1), "g_loss", "at random logits")
            caught = scalar(g_loss(loss, fake - 1), "g_loss", "at random logits")
            if not fooled < caught:
                fail(f"{what}: at N(0, 1) logits (seed {seed}), g_loss is {fooled.item():.4f} with the fake logits "
                     f"raised by 1 and {caught.item():.4f} with them lowered by 1; G must minimise it, so the first "
                     f"must be lower.")

    def extremes():
        loss = make()
        for v in (10.0, 1000.0):
            for sign in (1, -1):
                real = logits(0, sign * v).requires_grad_(True)
                fake = logits(0, -sign * v).requires_grad_(True)
                d = scalar(d_loss(loss, real, fake), "d_loss", f"at logits of +-{v:g}")
                g = scalar(g_loss(loss, fake), "g_loss", f"at logits of +-{v:g}")
                with blame(f"{what}: backward() at logits of +-{v:g}", "d_loss and g_loss must be differentiable."):
                    (d + g).backward()
                if not (torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()):
                    fail(f"{what}: the gradient is NaN/Inf at logits of +-{v:g}; use stable forms on logits "
                         f"(softplus, logsigmoid) instead of log(sigmoid(l)).")

    def gradients():
        loss = make()
        real, fake = logits(1).requires_grad_(True), logits(2).requires_grad_(True)
        with blame(f"{what}: d_loss backward()", "d_loss must be differentiable in both logits."):
            d_loss(loss, real, fake).backward()
        for name, t in (("real", real), ("fake", fake)):
            if t.grad is None or not torch.isfinite(t.grad).all() or not t.grad.any():
                fail(f"{what}: d_loss gives no finite, non-zero gradient to the {name} logits at N(0, 1) logits; "
                     f"D could not learn from it.")
        fake = logits(3).requires_grad_(True)
        with blame(f"{what}: g_loss backward()", "g_loss must be differentiable in the fake logits."):
            g_loss(loss, fake).backward()
        if fake.grad is None or not torch.isfinite(fake.grad).all() or not fake.grad.any():
            fail(f"{what}: g_loss gives no finite, non-zero gradient at N(0, 1) logits; G could not learn from it.")

    def amp():
        loss = make()
        real, fake = logits(1), logits(2)
        d32, g32 = d_loss(loss, real, fake), g_loss(loss, fake)
        with autocast(device, True):          # the trainer calls the loss inside its autocast region
            d16, g16 = d_loss(loss, real, fake), g_loss(loss, fake)
        for method, a, b in (("d_loss", d32, d16), ("g_loss", g32, g16)):
            scalar(b, method, "under bf16 autocast")
            if not torch.isclose(a.float(), b.float(), rtol=2e-2, atol=2e-2):
                fail(f"{what}: {method} is {a.item():.4f} in fp32 but {b.item():.4f} under bf16 autocast; compute "
                     f"it in float32 (cast the logits with .float()).")

    def deterministic():
        loss = make()
        values = []
        for _ in range(2):
            torch.manual_seed(SEED)
            values.append(torch.stack([d_loss(loss, logits(1), logits(2)), g_loss(loss, logits(3))]))
        if not same(values[0].detach(), values[1].detach()):
            fail(f"{what}: the same seed and logits give different values ({values[0].tolist()} vs "
                 f"{values[1].tolist()}); draw any randomness from torch's global RNG.")

    return [("interface", interface), ("direction", direction), ("extreme logits", extremes),
            ("gradients", gradients), ("bf16 autocast", amp), ("deterministic under a seed", deterministic)]


