"""`ganzoo run`: check the run folder, hold it, load the data, and train a resolved RunConfig in it.

Under torchrun, one process of a data-parallel run (ganzoo.training.distribution): the writing process
(rank 0) checks and writes the run folder, every process trains.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

from rich.table import Table

from .config import UNLIMITED_EPOCHS, RunConfig, format_value
from .data import load_dataset
from .errors import CheckpointError, GanzooError
from .evaluate import resolve_metrics
from .files import remove_stale_temporaries, write_json
from .models import check_components
from .preflight import check_run, remove_if_unused, run_lock
from .resolve import make_config, model_defaults
from .runfiles import RunFiles
from .terminal import Console
from .train import Trainer
from .training import distribution
from .training.observers import registered_loggers

__all__ = ["default_out", "fresh_folder", "make_config", "resume_config", "show_config", "train"]


def _check_budget_left(trainer: Trainer) -> None:
    """A resumed run whose --budget is spent would stop at once: say how to go on instead."""
    config, state = trainer.config, trainer.state
    if trainer.loop.budget_spent() and state.epoch < config.epochs:
        raise GanzooError(f"{config.out} has used its --budget of {config.budget:g}s ({state.clock.seconds():.0f}s "
                          f"trained, to {trainer.position()}); continue with --epochs N (trains to epoch N without a "
                          f"budget) or a larger --budget.")


def fresh_folder(base: str | Path) -> str:
    """base, or base-2, base-3, ...: the first that does not exist, so a new run never lands in an old one."""
    base = Path(base)
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return str(path)


def default_out(config: RunConfig) -> str:
    """runs/<model>-<data>, numbered so a new run never lands in an old run's folder."""
    folder = config.data == "folder" and config.data_dir  # no folder named: the dataset says so, after this
    return fresh_folder(Path("runs") / f"{config.model}-{Path(config.data_dir).name if folder else config.data}")


# What resolving the settings derives from the data and the machine: not settings a user changed.
DERIVED = ("out", "data_dir", "image_size", "channels", "num_classes", "device", "precision", "channels_last")


def show_config(config: RunConfig, console: Console, files: RunFiles, given: dict[str, Any] | None = None) -> None:
    """The settings that differ from the model's defaults (all of them are in config.json): of those given
    (flags and file), or, not knowing which were, every one that resolving did not derive."""
    baseline = model_defaults(config.model)
    names = [n for n in (given if given is not None else vars(config)) if given is not None or n not in DERIVED]
    differ = [(name, getattr(config, name), getattr(baseline, name)) for name in dict.fromkeys(names)
              if name != "out" and getattr(config, name) != getattr(baseline, name)]
    epochs = ("until the budget ends" if config.epochs == UNLIMITED_EPOCHS
              else f"{config.epochs} epoch{'s' if config.epochs > 1 else ''}")
    budget = f" (budget {config.budget:g} s)" if config.budget else ""
    console.print(f"run: {config.model} on {config.data}, {epochs}{budget}, {config.precision} -> {files.root} "
                  f"(every setting in {files.config})", highlight=False, soft_wrap=True)
    if not differ:
        console.print("settings: the model's defaults", highlight=False)
        return
    console.print("settings besides the model's defaults:", highlight=False)
    table = Table(show_header=False, box=None, padding=(0, 1))
    for name, value, default in differ:
        table.add_row(f"[dim]{name}[/dim]", format_value(value, name), f"[dim](default {format_value(default, name)})[/dim]")
    console.print(table)


def train(config: RunConfig, *, resume: bool = False, download: bool = True, overwrite: bool = False,
          console: Console | None = None, given: dict[str, Any] | None = None) -> Path:
    """Train a run described by a resolved config (continuing its checkpoint if resume); returns the generator
    file. `given`: the settings the user gave, for the table of those that differ from the model's defaults.

    Under torchrun, one process of a data-parallel run: rank 0's config (its --out, say) is every rank's."""
    with distribution.start(config) as strategy:
        config = strategy.agreed_config(config)
        return _train_with(strategy, config, resume=resume, download=download, overwrite=overwrite,
                           console=strategy.console(console or Console(stderr=True)), given=given)


