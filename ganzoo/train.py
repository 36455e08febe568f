"""A training run put together: the step, its state, the loop and the observers, under a distribution strategy.

    trainer = Trainer(config, data)          # config from ganzoo.resolve.make_config:, device and precision chosen
    trainer.fit()                            # -> the generator file

`Trainer` builds, in order: the step (ganzoo.training.step: networks, optimisers, scaler, EMA), the
`TrainState` a checkpoint restores (ganzoo.checkpoint), the batches of this process's share of the data,
the observers (metrics.jsonl, the progress bar, the epoch grids, --eval-every, and the loggers the run
names) and the loop (ganzoo.training.loop) that drives them. Nothing here decides a setting: the config
arrives resolved (its data's facts included: ganzoo.resolve.settle).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import TrainState
from .config import UNLIMITED_EPOCHS, RunConfig
from .data import ImageData, make_batches, memory_budget
from .device import select_precision
from .evaluate import evaluate
from .models import count_parameters, sample_latent
from .resolve import settle
from .runfiles import RunFiles, read_metrics
from .sampling import classes
from .terminal import Console
from .training.distribution import SingleProcess
from .training.loop import Loop
from .training.observers import EpochGrids, EvalEvery, MetricsFile, Observers, ProgressBar, registered_loggers
from .training.step import Step

__all__ = ["Trainer", "read_metrics"]


class Trainer:
    """One run: `fit()` trains it from where its state stands (`load_checkpoint` first to resume)."""

    def __init__(self, config: RunConfig, data: ImageData, console: Console | None = None,
                 strategy: SingleProcess | None = None):
        settle(config, data)                     # the data's facts (a conditional model's classes), once
        self.config = config
        self.strategy = strategy or SingleProcess()
        self.console = self.strategy.console(console or Console(stderr=True))
        self.device = torch.device(config.device)
        self.precision = select_precision(config.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # picks fast transposed-convolution kernels per shape
        if config.threads:
            torch.set_num_threads(config.threads)  # on a shared machine, fewer threads than cores run faster
        torch.manual_seed(config.seed)

        self.data_rng = torch.Generator(device=self.device)
        self.data_rng.manual_seed(config.seed)
        self.state = TrainState(last_stats=torch.zeros(0), data_epoch_rng=self.data_rng.get_state())
        self.step = Step(config, self.state, device=self.device, precision=self.precision, strategy=self.strategy,
                         console=self.console)
        self.state.last_stats = torch.zeros(len(self.step.stat_names), device=self.device)
        self.batches = make_batches(data, config.batch_size, self.device,
                                    memory_budget(config.memory_budget, self.device),
                                    share=(self.strategy.rank, self.strategy.world), labelled=config.conditional)
        self.total_steps = None if config.epochs >= UNLIMITED_EPOCHS else config.epochs * self.batches.steps_per_epoch
        self.step.total_steps = self.total_steps     # the schedule gets the run's length, or refuses a budget run
        # Fixed noise from its own generator: the same grid points every epoch, and no draw on the training RNG.
        fixed_noise = sample_latent(config.samples, config, generator=torch.Generator().manual_seed(config.seed + 1))
        fixed_labels = classes(config, range(config.samples))      # sample i: class i % num_classes
        self.files = RunFiles(config.out, config.model)

        self.progress = ProgressBar(self.console)
        self.observers = Observers([MetricsFile(self.files), EpochGrids(), self.progress,
                                    *(registered_loggers(config, self.files) if self.strategy.is_writer else [])])
        self.observers.observers.append(EvalEvery(config, self.score, self.observers.publish,
                                                  lambda: self.state.epochs_float(self.batches.steps_per_epoch)))
        self.loop = Loop(config, self.state, self.step, self.batches, self.data_rng, self.observers, self.files,
                         fixed_noise=fixed_noise.to(self.device),
                         fixed_labels=fixed_labels.to(self.device) if fixed_labels is not None else None,
                         strategy=self.strategy, console=self.console, progress=self.progress)

    # -- what a run is made of ---------------------------------------------------------------------------

    @property
    def G(self) -> torch.nn.Module:
        return self.step.G

    @property
    def D(self) -> torch.nn.Module:
        return self.step.D

    def describe(self) -> str:
        return (f"G {count_parameters(self.G) / 1e6:.2f}M params, D {count_parameters(self.D) / 1e6:.2f}M params, "
                f"{len(self.batches.images)} images "
                f"({'streamed from host memory' if self.batches.streamed else 'held on the device'}), "
                f"{self.batches.steps_per_epoch} steps/epoch, "
                f"device {self.device}, precision {self.precision.name}"
                f"{self.strategy.describe(self.config.batch_size)}")

    def position(self) -> str:
        return self.loop.position()

    # -- training ----------------------------------------------------------------------------------------

    def fit(self) -> Path:
        """Train until the run's epochs are done or a stop condition holds; returns the generator file."""
        return self.loop.run()

    def load_checkpoint(self, path: str | Path) -> None:
        """Continue from a checkpoint: networks, optimisers, the state and torch's RNG."""
        self.loop.load_checkpoint(Path(path))

    def save_checkpoint(self) -> Path:
        return self.loop.save_checkpoint()

    def score(self) -> dict[str, float]:
        """G scored with the run's metrics (--eval-every); not training time: the clock stops while it scores."""
        # evaluate() draws its latents from their own generators and runs each metric under own_rng():
        # scoring leaves the training RNG where it was, so --eval-every never changes the run it scores
        with self.state.clock.paused():
            return evaluate(self.step.sampler, config=self.config, metrics=self.config.metrics or None,
                            n=self.config.eval_n, device=self.device)
