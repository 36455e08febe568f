"""`ganzoo run`: turn command-line choices into a RunConfig, then train."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from .terminal import Console
from rich.table import Table

from .checkpoint import atomic_write, remove_stale_temporaries
from .config import RunConfig
from .data import load_dataset
from .errors import GanzooError
from .plugins import Registries, registries
from .preflight import check_run, holds_run, remove_if_unused, run_lock
from .registry import describe_sizes


def make_config(model: str, overrides: dict[str, Any], regs: Registries | None = None) -> RunConfig:
    """RunConfig defaults, then the model's own defaults, then the user's flags (None = not given)."""
    regs = regs or registries()
    if model not in regs.models and regs.failed:  # the model may come from a plugin that failed to load
        failed = "; ".join(f"{p.name!r}: {p.error}" for p in regs.failed)
        raise GanzooError(f"{regs.models.unknown_message(model)} Plugins that failed to load may provide it "
                          f"({failed}); see `ganzoo plugins`.")
    spec = regs.models.get(model).factory
    values = {**spec.defaults, **{k: v for k, v in overrides.items() if v is not None}}
    config = RunConfig(model=model, generator=spec.generator, discriminator=spec.discriminator, loss=spec.loss)
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    for key, value in values.items():
        if key not in fields:
            raise GanzooError(f"Model {model!r} sets an unknown default {key!r}.")
        setattr(config, key, value)
    for kind, name in (("generators", config.generator), ("discriminators", config.discriminator),
                       ("losses", config.loss)):
        getattr(regs, kind).get(name)  # fail early, with the known names, on a misspelled component
    if config.data not in regs.datasets:
        if Path(config.data).is_dir():
            config.data, config.data_dir = "folder", config.data
        else:
            raise GanzooError(regs.datasets.unknown_message(config.data) + " Or give a folder of images.")
    if config.data_dir:  # what the path meant where the run started: usable from any folder later
        config.data_dir = absolute_path(config.data_dir)
    dataset = regs.datasets.get(config.data)
    config.image_size = config.image_size or dataset.info.get("image_size", 32)
    config.channels = config.channels or dataset.info.get("channels", 1)
    config.validate()
    for kind, registry, name in (("generator", regs.generators, config.generator),
                                 ("discriminator", regs.discriminators, config.discriminator)):
        entry = registry.get(name)
        if not entry.supports_image_size(config.image_size):  # before any data is loaded
            raise GanzooError(f"The {kind} {name!r} needs an image size that is {describe_sizes(entry.image_sizes)}, "
                              f"got {config.image_size}; choose one with --image-size.")
    return config


def absolute_path(path: str) -> str:
    """An absolute, normalised form of a path typed relative to the current folder ('~' expanded).

    Symbolic links are kept as named (os.path.abspath, not Path.resolve), so a config shows the
    path the user chose, e.g. /data/mnist rather than the disk it happens to live on.
    """
    return os.path.abspath(os.path.expanduser(path))


def _check_budget_left(trainer) -> None:
    """A resumed run whose --budget is spent would stop at once: say how to go on instead."""
    config = trainer.config
    if trainer.budget_spent() and trainer.epoch < config.epochs:
        raise GanzooError(f"{config.out} has used its --budget of {config.budget:g}s ({trainer.train_seconds:.0f}s "
                          f"trained, to {trainer.position()}); continue with --epochs N (trains to epoch N without a "
                          f"budget) or a larger --budget.")


def default_out(config: RunConfig) -> str:
    """runs/<model>-<data>, numbered so a new run never lands in an old run's folder."""
    folder = config.data == "folder" and config.data_dir  # no folder named: the dataset says so, after this
    base = Path("runs") / f"{config.model}-{Path(config.data_dir).name if folder else config.data}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return str(path)


def show_config(config: RunConfig, console: Console) -> None:
    table = Table(title="run config", show_header=False, box=None, padding=(0, 1))
    for key, value in dataclasses.asdict(config).items():
        table.add_row(f"[dim]{key}[/dim]", str(value))
    console.print(table)


def train(config: RunConfig, *, resume: bool = False, download: bool = True, overwrite: bool = False,
          console: Console | None = None) -> Path:
    """Train a run described by config (continuing its checkpoint if resume); returns the generator file."""
    from .train import RunFiles, Trainer

    console = console or Console(stderr=True)
    files = RunFiles(config.out, config.model)
    if files.root.exists() and not files.root.is_dir():
        raise GanzooError(f"--out {files.root} is a file, not a folder.")
    if not resume and holds_run(files.root) and not overwrite:
        raise GanzooError(f"{files.root} already holds a run; continue it with --resume, or choose another --out "
                          f"(or pass --overwrite to replace it).")
    if config.eval_every:
        from .evaluate import resolve_metrics
        resolve_metrics(config.metrics or None, config.data, config.channels)  # fail now, not after an epoch
    created = [p for p in (files.root, *files.root.parents) if not p.exists()]  # deepest first
    try:
        check_run(config)  # writable folder, room for checkpoints, memory for G and D: before any data loads
    except BaseException:
        remove_if_unused(created)  # a run refused before it started leaves no empty folder behind
        raise
    with run_lock(files.root):
        try:
            remove_stale_temporaries(files.root)
            remove_stale_temporaries(files.samples)
            data_dir = config.stored_data_dir() if resume else config.data_dir   # a resumed run's: a sentence
            data = load_dataset(config.data, root=data_dir, split="train", image_size=config.image_size,
                                channels=config.channels, download=download)
            try:
                trainer = Trainer(config, data, console)
                if resume:
                    trainer.load_checkpoint(files.checkpoint)
            except GanzooError as exc:  # a resumed run's problem lies in its checkpoint: name the file
                if not resume or str(files.checkpoint) in str(exc):
                    raise
                raise GanzooError(f"{files.checkpoint}: {exc}") from None
            if resume:
                _check_budget_left(trainer)
                console.print(f"resuming {files.root} at {trainer.position()}, {trainer.train_seconds:.0f}s trained")
            else:
                clear_run(files)
        except BaseException:
            remove_if_unused(created)
            raise
        return _train(trainer, config, files, console)


def clear_run(files) -> None:
    """Remove what an earlier run left in the folder (only with --overwrite): its log, checkpoint,
    generator file and sample grids, so nothing of it is mistaken for the new run's."""
    old_model = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        old_model = json.loads(files.config.read_text()).get("model")
    stale = [files.metrics, files.checkpoint, files.generator]
    if isinstance(old_model, str) and old_model and Path(old_model).name == old_model:  # a name, never a path
        stale.append(files.root / f"{old_model}.safetensors")
    for path in stale:
        path.unlink(missing_ok=True)
    for grid in (*files.samples.glob("epoch_*.png"), *files.samples.glob("step_*.png")):  # step_: --budget's
        grid.unlink()


def _train(trainer, config: RunConfig, files, console: Console) -> Path:
    show_config(config, console)
    atomic_write(files.config, lambda tmp: tmp.write_text(json.dumps(dataclasses.asdict(config), indent=2)))
    console.print(trainer.describe())
    path = trainer.fit()
    console.print(f"[green]done[/green]: generator weights {path}, samples in {files.samples}/")
    return path
