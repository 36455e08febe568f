"""One training step of a recipe: D's update, its lazy regularisers when due, then G's update.

The step is data, as in NVlabs/stylegan2-ada-pytorch's training loop: a list of phases, each naming the
network whose optimiser it steps and how often it runs,

    Dmain   every step          the loss's D objective on real and fake, plus the regularisers of every step
    Dreg    every k steps       a lazy regulariser (interval k > 1): its own update, weighted by k
    Gmain   every n_critic-th   the loss's G objective (each D step on a fresh real batch)

and `Step.__call__` reads top to bottom as pytorch/examples' DCGAN step does: D's update, then G's, each
headed by its objective. The step owns what an update needs: the networks, one optimiser per network (D's
lr and betas rescaled once, here, by k/(k+1) under lazy regularisation: Karras et al. 2020), the grad
scaler, the averaged G, the run's precision and its compiled forwards. Plugins only return tensors (a
loss its objective, a regulariser its unweighted penalty: ganzoo.recipe).

Under data-parallel training the distribution strategy (ganzoo.training.distribution) is called where it
acts: this process's share of the global batch's z, its own random stream for the rest of the step, each
optimiser's gradients averaged just before its step(), and the step's statistics averaged at the end.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..config import RunConfig, parse_betas
from ..device import Precision
from ..errors import GanzooError
from ..models import build_discriminator, build_generator, build_loss, sample_latent
from ..plugins import registries
from ..recipe import (EMA, DOutputs, LossAdapter, Regularizer, StepContext, build_augment, build_regularizers,
                      build_step_hooks, d_outputs, lazy_ratio, make_optimizer, make_schedule)
from ..terminal import Console
from ..checkpoint import TrainState
from .distribution import SingleProcess, Strategy


def _detached(out: DOutputs) -> DOutputs:
    return DOutputs(out.logits.detach(), {k: v.detach() for k, v in out.extras.items()})


@dataclass(frozen=True)
class Phase:
    """One update of a step: its name (what a loss or regulariser sees as `context.phase`), the network whose
    optimiser it steps, and the D steps it runs at (those s with s % every == at)."""

    name: str                                  # "Dmain", "Dreg" or "Gmain"
    network: str                               # "D" or "G"
    every: int = 1
    at: int = 0
    regularizer: Regularizer | None = None     # Dreg: the lazy regulariser it runs

    def due(self, d_step: int) -> bool:
        return d_step % self.every == self.at


def recipe_phases(regularizers: list[Regularizer], n_critic: int) -> tuple[Phase, ...]:
    """The phases of a recipe, in the order a step runs them."""
    return (Phase("Dmain", "D"),
            *(Phase("Dreg", "D", reg.every, 0, reg) for reg in regularizers if reg.lazy),
            Phase("Gmain", "G", n_critic, n_critic - 1))


class Step:
    """A recipe's training step (see the module's docstring): `step(real, labels)` -> the statistics."""

    def __init__(self, config: RunConfig, state: TrainState, *, device: torch.device, precision: Precision,
                 strategy: Strategy | None = None, console: Console | None = None):
        self.config, self.state = config, state
        self.device, self.precision = device, precision
        self.strategy = strategy or SingleProcess()
        self.console = console or Console(stderr=True)
        self.conditional = config.conditional           # G(z, y) and D(x, y), y the batch's labels
        self.d_conditional = self.conditional and registries().discriminators.get(config.discriminator).conditional
        # NHWC lets oneDNN/cuDNN skip layout conversions around every convolution (opt-in: --channels-last)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.G = build_generator(config).to(device, memory_format=self.memory_format)
        self.D = build_discriminator(config).to(device, memory_format=self.memory_format)
        self.strategy.prepare(self.G, self.D)           # --sync-bn: BatchNorm over the global batch
        regs = registries()
        self.loss = LossAdapter(build_loss(config, regs))
        self.regularizers = build_regularizers(config.regularizers, regs.regularizers, config.options)
        self.augment = build_augment(config.augment, regs.augmentations, config.options)
        self.phases = recipe_phases(self.regularizers, config.n_critic)
        # D's weights get no gradient during G's update (they would be thrown away): a third less D backward
        self.d_trained_params = [p for p in self.D.parameters() if p.requires_grad]

        # One optimiser per network. Under lazy regularisation D's lr and betas are rescaled by k/(k+1), once.
        ratio = lazy_ratio(self.regularizers)
        betas = (config.beta1, config.beta2)
        g_betas, d_betas = parse_betas(config.betas_g) or betas, parse_betas(config.betas_d) or betas
        self.lr = {"G": config.lr_g or config.lr, "D": (config.lr_d or config.lr) * ratio}
        self.optimizers = {
            "G": make_optimizer(config.optimizer_g, self.G.parameters(), self.lr["G"], g_betas, regs.optimizers),
            "D": make_optimizer(config.optimizer_d, self.D.parameters(), self.lr["D"],
                                (d_betas[0] ** ratio, d_betas[1] ** ratio), regs.optimizers),
        }
        self.step_hooks = build_step_hooks(config.step_hooks, regs.step_hooks)   # after each optimiser step
        self.schedule = None                      # the lr's factor(step), once the run's length is known
        self._total_steps: int | None = None
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaler)
        self.ema = EMA(self.G, config.ema) if config.ema else None
        # What a step reports, by name: the losses, the loss's own statistics, each regulariser's penalty
        self.stat_names = ["loss_d", "loss_g", *self.loss.statistic_names(), *(r.name for r in self.regularizers)]
        # What the step calls: the modules themselves, or compiled wrappers sharing their parameters.
        self.g_forward, self.d_forward = self.G, self.D
        self.compile_pending = config.compile
        self.compile_seconds: float | None = None       # the first compiled step's time, compiling included
        # Whether a stop signal came (the loop's): a compile that fails after one was interrupted, not broken
        self.signalled = lambda: False

    @property
    def total_steps(self) -> int | None:
        """The run's length in steps (None: a --budget run), which the schedule is built for."""
        return self._total_steps

    @total_steps.setter
    def total_steps(self, steps: int | None) -> None:
        self._total_steps = steps
        self.schedule = make_schedule(self.config.lr_schedule, steps, registries().schedules)

    def after_optimizer_step(self, phase: str, network: nn.Module) -> None:
        """The run's step hooks (--step-hooks), right after an optimiser step of `phase` updated `network`."""
        for _, hook in self.step_hooks:
            hook(phase, network)

    @property
    def opt_g(self) -> torch.optim.Optimizer:
        return self.optimizers["G"]

    @property
    def opt_d(self) -> torch.optim.Optimizer:
        return self.optimizers["D"]

    @property
    def sampler(self) -> nn.Module:
        """The generator samples come from: the averaged G when the run keeps one (--ema), else G."""
        return self.ema.G if self.ema else self.G

    def networks(self) -> list[nn.Module]:
        """Everything with weights a run trains or keeps: G, D and the averaged G."""
        return [self.G, self.D, *([self.ema.G] if self.ema else [])]

    # -- the step -------------------------------------------------------------------------------------

    def __call__(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One step on a real batch [B, C, H, W] in [-1, 1] (and its labels [B], which a conditional model is
        trained on: G draws the same classes, D judges real and fake as of their class).

        Returns the statistics named by `stat_names` ([loss_D, loss_G, D(x), D(G(z))] for DCGAN) as one device
        tensor: reading it back is the caller's choice, so no step forces a host synchronisation.
        """
        if self.compile_pending:
            return self._first_compiled_step(real, labels)
        real = real.contiguous(memory_format=self.memory_format)
        B = real.shape[0]
        z = self.strategy.share(sample_latent(B * self.strategy.world, self.config, self.device))  # [B, z_dim]
        y = self._labels(labels, B)                                            # [B] classes, or None
        y_d = y if self.d_conditional else None                                # D(x, y), or D(x) alone
        judge = functools.partial(self.judge, labels=y_d)                      # images -> DOutputs, checked
        discriminate = functools.partial(self.discriminate, labels=y_d)        # images -> logits [B]
        due = [phase for phase in self.phases if phase.due(self.state.d_steps)]
        g_steps = self.phases[-1] in due                                       # Gmain
        self.set_learning_rates()
        stats: dict[str, torch.Tensor] = {}
        with self.strategy.own_random_stream(self.config.seed, self.state.d_steps):

            # (1) Update D (Dmain): maximise log D(x) + log(1 - D(G(z))), or whatever the loss says, plus the
            #     regularisers of every step
            with self._autocast():
                with torch.set_grad_enabled(g_steps):                          # G's graph only when G steps
                    fake = self.g_forward(z) if y is None else self.g_forward(z, y)   # [B, C, H, W]
                out_real = judge(real)                                         # [B] logits (and D's extras)
                out_fake = judge(fake.detach())
                d_real, d_fake = out_real.logits, out_fake.logits              # [B] logits
                context = StepContext(discriminate, real, fake.detach(), "Dmain", labels=y, d_real=out_real,
                                      d_fake=out_fake, d_outputs_of=judge)
                loss_d = self.loss.d_loss(d_real.float(), d_fake.float(), context)
                for reg in self.regularizers:
                    if not reg.lazy:
                        stats[reg.name] = penalty = reg.penalty(context).float()
                        loss_d = loss_d + reg.weight * penalty
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.strategy.average_gradients(self.opt_d)       # every process's gradients, before each step()
            self.scaler.step(self.opt_d)
            self.after_optimizer_step("Dmain", self.D)

            # (1b) D's lazy regularisers (Dreg), each every k steps: an update of its own, weighted by k
            for phase in due:
                if phase.name == "Dreg":
                    reg = phase.regularizer
                    with self._autocast():
                        stats[reg.name] = penalty = reg.penalty(StepContext(
                            discriminate, real, fake.detach(), "Dreg", labels=y, d_real=_detached(out_real),
                            d_fake=_detached(out_fake), d_outputs_of=judge)).float()
                    self.scaler.update()                      # the scaler steps an optimiser once per update
                    self.opt_d.zero_grad(set_to_none=True)
                    self.scaler.scale(penalty * (reg.weight * reg.every)).backward()
                    self.strategy.average_gradients(self.opt_d)
                    self.scaler.step(self.opt_d)
                    self.after_optimizer_step("Dreg", self.D)

            # (2) Update G (Gmain, every n_critic-th step): maximise log D(G(z)) (non-saturating), or whatever the
            #     loss says
            if g_steps:
                with _no_grad_for(self.d_trained_params):
                    with self._autocast():
                        out_fake_g = judge(fake)                               # [B] logits, D just updated
                        loss_g = self.loss.g_loss(out_fake_g.logits.float(), StepContext(
                            discriminate, real, fake, "Gmain", labels=y, d_real=_detached(out_real),
                            d_fake=out_fake_g, d_outputs_of=judge))
                    self.opt_g.zero_grad(set_to_none=True)
                    self.scaler.scale(loss_g).backward()
                self.strategy.average_gradients(self.opt_g)
                self.scaler.step(self.opt_g)
                self.after_optimizer_step("Gmain", self.G)
                if self.ema:
                    self.ema.update(self.G, updates=self.state.d_steps // self.config.n_critic)
                stats["loss_g"] = loss_g
            self.scaler.update()
            self.state.d_steps += 1

            with torch.no_grad():
                stats |= {"loss_d": loss_d, **self.loss.statistics(d_real.detach().float(), d_fake.detach().float())}
                last = self.state.last_stats                              # a phase not run keeps its last
                step_stats = torch.stack([stats[name].detach().float() if name in stats else last[i]
                                          for i, name in enumerate(self.stat_names)])
        self.state.last_stats = self.strategy.average(step_stats)   # the global batch's statistics, on every rank
        return self.state.last_stats

    # -- what the phases share --------------------------------------------------------------------------

    def _autocast(self):
        if self.precision.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.precision.autocast_dtype)

    def judge(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> DOutputs:
        """D's outputs for images [B, C, H, W] (of classes `labels` [B] for a conditional D), through the run's
        augmentation (the same policy for real, fake and anything a loss or regulariser shows D): its [B] logits
        ([B/m] packed by m) and named extras, the shape checked here (ganzoo.recipe.d_outputs)."""
        images = self.augment(images) if self.augment else images
        out = self.d_forward(images) if labels is None else self.d_forward(images, labels)
        return d_outputs(out, images.shape[0] // self.config.pack, f"The discriminator {self.config.discriminator!r}")

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's logits [B] for images [B, C, H, W] (see `judge`)."""
        return self.judge(images, labels).logits

    def _labels(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """The classes a conditional step trains on (the real batch's, for G's samples too); None unconditionally."""
        if not self.conditional:
            return None
        if labels is None or labels.shape != (batch,):
            raise GanzooError(f"The conditional model {self.config.model!r} trains on labelled batches: give "
                              f"the step the batch's {batch} labels.")
        return labels.to(self.device)

    def set_learning_rates(self) -> None:
        """Each optimiser's lr for this step: its network's, times the schedule's factor (and rollbacks' halvings)."""
        if self.schedule is None:                # built once the loop knows the run's length (total_steps)
            self.total_steps = self._total_steps
        factor = self.schedule(self.state.step) * self.state.lr_scale
        for network, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self.lr[network] * factor

    # -- torch.compile ---------------------------------------------------------------------------------

    def _first_compiled_step(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Compile G and D, and take the first step through them; if compiling fails, undo and go eager.

        Compilation happens during the first forward and backward, after some weights may already
        have moved, so everything the step changes is saved first and restored on failure.
        """
        self.compile_pending = False
        saved = self._snapshot()
        self.g_forward, self.d_forward = torch.compile(self.G), torch.compile(self.D)
        start = time.perf_counter()
        try:
            stats = self(real, labels)
        except Exception as exc:  # a compiler failure, whatever its type; a real bug fails again in eager
            self._restore(saved)
            self.g_forward, self.d_forward = self.G, self.D
            if self.signalled():  # Ctrl-C reaches the compiler's worker processes too: they die, it raises
                self.console.print("--compile was interrupted by the stop signal; this step runs in eager mode "
                                   "and the run stops after it.")
            else:
                message = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
                self.console.print(f"[yellow]warning[/yellow]: --compile failed ({message[:300]}); "
                                   f"training continues in eager mode.")
            return self(real, labels)
        self.compile_seconds = time.perf_counter() - start
        self.console.print(f"compiled G and D in {self.compile_seconds:.1f}s (the first step, not counted as "
                           f"training time)")
        return stats

    def _snapshot(self) -> dict:
        clone = lambda sd: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in sd.items()}
        return {"G": clone(self.G.state_dict()), "D": clone(self.D.state_dict()),
                "optimizers": {k: copy.deepcopy(o.state_dict()) for k, o in self.optimizers.items()},
                "G_ema": clone(self.ema.G.state_dict()) if self.ema else None,
                "last_stats": self.state.last_stats.clone(), "d_steps": self.state.d_steps,
                "scaler": self.scaler.state_dict(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}

    def _restore(self, saved: dict) -> None:
        self.G.load_state_dict(saved["G"])
        self.D.load_state_dict(saved["D"])
        if self.ema:
            self.ema.G.load_state_dict(saved["G_ema"])
        self.state.last_stats = saved["last_stats"]
        self.state.d_steps = saved["d_steps"]
        for network, optimizer in self.optimizers.items():
            optimizer.load_state_dict(saved["optimizers"][network])
            optimizer.zero_grad(set_to_none=True)
        if saved["scaler"]:
            self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng"])
        if saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)


@contextlib.contextmanager
def _no_grad_for(params: list[torch.Tensor]):
    """Compute no gradient for these parameters inside the block (inputs still get theirs)."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
