"""`ganzoo run`: turn command-line choices into a RunConfig, then train."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .terminal import Console
from rich.table import Table

from . import distributed
from .checkpoint import atomic_write, remove_stale_temporaries
from .config import FIELDS, UNLIMITED_EPOCHS, RunConfig, format_value, unknown_key_message
from .data import check_split, load_dataset
from .device import select_device, select_precision
from .evaluate import resolve_metrics
from .models import check_components, is_conditional
from .errors import GanzooError
from .plugins import Registries, registries
from .recipe import parse_regularizers
from .preflight import check_run, remove_if_unused, run_lock
from .runfiles import RunFiles
from .train import Trainer, summary_writer_class
from .registry import describe_sizes


def model_defaults(model: str, regs: Registries | None = None) -> RunConfig:
    """RunConfig's defaults with the model's components and its own defaults (what `ganzoo config` shows)."""
    regs = regs or registries()
    if model not in regs.models and regs.failed:  # the model may come from a plugin that failed to load
        failed = "; ".join(f"{p.name!r}: {p.error}" for p in regs.failed)
        raise GanzooError(f"{regs.models.unknown_message(model)} Plugins that failed to load may provide it "
                          f"({failed}); see `ganzoo plugins`.")
    spec = regs.models.get(model).factory
    unknown = sorted(set(spec.defaults) - set(FIELDS))
    if unknown:
        raise GanzooError(f"Model {model!r} sets an unknown default {unknown[0]!r}.")
    defaults = dict(spec.defaults)
    options = merge_options(defaults.pop("options", {}), spec.options)
    return RunConfig(**{"model": model, "generator": spec.generator, "discriminator": spec.discriminator,
                        "loss": spec.loss, **defaults, "options": options})


def merge_options(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Component options, later layers overriding earlier ones name by name (not role by role)."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for role, named in (layer or {}).items():
            merged.setdefault(role, {}).update(named if isinstance(named, dict) else {})
    return merged


def make_config(model: str, overrides: dict[str, Any], regs: Registries | None = None) -> RunConfig:
    """RunConfig defaults, then the model's own defaults, then the user's settings (None = not given):
    a config file's, then the flags'. Names are checked, sizes resolved, `--precision auto` decided."""
    regs = regs or registries()
    config = model_defaults(model, regs)
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise GanzooError(unknown_key_message(unknown[0], "The run"))
    for key, value in given.items():
        setattr(config, key, merge_options(config.options, value) if key == "options" else value)
    if "lr" in given:                  # --lr sets both networks' rates, the model's own included
        config.lr_g = given.get("lr_g", 0.0)
        config.lr_d = given.get("lr_d", 0.0)
    if "beta1" in given or "beta2" in given:  # and --beta1/--beta2 both networks' betas
        config.betas_g = given.get("betas_g", "")
        config.betas_d = given.get("betas_d", "")
    for kind, name in (("generators", config.generator), ("discriminators", config.discriminator),
                       ("losses", config.loss)):
        getattr(regs, kind).get(name)  # fail early, with the known names, on a misspelled component
    for name, _, _ in parse_regularizers(config.regularizers):
        regs.regularizers.get(name)
    for name in filter(None, (n.strip() for n in config.augment.split(","))):
        regs.augmentations.get(name)
    if config.data not in regs.datasets:
        if Path(config.data).is_dir():
            config.data, config.data_dir = "folder", config.data
        else:
            raise GanzooError(regs.datasets.unknown_message(config.data) + " Or give a folder of images.")
    if config.data_dir:  # what the path meant where the run started: usable from any folder later
        config.data_dir = absolute_path(config.data_dir)
    dataset = regs.datasets.get(config.data)
    check_split(config.data, config.split, dataset.info.get("splits"))
    config.image_size = config.image_size or dataset.info.get("image_size", 32)
    config.channels = config.channels or dataset.info.get("channels", 1)
    if is_conditional(config, regs) and not config.num_classes:   # else the labels' count, once they load
        config.num_classes = dataset.info.get("classes", 0)
    config.validate()
    check_components(config, regs)       # options and signatures: before any data loads
    decide_precision(config, channels_last_given="channels_last" in given
                     or "channels_last" in regs.models.get(model).factory.defaults)
    for kind, registry, name in (("generator", regs.generators, config.generator),
                                 ("discriminator", regs.discriminators, config.discriminator)):
        entry = registry.get(name)
        if not entry.supports_image_size(config.image_size):  # before any data is loaded
            raise GanzooError(f"The {kind} {name!r} needs an image size that is {describe_sizes(entry.image_sizes)}, "
                              f"got {config.image_size}; choose one with --image-size.")
        if kind == "discriminator" and config.pack > 1 and entry.channel_counts is not None:
            raise GanzooError(f"The discriminator {name!r} takes images with only "
                              f"{' or '.join(map(str, sorted(entry.channel_counts)))} channel(s), so it cannot judge "
                              f"packs of {config.pack} (--pack stacks them along channels); use --pack 1 or another "
                              f"discriminator.")
        if not entry.supports_channels(config.channels):
            counts = " or ".join(map(str, sorted(entry.channel_counts)))
            raise GanzooError(f"The {kind} {name!r} takes images with {counts} channel(s), got {config.channels}; "
                              f"choose --channels {sorted(entry.channel_counts)[0]} or another {kind}.")
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


def decide_precision(config: RunConfig, channels_last_given: bool = False) -> None:
    """Replace --precision auto by what it means on this machine, so the run config records the choice:
    bf16 autocast on CUDA (fp16 where bf16 is unsupported); on a CPU with native bf16 (AVX512-BF16 or AMX)
    bf16 with channels-last, unless --channels-last was set either way; fp32 on other CPUs."""
    if config.precision != "auto":
        return
    device = select_device(config.device)
    config.precision = select_precision("auto", device).name
    if device.type == "cpu" and config.precision == "bf16" and not channels_last_given:
        config.channels_last = True      # measured with bf16: oneDNN's bf16 kernels want NHWC


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


def show_config(config: RunConfig, console: Console, files: RunFiles) -> None:
    """The settings that differ from the model's defaults (all of them are in config.json)."""
    try:
        baseline = make_config(config.model, {"data": config.data, "data_dir": config.data_dir})
    except GanzooError:
        baseline = RunConfig()
    baseline.out = config.out
    differ = [(name, value, getattr(baseline, name)) for name, value in vars(config).items()
              if value != getattr(baseline, name)]
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
          console: Console | None = None) -> Path:
    """Train a run described by config (continuing its checkpoint if resume); returns the generator file.

    Under torchrun, one rank of a data-parallel run (ganzoo.distributed): rank 0 decides the config and
    checks and writes the run folder, every rank trains."""
    console = console or Console(stderr=True)
    ranks = distributed.start(config)
    if ranks is None:
        return _train_in(config, None, resume=resume, download=download, overwrite=overwrite, console=console)
    try:
        config = RunConfig.from_json(ranks.broadcast_text(config.to_json()))   # rank 0's (its --out, say)
        return _train_in(config, ranks, resume=resume, download=download, overwrite=overwrite,
                         console=ranks.console(console))
    finally:
        ranks.close()


