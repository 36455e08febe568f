"""Settings resolved once: flags, a config file, the model's defaults and the loaded data's facts become
the run's final RunConfig, with the device and precision chosen here and recorded in it.

    config = make_config("dcgan", {"data": "mnist", "batch_size": 64})   # before any data loads
    settle(config, data)                                                  # once the data has loaded

`make_config` layers RunConfig's defaults, the model's own, a config file's settings and the flags, checks
every name against the registries, resolves sizes from the dataset's declarations and decides
`--device auto` and `--precision auto` (recording the choice, so nothing downstream decides again);
`settle` adds what only the data can say (a conditional model's classes). `resumed_config` is the same for
a run continued from its checkpoint. Nothing else in ganzoo changes a config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import FIELDS, RESUMABLE, UNLIMITED_EPOCHS, RunConfig, parse_regularizers
from .data import ImageData, check_root, check_split
from .device import select_device, select_precision
from .errors import GanzooError
from .models import check_components
from .plugins import Registries, registries
from .registry import describe_sizes
from .settings import unknown_key_message


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
        raise GanzooError(unknown_key_message(unknown[0], "The run", FIELDS))
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
    check_training_names(config, regs)
    for name in filter(None, (n.strip() for n in config.augment.split(","))):
        regs.augmentations.get(name)
    if config.data not in regs.datasets:
        if Path(config.data).is_dir():
            config.data, config.data_dir = "folder", config.data
        else:
            raise GanzooError(regs.datasets.unknown_message(config.data) + " Or give a folder of images.")
    if config.data_dir:  # what the path meant where the run started: usable from any folder later
        config.data_dir = absolute_path(config.data_dir)
        check_root(config.data, config.data_dir, regs=regs)   # a file where the dataset reads one, else a folder
    dataset = regs.datasets.get(config.data)
    check_split(config.data, config.split, dataset.info.get("splits"))
    config.image_size = config.image_size or dataset.info.get("image_size", 32)
    config.channels = config.channels or dataset.info.get("channels", 1)
    if regs.generators.get(config.generator).conditional and not config.num_classes:
        config.num_classes = dataset.info.get("classes", 0)       # else the labels' count, once they load (settle)
    config.validate()
    check_components(config, regs)       # options and signatures: before any data loads
    decide_placement(config, channels_last_given="channels_last" in given
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


def check_training_names(config: RunConfig, regs: Registries) -> None:
    """The optimisers, schedule and step hooks a run names are registered (the registry's sentence otherwise):
    checked where a run is made or resumed, never where a stored config is only read (sample, eval)."""
    regs.optimizers.get(config.optimizer_g)
    regs.optimizers.get(config.optimizer_d)
    regs.schedules.get(config.lr_schedule)
    for name in filter(None, (n.strip() for n in config.step_hooks.split(","))):
        regs.step_hooks.get(name)


def absolute_path(path: str) -> str:
    """An absolute, normalised form of a path typed relative to the current folder ('~' expanded).

    Symbolic links are kept as named (os.path.abspath, not Path.resolve), so a config shows the
    path the user chose, e.g. /data/mnist rather than the disk it happens to live on.
    """
    return os.path.abspath(os.path.expanduser(path))


def decide_placement(config: RunConfig, channels_last_given: bool = False) -> None:
    """The one place the device and precision are decided, recorded in the config: --device auto becomes cuda
    or cpu; --precision auto becomes bf16 autocast on CUDA (fp16 where bf16 is unsupported), on a CPU with
    native bf16 (AVX512-BF16 or AMX) bf16 with channels-last, unless --channels-last was set either way, and
    fp32 on other CPUs. A device or precision this machine cannot give is refused here, in one sentence."""
    device = select_device(config.device)
    config.device = str(device)
    auto = config.precision == "auto"
    config.precision = select_precision(config.precision, device).name
    if auto and device.type == "cpu" and config.precision == "bf16" and not channels_last_given:
        config.channels_last = True      # measured with bf16: oneDNN's bf16 kernels want NHWC


def settle(config: RunConfig, data: ImageData) -> None:
    """The loaded data's facts, the last of a run's settings: a conditional model needs the data's class labels,
    and its num_classes is theirs (the dataset's declared count, else their names' or the largest label's);
    every label must lie below it. After this, config.conditional says whether the model is conditional."""
    if not registries().generators.get(config.generator).conditional:
        return
    labelled = data.labels[data.labels >= 0] if data.labels is not None else None
    if labelled is None or len(labelled) < len(data.labels):
        raise GanzooError(f"The model {config.model!r} is conditioned on class labels, and the dataset "
                          f"{config.data!r} ({config.split}) has {'none' if labelled is None else 'images without one'}"
                          f"; train it on labelled data (e.g. --data mnist).")
    if not config.num_classes:
        config.num_classes = len(data.classes) if data.classes else int(labelled.max()) + 1
    if int(labelled.max()) >= config.num_classes:
        raise GanzooError(f"The dataset {config.data!r} has class label {int(labelled.max())}, and the model is "
                          f"conditioned on {config.num_classes} classes (0..{config.num_classes - 1}).")


def resumed_config(config: RunConfig, overrides: dict[str, Any], run_dir: str, console=None) -> RunConfig:
    """A checkpoint's config with the settings a resumed run may change (RESUMABLE; None: not given), its
    device and precision decided again where given."""
    fixed = sorted(FIELDS[k].flag for k, v in overrides.items() if v is not None and k not in RESUMABLE
                   and k != "out")
    if fixed:
        allowed = ", ".join(sorted(FIELDS[k].flag for k in RESUMABLE))
        raise GanzooError(f"A resumed run keeps its config; only {allowed} may change (got {', '.join(fixed)}).")
    overrides = dict(overrides)
    if overrides.get("epochs") is not None and overrides.get("budget") is None and config.budget:
        if console is not None:
            console.print(f"--epochs {overrides['epochs']}: the run's --budget of {config.budget:g}s is lifted "
                          f"(give --budget as well to keep one)")
        overrides["budget"] = 0.0
    for key in RESUMABLE:
        if overrides.get(key) is not None:
            setattr(config, key, overrides[key])
    if config.epochs >= UNLIMITED_EPOCHS and not config.budget:
        raise GanzooError(f"{run_dir} was started with --budget alone; without a budget it needs --epochs N "
                          f"to know when to stop.")
    config.out = run_dir
    config.validate()
    check_training_names(config, registries())
    decide_placement(config, channels_last_given=True)
    return config
