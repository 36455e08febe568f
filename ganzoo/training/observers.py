"""What the training loop tells the world: typed records, and the observers that receive them.

The loop (ganzoo.training.loop) publishes, on the process that writes (rank 0 under torchrun):

    WindowRecord    one per log window: the mean of each statistic the step names, images/s, training time
    ScoreRecord     one per evaluation during training (--eval-every): the metrics' numbers
    GridRecord      the fixed noise's samples: after every epoch, and where a --budget ran out mid-epoch
    Milestone       the run at rest after a checkpoint: an epoch's end, or the budget's

to its observers, in order. An observer implements any of `start(run)`, `window(record)`, `scores(record)`,
`grid(record)`, `milestone(record)` and `finish()`; `start` and `finish` bracket each stretch of training
(a rollback after a divergence finishes and starts them again, at the checkpoint's step). Besides the
observers here, which every run has (metrics.jsonl, the progress bar, the epoch grids, --eval-every),
plugins register more through the `register_loggers` hook: `ganzoo run --loggers NAME` (TensorBoard is
one, `--tensorboard`; examples/mlflow another).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..config import UNLIMITED_EPOCHS, RunConfig
from ..errors import GanzooError
from ..files import atomic_write
from ..runfiles import RunFiles, read_metrics
from ..sampling import save_grid
from ..terminal import Console


# -- records ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowRecord:
    """The statistics of the steps since the last log: means over the window, as metrics.jsonl holds them."""

    step: int                       # optimiser steps done at the window's end
    epoch: float                    # epochs trained, the current one's fraction included
    stats: dict[str, float]         # each statistic the step names (losses first), the window's mean
    d_won: bool                     # D has won by the loss's own rule (what the guard and compare read)
    images_per_s: float
    train_time: float               # training time so far (config.TRAINING_TIME)
    time: float                     # wall-clock time.time()
    steps: int = 1                  # steps in the window

    def to_dict(self) -> dict[str, Any]:
        """The record as one line of metrics.jsonl."""
        return {"step": self.step, "epoch": self.epoch, **self.stats, "d_won": self.d_won,
                "images_per_s": self.images_per_s, "train_time": self.train_time, "time": self.time}


@dataclass(frozen=True)
class ScoreRecord:
    """An evaluation during training (--eval-every): the metrics' numbers on `eval_n` samples."""

    step: int
    epoch: float
    eval_n: int
    scores: dict[str, float]
    time: float
    protocol: dict[str, dict[str, Any]] = field(default_factory=dict)   # how each score was made (ganzoo.protocol)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "eval_n": self.eval_n, **self.scores, "time": self.time,
                "protocol": self.protocol}


@dataclass(frozen=True)
class GridRecord:
    """The fixed noise's samples (the same z every time), and the PNG the run folder keeps them in."""

    step: int
    epoch: int                      # epochs completed
    images: torch.Tensor            # [N, C, H, W] in [-1, 1], on the CPU
    nrow: int                       # images per row: a conditional model's classes, else a square
    path: Path


@dataclass(frozen=True)
class Milestone:
    """The run at rest, its checkpoint written: an epoch's end ("epoch"), or the budget's mid-epoch ("budget")."""

    reason: str                     # "epoch" or "budget"
    step: int
    epoch: int                      # epochs completed
    position: str                   # 'step 704 (epoch 2, 236/468 steps)'
    grid: Path                      # the grid written for it
    final: bool                     # the run ends here (its last epoch, or its budget spent)
    stopping: bool                  # a stop was asked for (Ctrl-C): the run ends here without more work


@dataclass
class RunInfo:
    """What an observer is told when training starts (or starts again after a rollback)."""

    config: RunConfig
    files: RunFiles
    step: int                       # the step training starts from (0, or a checkpoint's)
    epoch: int
    steps_per_epoch: int
    total_steps: int | None         # None: a --budget run, no end in steps
    stat_names: list[str]
    labels: dict[str, str]          # progress-line labels of the statistics
    console: Console
    position: Callable[[], str] = field(repr=False, default=lambda: "")


# -- the observers every run has ---------------------------------------------------------------------------

class MetricsFile:
    """metrics.jsonl: one JSON line per window and per evaluation. Lines after the step training starts from
    (a resumed or rolled-back run's, and any line torn by a crash) are dropped first."""

    def __init__(self, files: RunFiles):
        self.path = files.metrics

    def start(self, run: RunInfo) -> None:
        if not self.path.exists():
            return
        kept = [json.dumps(r) for r in read_metrics(self.path) if r.get("step", 0) <= run.step]
        atomic_write(self.path, lambda tmp: tmp.write_text("".join(k + "\n" for k in kept)))

    def _append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def window(self, record: WindowRecord) -> None:
        self._append(record.to_dict())

    def scores(self, record: ScoreRecord) -> None:
        self._append(record.to_dict())