def _train_in(config: RunConfig, ranks: "distributed.Ranks | None", *, resume: bool, download: bool, overwrite: bool,
              console: Console) -> Path:
    files = RunFiles(config.out, config.model)
    main = ranks is None or ranks.is_main
    on_rank0 = ranks.on_rank0 if ranks else (lambda work: work())   # the run folder is rank 0's alone
    created = [p for p in (files.root, *files.root.parents) if not p.exists()] if main else []  # deepest first

    def check() -> None:
        if files.root.exists() and not files.root.is_dir():
            raise GanzooError(f"--out {files.root} is a file, not a folder.")
        if not resume and files.holds_run() and not overwrite:
            raise GanzooError(f"{files.root} already holds a run; continue it with --resume, or choose another --out "
                              f"(or pass --overwrite to replace it).")
        if config.eval_every:
            resolve_metrics(config.metrics or None, config.data, config.channels)  # fail now, not after an epoch
        if config.tensorboard:
            summary_writer_class()                               # installed? say so now, not after loading data
        try:
            try:
                check_components(config)  # options and signatures fit (a resumed run's too), before any data loads
            except GanzooError as exc:    # a resumed run's problem lies in its checkpoint: name the file
                if not resume or str(files.checkpoint) in str(exc):
                    raise
                raise GanzooError(f"{files.checkpoint}: {exc}") from None
            check_run(config)  # writable folder, room for checkpoints, memory for G and D: before any data loads
        except BaseException:
            remove_if_unused(created)  # a run refused before it started leaves no empty folder behind
            raise

    on_rank0(check)
    with run_lock(files.root) if main else contextlib.nullcontext():
        try:
            if main:
                remove_stale_temporaries(files.root)
                remove_stale_temporaries(files.samples)
            data_dir = config.stored_data_dir() if resume else config.data_dir   # a resumed run's: a sentence
            data = load_dataset(config.data, root=data_dir, split=config.split, image_size=config.image_size,
                                channels=config.channels, download=download, console=console)
            try:
                trainer = (Trainer(config, data, console) if ranks is None
                           else distributed.DistributedTrainer(config, data, console, ranks))
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
                on_rank0(lambda: clear_run(files))
        except BaseException:
            remove_if_unused(created)
            raise
        return _train(trainer, config, files, console, resume, on_rank0)


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


def _train(trainer: Trainer, config: RunConfig, files: RunFiles, console: Console, resume: bool,
           on_rank0=lambda work: work()) -> Path:
    if not resume:                       # once per run: compare's later segments and --resume do not repeat it
        show_config(config, console, files)
    on_rank0(lambda: atomic_write(files.config, lambda tmp: tmp.write_text(json.dumps(config.to_dict(), indent=2))))
    console.print(trainer.describe())
    path = trainer.fit()
    console.print(f"[green]done[/green]: generator weights {path}, samples in {files.samples}/")
    return path
