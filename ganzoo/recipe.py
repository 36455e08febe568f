"""The pieces of a training recipe the loop puts together: what a loss sees, regularisers with a weight
and an interval, differentiable augmentation, per-network optimisers and schedules, and the averaged G.

The step (ganzoo.training.step) owns the optimisers, AMP and the order of updates, in phases as in
NVlabs/stylegan2-ada-pytorch's training loop:

- D main: the loss's D objective on real and fake, plus every regulariser due at every step;
- D reg: a regulariser with interval k > 1 (lazy regularisation), its own optimiser step every k
  steps, weighted by k, the optimiser's lr and betas rescaled by k/(k+1) (Karras et al. 2020);
- G main: the loss's G objective, every n_critic-th step (each D step on a fresh real batch).

Plugins only return tensors: a loss its objective, a regulariser its unweighted penalty.
"""

from __future__ import annotations

import copy
import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .errors import GanzooError
from .settings import parse_regularizers

@dataclass(frozen=True)
class DOutputs:
    """What D gives for a batch: its logits [B] ([B/m] packed by m) and its named extras, e.g. an auxiliary
    classifier's ``{"class_logits": [B, K]}`` (ACGAN). A discriminator's forward returns either the logits
    alone or ``(logits, {name: tensor})``; the step reads both forms into this (see `d_outputs`)."""

    logits: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