def _train_with(strategy: distribution.SingleProcess, config: RunConfig, *, resume: bool, download: bool,
                overwrite: bool, console: Console, given: dict[str, Any] | None) -> Path:
    files = RunFiles(config.out, config.model)
    writer = strategy.is_writer                                     # the run folder is the writer's alone
    created = [p for p in (files.root, *files.root.parents) if not p.exists()] if writer else []  # deepest first

    def check() -> None:
        if files.root.exists() and not files.root.is_dir():
            raise GanzooError(f"--out {files.root} is a file, not a folder.")
        if not resume and files.holds_run() and not overwrite:
            raise GanzooError(f"{files.root} already holds a run; continue it with --resume, or choose another --out "
                              f"(or pass --overwrite to replace it).")
        if config.eval_every:
            resolve_metrics(config.metrics or None, config.data, config.channels)  # fail now, not after an epoch
        try:
            registered_loggers(config, files)                    # installed? say so now, not after loading data
            try:
                check_components(config)  # options and signatures fit (a resumed run's too), before any data loads
            except GanzooError as exc:    # a resumed run's problem lies in its checkpoint: name the file
                if not resume:
                    raise
                raise CheckpointError(f"{files.checkpoint}: {exc}") from None
            check_run(config)  # writable folder, room for checkpoints, memory for G and D: before any data loads
        except BaseException:
            remove_if_unused(created)  # a run refused before it started leaves no empty folder behind
            raise

    strategy.on_writer(check)
    with run_lock(files.root) if writer else contextlib.nullcontext():
        try:
            if writer:
                remove_stale_temporaries(files.root)
                remove_stale_temporaries(files.samples)
            data_dir = config.stored_data_dir() if resume else config.data_dir   # a resumed run's: a sentence
            data = load_dataset(config.data, root=data_dir, split=config.split, image_size=config.image_size,
                                channels=config.channels, download=download, console=console)
            try:
                trainer = Trainer(config, data, console, strategy)
            except CheckpointError:
                raise
            except GanzooError as exc:  # a resumed run's problem lies in its checkpoint: name the file
                if not resume:
                    raise
                raise CheckpointError(f"{files.checkpoint}: {exc}") from None
            if resume:
                trainer.load_checkpoint(files.checkpoint)     # a CheckpointError names the file itself
                _check_budget_left(trainer)
                console.print(f"resuming {files.root} at {trainer.position()}, "
                              f"{trainer.state.clock.seconds():.0f}s trained")
            else:
                strategy.on_writer(lambda: clear_run(files))
        except BaseException:
            remove_if_unused(created)
            raise
        if not resume:                   # once per run: compare's later segments and --resume do not repeat it
            show_config(config, console, files, given)
        strategy.on_writer(lambda: write_json(files.config, config.to_dict()))
        console.print(trainer.describe())
        path = trainer.fit()
        console.print(f"[green]done[/green]: generator weights {path}, samples in {files.samples}/")
        return path


def clear_run(files) -> None:
    """Remove what an earlier run left in the folder (only with --overwrite): its log, checkpoint,
    generator file, sample grids and TensorBoard events, so nothing of it is mistaken for the new run's."""
    stale = [files.metrics, files.checkpoint, files.generator, *files.grids()]
    old_model = files.saved_model()
    if old_model:
        stale.append(files.generator_of(old_model))
    for path in stale:
        path.unlink(missing_ok=True)
    if files.tensorboard.is_dir():
        shutil.rmtree(files.tensorboard)


def resume_config(run_dir: str | Path) -> RunConfig:
    """The config a run folder's checkpoint was written with."""
    from .checkpoint import config_of, read_tensors

    files = RunFiles(run_dir)
    path = files.checkpoint
    if not files.root.is_dir():
        raise GanzooError(f"Nothing to resume: {run_dir} is not a folder.")
    if not path.is_file():
        if files.config.is_file():
            raise GanzooError(f"Nothing to resume: the run in {run_dir} stopped before its first checkpoint. "
                              f"Start it again: the same command without --resume.")
        raise GanzooError(f"Nothing to resume: {path} does not exist.")
    _, metadata = read_tensors(path)
    return config_of(metadata, path)