class EpochGrids:
    """samples/epoch_NNN.png (and samples/step_NNNNNNN.png where a budget ran out): the fixed noise's samples."""

    def grid(self, record: GridRecord) -> None:
        save_grid(record.images, record.path, nrow=record.nrow)


class ProgressBar:
    """The progress bar with the last window's statistics, and a line at each milestone."""

    def __init__(self, console: Console):
        self.console = console
        self.progress: Progress | None = None

    def start(self, run: RunInfo) -> None:
        self.run = run
        unlimited = run.config.epochs >= UNLIMITED_EPOCHS                  # a --budget run: no end in steps
        self.of_epochs = "" if unlimited else f"/{run.config.epochs}"
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TextColumn("[dim]elapsed[/dim]"), TimeElapsedColumn(),
            TextColumn("[dim]left[/dim]"), TimeRemainingColumn(),
            console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=run.total_steps, completed=run.step,
                                           epoch=f"{run.epoch + 1}{self.of_epochs}", stats="")

    def advance(self, step: int) -> None:
        """Every step (not a record: no step waits for the host to format one)."""
        if self.progress:
            self.progress.update(self.task, completed=step)

    def window(self, record: WindowRecord) -> None:
        shown = [f"{self.run.labels.get(n, n)} {v:{'.3f' if n.startswith('loss') else '.2f'}}"
                 for n, v in record.stats.items()]
        stats = "  ".join(shown) + f"  {record.images_per_s:,.0f} img/s"
        self.progress.update(self.task, stats=stats)
        if not self.progress.console.is_terminal:      # a log file gets no redrawn bar: a line per window instead
            self.print(f"epoch {max(1, math.ceil(record.epoch))}{self.of_epochs} step {record.step}: {stats}")

    def scores(self, record: ScoreRecord) -> None:
        from ..evaluate import format_scores

        self.print(f"{self.run.position()} eval: {format_scores(record.scores)}")

    def milestone(self, record: Milestone) -> None:
        budget = self.run.config.budget
        if record.reason == "budget":
            self.print(f"time budget of {budget:g}s reached at {record.position}: samples {record.grid}")
            return
        self.progress.update(self.task, epoch=f"{min(record.epoch + 1, self.run.config.epochs)}{self.of_epochs}")
        self.print(f"epoch {record.epoch}{self.of_epochs} done, step {record.step}: samples {record.grid}")

    def print(self, text: str) -> None:
        (self.progress.console if self.progress else self.console).print(text)

    def finish(self) -> None:
        if self.progress:
            self.progress.stop()
            self.progress = None


class EvalEvery:
    """--eval-every N: score G with the run's metrics every N epochs and at the run's end (its last epoch, or
    where the budget stopped it), not counted as training time; the scores go to the other observers."""

    def __init__(self, config: RunConfig, score: Callable[[], dict[str, float]], publish: Callable[[str, Any], None],
                 epochs: Callable[[], float]):
        self.config, self.score, self.publish, self.epochs = config, score, publish, epochs

    def milestone(self, record: Milestone) -> None:
        every = self.config.eval_every
        if not every or record.stopping:
            return
        if record.final or (record.reason == "epoch" and record.epoch % every == 0):
            scores = self.score()
            self.publish("scores", ScoreRecord(record.step, self.epochs(), self.config.eval_n, dict(scores), time.time(),
                                               getattr(scores, "protocol", {})))


# -- the observers of a run, called in order -----------------------------------------------------------

EVENTS = ("start", "window", "scores", "grid", "milestone", "finish")


class Observers:
    """A run's observers, each event sent to every one that takes it, in order."""

    def __init__(self, observers: list[Any]):
        self.observers = list(observers)

    def publish(self, event: str, record: Any = None) -> None:
        for observer in self.observers:
            handler = getattr(observer, event, None)
            if handler is not None:
                handler(record) if event != "finish" else handler()

    def finish(self) -> None:
        """Every observer's finish(), even when one of them fails (the first failure is raised)."""
        failure = None
        for observer in self.observers:
            handler = getattr(observer, "finish", None)
            try:
                if handler is not None:
                    handler()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


def registered_loggers(config: RunConfig, run_files: RunFiles) -> list[Any]:
    """The loggers a run names (--loggers a,b; --tensorboard for TensorBoard), built by their plugins'
    factories: `factory(config=..., files=...)` -> an observer."""
    from ..plugins import registries

    names = [n.strip() for n in config.loggers.split(",") if n.strip()]
    if config.tensorboard and "tensorboard" not in names:
        names.append("tensorboard")
    loggers = []
    for name in names:
        entry = registries().loggers.get(name)
        try:
            loggers.append(entry.factory(config=config, files=run_files))
        except GanzooError:
            raise
        except ImportError as exc:
            raise GanzooError(f"The logger {name!r} (plugin {entry.plugin!r}) needs a package that is not "
                              f"installed: {exc}.") from None
    return loggers