def d_outputs(out: Any, batch: int, what: str = "the discriminator") -> DOutputs:
    """D's raw return value as DOutputs, refused in one sentence unless it is [batch] logits, alone or with a dict
    of named extras whose tensors lead with the batch (the trainer enforces the shape: a [B, 2] D is an error)."""
    logits, extras = (out[0], out[1]) if isinstance(out, tuple) and len(out) == 2 else (out, {})
    if not (isinstance(logits, torch.Tensor) and logits.shape == (batch,) and isinstance(extras, dict)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] == batch
                    for k, v in extras.items())):
        got = (f"shape {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else type(out).__name__)
        if extras and isinstance(extras, dict):
            got += " with extras " + ", ".join(f"{k}: {tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}"
                                                for k, v in extras.items())
        raise GanzooError(f"{what} returned {got} for a batch of {batch}; it must return [{batch}] raw logits, "
                          f"alone or as (logits, {{name: tensor [{batch}, ...]}}), e.g. (logits, "
                          f"{{\"class_logits\": [{batch}, K]}}).")
    return DOutputs(logits, dict(extras))


class StepContext:
    """What a loss or regulariser may use besides D's logits: D itself (behind the run's augmentation), the
    batch's real and fake images and class labels, D's main-pass outputs on them (logits and named extras,
    so nothing needs a second D pass), and input gradients that stay differentiable.

    - ``discriminate(x)``: D's logits [B] on images x; ``d_outputs_of(x)``: its DOutputs (logits and extras);
    - ``real`` [B, C, H, W] (no gradient), ``fake`` [B, C, H, W] (detached in the D phases);
    - ``labels``: the batch's classes [B] (int64; G drew the fakes of these same classes), None when the data
      has none or the model is unconditional;
    - ``d_real``, ``d_fake``: DOutputs of this step's main D pass. In "Dmain" and "Dreg" both are D's outputs
      before its update, as the loss got them (d_fake on the detached fakes); in "Gmain" ``d_fake`` is the pass
      G's loss differentiates (D just updated) and ``d_real`` the Dmain pass's, detached (one D update old);
    - ``phase``: "Dmain", "Dreg" or "Gmain".
    """

    def __init__(self, discriminate: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                 fake: torch.Tensor, phase: str, *, labels: torch.Tensor | None = None,
                 d_real: DOutputs | None = None, d_fake: DOutputs | None = None,
                 d_outputs_of: Callable[[torch.Tensor], DOutputs] | None = None):
        self.discriminate = discriminate     # images [B, C, H, W] -> D's logits [B] ([B/m] packed by m), augmented
        self.real = real                     # [B, C, H, W], no gradient
        self.fake = fake                     # [B, C, H, W]; detached in the D phases
        self.phase = phase                   # "Dmain", "Dreg" or "Gmain"
        self.labels = labels                 # [B] int64 classes, or None
        self.d_real = d_real                 # DOutputs of the main pass on real
        self.d_fake = d_fake                 # DOutputs of the main pass on fake
        self.d_outputs_of = d_outputs_of or (lambda x: DOutputs(discriminate(x)))

    @staticmethod
    def input_gradient(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """d(sum outputs)/d(inputs), itself differentiable (create_graph) so a penalty on it trains D."""
        grad, = torch.autograd.grad(outputs.float().sum(), inputs, create_graph=True)
        return grad


# -- losses: what a loss may declare, and the defaults for one that declares nothing ----------------

def takes_context(method: Callable) -> bool:
    """Whether a loss method accepts the step context (a third/second argument or a `context` keyword)."""
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return "context" in params or any(p.kind == p.VAR_POSITIONAL for p in params.values())


def logit_statistics(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """D(x) and D(G(z)) as probabilities: the statistics of a loss on logits that declares none."""
    return {"d_real": torch.sigmoid(real_logits).mean(), "d_fake": torch.sigmoid(fake_logits).mean()}


def probability_won(record: dict) -> bool:
    """D separates real from fake almost perfectly (probabilities), so G gets almost no gradient."""
    return record["loss_d"] < 0.05 and record["d_real"] > 0.95 and record["d_fake"] < 0.05


# labels on the progress line for the statistics ganzoo's own losses report
LABELS = {"loss_d": "loss_D", "loss_g": "loss_G", "d_real": "D(x)", "d_fake": "D(G(z))"}


class LossAdapter:
    """A registered loss as the loop calls it, whatever it declares.

    A loss defines ``d_loss(real_logits, fake_logits[, context])`` and ``g_loss(fake_logits[, context])``;
    optionally ``statistics(real_logits, fake_logits) -> {name: scalar tensor}`` (default: D(x), D(G(z))
    as probabilities, named d_real and d_fake), ``labels`` ({name: progress-line label}) and
    ``discriminator_won(record) -> bool`` (default: probability_won), read on each log record.
    """

    def __init__(self, loss: Any):
        self.loss = loss
        self.d_context = takes_context(loss.d_loss)
        self.g_context = takes_context(loss.g_loss)
        self.statistics = getattr(loss, "statistics", logit_statistics)
        self.won = getattr(loss, "discriminator_won", probability_won)
        self.labels = {**LABELS, **getattr(loss, "labels", {})}

    def d_loss(self, real_logits, fake_logits, context: StepContext):
        if self.d_context:
            return self.loss.d_loss(real_logits, fake_logits, context)
        return self.loss.d_loss(real_logits, fake_logits)

    def g_loss(self, fake_logits, context: StepContext):
        if self.g_context:
            return self.loss.g_loss(fake_logits, context)
        return self.loss.g_loss(fake_logits)

    def statistic_names(self) -> list[str]:
        """The names statistics() returns, read off one call on dummy logits."""
        with torch.no_grad():
            return list(self.statistics(torch.zeros(2), torch.zeros(2)))


# -- regularisers: an open list, each with a weight and an interval ---------------------------------

@dataclass
class Regularizer:
    """One regulariser of a run: the registered penalty, its weight and every how many steps it runs."""

    name: str
    penalty: Any            # penalty(context) -> unweighted scalar tensor
    weight: float
    every: int

    @property
    def lazy(self) -> bool:
        return self.every > 1


def build_regularizers(text: str, registry, options: dict | None = None) -> list[Regularizer]:
    """The run's regularisers from its --regularizers text and the registered ones (their default weight
    and interval are the keywords they were registered with: weight=, every=), each built with its options
    (--options regularizer.NAME.k=v)."""
    found = []
    for name, weight, every in parse_regularizers(text):
        entry = registry.get(name)
        penalty = entry.factory(**(options or {}).get(f"regularizer.{name}", {}))
        found.append(Regularizer(name, penalty, weight if weight is not None else entry.info.get("weight", 1.0),
                                 every or entry.info.get("every", 1)))
    return found


def lazy_ratio(regularizers: list[Regularizer]) -> float:
    """k/(k+1) for D's lazy regulariser (the smallest interval above 1), 1 without one."""
    lazy = [r.every for r in regularizers if r.lazy]
    return min(lazy) / (min(lazy) + 1) if lazy else 1.0


# -- differentiable augmentation --------------------------------------------------------------------

def build_augment(policy: str, registry, options: dict | None = None) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The run's augmentation: the registered transforms named in `policy` ('translation,cutout'), applied
    in order to everything D sees, real and fake alike, each with its options (--options augment.NAME.k=v);
    None for no policy."""
    names = [n.strip() for n in policy.split(",") if n.strip()]
    if not names:
        return None
    transforms = [functools.partial(registry.get(n).factory, **(options or {})[f"augment.{n}"])
                  if (options or {}).get(f"augment.{n}") else registry.get(n).factory for n in names]

    def augment(x: torch.Tensor) -> torch.Tensor:
        for transform in transforms:
            x = transform(x)
        return x
    augment.policy = names  # type: ignore[attr-defined]
    return augment


# -- optimisers and learning-rate schedules ---------------------------------------------------------

def make_optimizer(name: str, params, lr: float, betas: tuple[float, float], registry) -> torch.optim.Optimizer:
    """The registered optimiser `name` (register_optimizers) over `params`."""
    entry = registry.get(name)
    optimizer = entry.factory(list(params), lr=lr, betas=betas)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise GanzooError(f"The optimizer {name!r} (plugin {entry.plugin!r}) returned {type(optimizer).__name__}, "
                          f"not a torch.optim.Optimizer.")
    return optimizer


def make_schedule(name: str, total_steps: int | None, registry) -> Callable[[int], float]:
    """The registered schedule `name` (register_schedules) for a run of `total_steps` steps (None: a --budget run,
    refused in one sentence by a schedule that needs its length)."""
    entry = registry.get(name)
    if total_steps is None and entry.info.get("needs_total_steps"):
        raise GanzooError(f"--lr-schedule {name} needs the run's length in steps, and a --budget run without "
                          f"--epochs has none: give --epochs.")
    return entry.factory(total_steps=total_steps)


def build_step_hooks(text: str, registry) -> list[tuple[str, Callable]]:
    """The run's step hooks, (name, hook(phase, network)), from its --step-hooks text."""
    return [(name, registry.get(name).factory()) for name in (n.strip() for n in text.split(",")) if name]


# -- an exponential moving average of G ---------------------------------------------------------------

class EMA:
    """G_ema <- decay * G_ema + (1 - decay) * G after each G update; buffers (BatchNorm's running
    statistics) are copied. Sampling, grids, evaluation and the generator file use G_ema."""

    def __init__(self, G: nn.Module, decay: float):
        self.decay = decay
        self.G = copy.deepcopy(G).requires_grad_(False).eval()

    def decay_at(self, updates: int) -> float:
        """The decay after `updates` earlier updates: ramped up as (1 + n)/(10 + n) until it reaches `decay`, so
        the average forgets the random initialisation within a short run too (as TensorFlow's EMA does)."""
        return min(self.decay, (1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, G: nn.Module, updates: int) -> None:
        """Average in G's weights; `updates`: how many updates came before this one."""
        decay = self.decay_at(updates)
        for p_ema, p in zip(self.G.parameters(), G.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - decay)
        for b_ema, b in zip(self.G.buffers(), G.buffers()):
            b_ema.copy_(b)
