"""A run's whole configuration as one dataclass: printed, saved as JSON, read from config files and
embedded in weights files.

Every field of `RunConfig` is declared once, with `setting(default, help, ...)`. That one declaration
generates everything else about it:

- its command-line flag on `ganzoo run` (``--batch-size`` for ``batch_size``), parsed with `parse`
  (the field's type by default), and on `ganzoo compare` too when ``comparable=True``;
- the flag's help, ending in the real default: ``(default 128)``, or ``shown_default`` where the
  value alone says too little (``(default: the dataset's)``);
- its validation: the type, then each function in ``checks`` (`positive_int`, `one_of(...)`, ...),
  whose sentence names the flag;
- whether `ganzoo run --resume` may change it (``resumable=True``);
- its line, with the help as a comment, in the template `ganzoo config MODEL` prints, and the key
  a config file (`ganzoo run --config run.yaml`) sets it with.

Adding a field is one edit: a line in `RunConfig`, e.g.

    n_critic: int = setting(1, "discriminator steps per generator step", checks=(positive_int,))

and the code that reads ``config.n_critic``. Nothing else lists the fields: `FIELDS` (and
`RESUMABLE`, `COMPARABLE`) are read off the dataclass. A field with ``flag=None`` has no flag (only
`model`, which `ganzoo run` takes as its positional argument).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import GanzooError
from .recipe import OPTIMIZERS, SCHEDULES, regularizers_check

MAX_IMAGE_SIZE = 1024      # beyond this, neither the data nor DCGAN's widths fit any one machine
MAX_SAMPLES = 1024         # fixed-noise images per epoch grid (all drawn through G at once)
MAX_SEED = 2 ** 63 - 1

# --budget without --epochs: epochs enough to never end before the budget does. Saved as null and
# shown as "until the budget ends", never as the number.
UNLIMITED_EPOCHS = 10 ** 6

# What --budget counts, and what `ganzoo compare` reports as training time (one definition for both):
TRAINING_TIME = ("time inside the training loop (steps, logs, sample grids, checkpoints), summed over every "
                 "resume of the run; loading data and building networks before it, and --eval-every scoring "
                 "in it, are not counted")

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """'90s', '5m', '1.5h' or plain seconds ('300') -> seconds."""
    text = str(text).strip().lower()
    unit = DURATION_UNITS.get(text[-1:], None)
    number = text[:-1] if unit else text
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise GanzooError(f"A duration looks like 90s, 5m or 1.5h; got {text!r}.") from None
    if not 0 < seconds:
        raise GanzooError(f"A duration must be positive, got {text!r}.")
    if seconds == float("inf"):
        raise GanzooError(f"A duration must be finite, got {text!r}.")
    return seconds


def parse_budget(text: str) -> float:
    """A run's --budget: a duration, or 'none' (0.0) to train without one (e.g. lifting it on resume)."""
    if str(text).strip().lower() == "none":
        return 0.0
    try:
        return parse_duration(text)
    except GanzooError as exc:
        raise GanzooError(f"{exc} (--budget none: no budget)") from None


SIZE_UNITS = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def parse_size(text: str) -> int:
    """'512M', '8G', '1.5GiB' or plain bytes ('1000000') -> bytes (binary units); '0' means automatic."""
    given = str(text).strip()
    spelled = given.lower().removesuffix("b").removesuffix("i")          # 8GiB, 8GB, 8G are one size
    unit = spelled[-1:] if spelled[-1:].isalpha() else ""
    try:
        size = float(spelled[:len(spelled) - len(unit)]) * SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise GanzooError(f"A size looks like 512M, 8G or 1.5G; got {given!r}.") from None
    if not 0 <= size < float("inf"):
        raise GanzooError(f"A size must be zero (automatic) or positive and finite, got {given!r}.")
    return int(size)


# -- checks: each returns the sentence saying what is wrong, or None ---------------------------------

Check = Callable[[Any, str], "str | None"]


def positive_int(value: Any, flag: str) -> str | None:
    if type(value) is not int or value <= 0:
        return f"{flag} must be a positive integer, got {value!r}."
    return None


def positive_number(value: Any, flag: str) -> str | None:
    if not (value > 0 and math.isfinite(value)):
        return f"{flag} must be a positive number, got {value!r}."
    return None


def zero_or_positive_int(value: Any, flag: str) -> str | None:
    if type(value) is not int or value < 0:
        return f"{flag} must be a whole number, 0 or more, got {value!r:.40}."
    return None


def at_most(limit: int, why: str = "") -> Check:
    def check(value, flag):
        if value > limit:
            return f"{flag} must be at most {limit}{why}, got {value}."
        return None
    return check


def one_of(*choices: str, quoted: bool = False) -> Check:
    shown = [repr(c) if quoted else c for c in choices]
    words = ", ".join(shown[:-1]) + " or " + shown[-1]

    def check(value, flag):
        if value not in choices:
            return f"{flag} must be {words}, got {value!r}."
        return None
    check.choices = choices  # type: ignore[attr-defined]
    return check


def adam_beta(value: Any, flag: str) -> str | None:
    if not 0 <= value < 1:
        return f"Adam betas must lie in [0, 1), got {flag} {value}."
    return None


def parse_betas(text: str) -> tuple[float, float] | None:
    """"B1,B2" as a pair of floats; "" (unset) as None."""
    if not text.strip():
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(text)
    return float(parts[0]), float(parts[1])


def beta_pair(value: Any, flag: str) -> str | None:
    try:
        betas = parse_betas(value)
    except ValueError:
        return f"{flag} takes two numbers B1,B2 (e.g. {flag} 0,0.9), got {value!r}."
    if betas is not None and not all(0 <= b < 1 for b in betas):
        return f"Adam betas must lie in [0, 1), got {flag} {value}."
    return None


def zero_or_positive(value: Any, flag: str) -> str | None:
    if not (value >= 0 and math.isfinite(value)):
        return f"{flag} must be 0 (unset) or a positive number, got {value!r}."
    return None


def ema_decay(value: Any, flag: str) -> str | None:
    if not 0 <= value < 1:
        return f"{flag} must lie in [0, 1) (0: no average; 0.999 is usual), got {value}."
    return None


def seed_range(value: Any, flag: str) -> str | None:
    if not 0 <= value < MAX_SEED:
        return f"{flag} must lie in [0, 2**63 - 1), got {value}."
    return None


def image_size_range(value: Any, flag: str) -> str | None:
    if value < 0:
        return f"{flag} must be positive, got {value}."
    if value > MAX_IMAGE_SIZE:
        return f"{flag} {value} is larger than ganzoo trains (at most {MAX_IMAGE_SIZE})."
    return None


def channel_count(value: Any, flag: str) -> str | None:
    return None if value in (0, 1, 3) else f"{flag} must be 1 or 3, got {value}."


def thread_count(value: Any, flag: str) -> str | None:
    if type(value) is not int or value < 0:
        return f"{flag} must be 0 (torch's default) or a positive integer, got {value!r}."
    return None


def epochs_between(value: Any, flag: str) -> str | None:
    if type(value) is not int or value < 0:
        return f"{flag} must be 0 (off) or a positive number of epochs, got {value!r}."
    return None


def byte_size(value: Any, flag: str) -> str | None:
    if value < 0:
        return f"{flag} must be a size such as 512M or 8G, got {value!r}."
    return None


def some_text(value: Any, flag: str) -> str | None:
    if not value.strip():
        return f"{flag} must name a split of the dataset, got {value!r}."
    return None


def finite_duration(value: Any, flag: str) -> str | None:
    if not 0 <= value < float("inf"):
        return f"{flag} must be a duration such as 90s, 5m or 1h, got {value!r}."
    return None


def parse_options(text: str) -> dict[str, dict[str, Any]]:
    """'loss.a=-1,discriminator.slope=0.1' -> {"loss": {"a": -1}, "discriminator": {"slope": 0.1}}.

    A value is read as JSON where it is one (numbers, true/false, null, "quoted"), else kept as text.
    """
    options: dict[str, dict[str, Any]] = {}
    for item in filter(None, (part.strip() for part in str(text).split(","))):
        key, equals, raw = item.partition("=")
        role, dot, name = key.strip().partition(".")
        if not (equals and dot and role and name):
            raise GanzooError(f"An option looks like ROLE.NAME=VALUE, e.g. loss.a=-1; got {item!r}.")
        try:
            value = json.loads(raw.strip())
        except ValueError:
            value = raw.strip()
        options.setdefault(role, {})[name.strip()] = value
    return options


def format_options(options: dict[str, dict[str, Any]]) -> str:
    """The options as --options reads them, or 'none'."""
    items = [f"{role}.{name}={json.dumps(value)}" for role, named in options.items() for name, value in named.items()]
    return ",".join(items) or "none"


def option_values(value: Any, flag: str) -> str | None:
    """{role: {name: JSON value}}: what a weights file's JSON can hold and a factory can take as keywords."""
    for role, named in value.items():
        if not isinstance(role, str) or not isinstance(named, dict):
            return f"{flag} maps each component (e.g. loss) to its options, got {role!r}: {named!r:.40}."
        for name, option in named.items():
            if not isinstance(name, str) or not name.isidentifier():
                return f"{flag}: the {role}'s option name {name!r} is not a Python keyword name."
            try:
                json.dumps(option, allow_nan=False)
            except (TypeError, ValueError):
                return f"{flag}: the {role}'s option {name!r} must be a number, true/false, text or a list of them, " \
                       f"got {option!r:.40}."
    return None


# -- the declaration of a field ------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """What RunConfig says about one field besides its default (see the module docstring)."""

    help: str
    flag: str | None = ""                  # "" -> from the name (batch_size -> --batch-size); None -> none
    parse: Callable[[str], Any] | None = None   # text -> value, for flags and config-file strings
    checks: tuple[Check, ...] = ()
    resumable: bool = False                # `ganzoo run --resume` may change it
    comparable: bool = False               # `ganzoo compare` sets it alike for every model
    shown_default: str | None = None       # the default in words, where the value says too little
    metavar: str | None = None


def setting(default: Any, help: str, **options: Any) -> Any:
    """A RunConfig field: its default and its Setting (flag, help, checks, ...)."""
    if isinstance(default, dict):                          # each config gets its own copy
        return field(default_factory=lambda: json.loads(json.dumps(default)),
                     metadata={"ganzoo": Setting(help, **options)})
    return field(default=default, metadata={"ganzoo": Setting(help, **options)})


@dataclass(frozen=True)
class FieldInfo:
    """One RunConfig field with everything derived from its declaration."""

    name: str
    default: Any
    type: type                             # str, int, float, bool or dict (options)
    optional: bool                         # None is a value (data_dir)
    setting: Setting

    @property
    def flag(self) -> str | None:
        if self.setting.flag is None:
            return None
        return self.setting.flag or "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        """How messages name the field: its flag, else its name."""
        return self.flag or self.name

    @property
    def choices(self) -> tuple[str, ...] | None:
        for check in self.setting.checks:
            if hasattr(check, "choices"):
                return check.choices
        return None

    def shown(self, value: Any = dataclasses.MISSING) -> str:
        """A value (by default, the default) as help and tables show it."""
        if value is dataclasses.MISSING:
            if self.setting.shown_default is not None:
                return self.setting.shown_default
            value = self.default
        return format_value(value, self.name)

    def help(self, extra: str = "") -> str:
        """The flag's help (and `extra`), ending in its real default."""
        colon = ":" if self.setting.shown_default else ""
        return f"{self.setting.help}{extra} (default{colon} {self.shown()})"

    def parse(self, text: str) -> Any:
        """A value from text (a flag, or a string in a config file)."""
        if self.setting.parse:
            return self.setting.parse(text)
        if self.type is bool:
            lowered = str(text).strip().lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise GanzooError(f"{self.label} must be true or false, got {text!r}.")
        try:
            return self.type(text)
        except ValueError:
            kind = {int: "an integer", float: "a number"}.get(self.type, self.type.__name__)
            raise GanzooError(f"{self.label} must be {kind}, got {text!r}.") from None

    def problem(self, value: Any) -> str | None:
        """The sentence saying why `value` cannot be this field's, or None."""
        if value is None and self.optional:
            return None
        expected = (int, float) if self.type is float else self.type
        if type(value) is bool and self.type is not bool or not isinstance(value, expected):
            kind = {bool: "true or false", int: "an integer", float: "a number", str: "text",
                    dict: "a mapping"}[self.type]
            return f"{self.label} must be {kind}, got {value!r:.40}."
        if isinstance(value, str) and "\0" in value:                   # no path or name holds one
            return f"{self.label} holds a NUL character: {value!r:.40}."
        for check in self.setting.checks:
            problem = check(value, self.label)
            if problem:
                return problem
        return None


def format_value(value: Any, name: str = "") -> str:
    """A config value as people read it: 0.0002, on/off, none, 'until the budget ends'."""
    if name == "epochs" and (value is None or value == UNLIMITED_EPOCHS):
        return "until the budget ends"
    if value is None:
        return "none"
    if isinstance(value, dict):
        return format_options(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if name == "budget" and not value:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# -- the config ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSpec:
    """A trainable model: generator + discriminator + loss (registry names) and its own defaults.

    `defaults` overrides RunConfig's defaults for this model (e.g. {"lr": 1e-4});
    a config file overrides them, and a user's command-line flag overrides all.
    `options` sets options of the components, by role (e.g. {"loss": {"a": -1.0}}); the run's
    ``options`` (--options loss.a=-0.5) override them one by one.
    """

    generator: str
    discriminator: str
    loss: str
    defaults: dict[str, Any] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)   # by role: {"loss": {"a": -1.0}}


@dataclass
class RunConfig:
    """Everything that defines a training run. Defaults follow Radford et al. 2015 (DCGAN)."""

    model: str = setting("dcgan", "registered model name (see `ganzoo list`)", flag=None)
    generator: str = setting("", "generator network, a registered name", shown_default="the model's")
    discriminator: str = setting("", "discriminator network, a registered name", shown_default="the model's")
    loss: str = setting("", "adversarial loss, a registered name", shown_default="the model's")
    options: dict = setting({}, "options of the components, by role, e.g. loss.a=-1,discriminator.slope=0.1; each "
                            "overrides the model's, and `ganzoo list` names the options each component takes",
                            parse=parse_options, checks=(option_values,), shown_default="the model's",
                            metavar="ROLE.NAME=VALUE,...")
    data: str = setting("mnist", "dataset name, or a folder of images")
    data_dir: str | None = setting(None, "local copy of the dataset (for mnist: the four IDX files)",
                                   shown_default="none, the download cache")
    split: str = setting("train", "the dataset's split to train on, e.g. unlabeled for stl10 (see ganzoo data)",
                         checks=(some_text,), comparable=True)
    image_size: int = setting(0, "side of the square training images", checks=(image_size_range,), comparable=True,
                              shown_default="the dataset's, 32 for MNIST")
    channels: int = setting(0, "1 (grey) or 3 (colour)", checks=(channel_count,), comparable=True,
                            shown_default="the dataset's")
    z_dim: int = setting(100, "latent dimension", checks=(positive_int,), comparable=True)
    latent: str = setting("normal", "latent prior: normal or uniform (the paper's)",
                          checks=(one_of("normal", "uniform", quoted=True),))
    num_classes: int = setting(0, "classes a conditional model's G and D are conditioned on; unconditional models "
                               "take none", checks=(zero_or_positive_int,),
                               shown_default="the dataset's for a conditional model, else 0")
    g_width: int = setting(64, "generator's narrowest feature width", checks=(positive_int,), comparable=True)
    d_width: int = setting(64, "discriminator's narrowest feature width", checks=(positive_int,), comparable=True)
    epochs: int = setting(5, "epochs to train", checks=(positive_int,), resumable=True,
                          shown_default="5; with --budget alone, until the budget ends")
    batch_size: int = setting(128, "images per step", checks=(positive_int,), comparable=True)
    lr: float = setting(2e-4, "learning rate of both networks (--lr-g, --lr-d set one)", checks=(positive_number,))
    lr_g: float = setting(0.0, "the generator's learning rate (two time-scale update rule, Heusel et al. 2017)",
                          checks=(zero_or_positive,), shown_default="--lr's")
    lr_d: float = setting(0.0, "the discriminator's learning rate", checks=(zero_or_positive,), shown_default="--lr's")
    beta1: float = setting(0.5, "Adam beta1 (SGD's momentum)", checks=(adam_beta,))
    beta2: float = setting(0.999, "Adam beta2 (RMSprop's alpha)", checks=(adam_beta,))
    betas_g: str = setting("", "the generator's B1,B2 (--beta1, --beta2 set both networks')", checks=(beta_pair,),
                           shown_default="--beta1,--beta2")
    betas_d: str = setting("", "the discriminator's B1,B2", checks=(beta_pair,), shown_default="--beta1,--beta2")
    optimizer_g: str = setting("adam", "the generator's optimizer: adam, rmsprop or sgd", checks=(one_of(*OPTIMIZERS),))
    optimizer_d: str = setting("adam", "the discriminator's optimizer: adam, rmsprop or sgd",
                               checks=(one_of(*OPTIMIZERS),))
    lr_schedule: str = setting("constant", "learning-rate schedule: constant, or linear (decaying to 0 at the last "
                               "epoch)", checks=(one_of(*SCHEDULES),))
    n_critic: int = setting(1, "discriminator steps per generator step, each on a fresh real batch",
                            checks=(positive_int,))
    regularizers: str = setting("", "the discriminator's regularisers, NAME[:WEIGHT][@EVERY] comma-separated, e.g. "
                                "gp:10 or r1:0.1@16 (see `ganzoo list`)", checks=(regularizers_check,),
                                shown_default="none")
    augment: str = setting("", "differentiable augmentation of everything D sees, real and fake alike, "
                           "comma-separated (DiffAugment: translation, cutout, color)", shown_default="none")
    spectral_norm: bool = setting(False, "spectral normalisation of every layer of the discriminator (Miyato et al. "
                                  "2018)")
    pack: int = setting(1, "PacGAN packing (Lin et al. 2018): the discriminator judges this many samples at once, "
                        "stacked along channels (--batch-size must be a multiple)", checks=(positive_int, at_most(64)))
    ema: float = setting(0.0, "decay of an exponential moving average of G's weights (e.g. 0.999), which grids, "
                         "samples, evaluation and the generator file then use", checks=(ema_decay,),
                         shown_default="0, none")
    seed: int = setting(0, "random seed", checks=(seed_range,))
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", resumable=True)
    sync_bn: bool = setting(False, "under torchrun, BatchNorm statistics over the global batch rather than each "
                            "process's share of it (no effect in one process)", resumable=True,
                            shown_default="off, per process")
    threads: int = setting(0, "CPU threads for torch; fewer run faster on a machine other jobs share",
                           checks=(thread_count,), resumable=True, comparable=True,
                           shown_default="0, torch's choice: one per core")
    precision: str = setting("auto", "auto, fp32, bf16 or fp16; auto picks bf16 autocast on CUDA, and bf16 with "
                             "--channels-last on a CPU with native bf16 (AVX512-BF16 or AMX), fp32 otherwise; the "
                             "run config records the choice", checks=(one_of("auto", "fp32", "bf16", "fp16"),),
                             resumable=True, comparable=True)
    log_every: int = setting(50, "steps between reading losses back and logging", checks=(positive_int,),
                             resumable=True, comparable=True)
    checkpoint_every: int = setting(500, "steps between checkpoints (also at every epoch's end)",
                                    checks=(positive_int,), resumable=True)
    samples: int = setting(64, "fixed-noise images in each epoch's grid",
                           checks=(positive_int, at_most(MAX_SAMPLES)))
    on_divergence: str = setting("stop", "when losses or weights become NaN/Inf: stop, or rollback to the last "
                                 "checkpoint with half the learning rate",
                                 checks=(one_of("stop", "rollback", quoted=True),), resumable=True)
    eval_every: int = setting(0, "evaluate with the dataset's metrics every K epochs (and after the last)",
                              checks=(epochs_between,), resumable=True, shown_default="0, never")
    eval_n: int = setting(10000, "samples per evaluation during training", checks=(positive_int,), resumable=True)
    metrics: str = setting("", "comma-separated metrics for --eval-every (see `ganzoo list`)", resumable=True,
                           shown_default="the dataset's")
    compile: bool = setting(False, "torch.compile G and D; falls back to eager with a warning if compiling fails",
                            resumable=True, shown_default="off; no gain measured on a CPU")
    channels_last: bool = setting(False, "NHWC memory format for convolutional networks", resumable=True,
                                  shown_default="off; on where --precision auto picks bf16 on a CPU")
    budget: float = setting(0.0, "stop cleanly after this much training time, e.g. 90s, 5m, 1h: time in the "
                            "training loop, loading and --eval-every scoring not counted, summed over resumes; "
                            "none: no budget", parse=parse_budget, checks=(finite_duration,), resumable=True, metavar="DURATION")
    memory_budget: int = setting(0, "images larger than this stream from host memory instead of being held on the "
                                 "device, e.g. 512M, 8G", parse=parse_size, checks=(byte_size,), resumable=True,
                                 shown_default="0, half the free memory", metavar="SIZE")
    tensorboard: bool = setting(False, "also log losses, D outputs, images/s, scores and the fixed-noise grids for "
                                "TensorBoard, in RUN/tensorboard (needs pip install 'pyganzoo[tensorboard]')",
                                resumable=True)
    out: str = setting("", "run folder", shown_default="runs/<model>-<data>, numbered")

    def stored_data_dir(self) -> str | None:
        """data_dir as the run stored it, for reading the run's data again: a folder, or a sentence saying why not.

        ganzoo stores the absolute path (ganzoo.run.make_config); a run from before that stored it as
        typed, relative to the folder it trained in, which may lead nowhere from here.
        """
        path = self.data_dir
        if path and not os.path.isdir(path):
            where = ("" if os.path.isabs(path) else
                     " (stored as typed, relative to the folder the run trained in, by an older ganzoo)")
            raise GanzooError(f"The run's data folder {path}{where} is not a folder from here; pass --data-dir "
                              f"with the dataset's files.")
        return path

    def to_dict(self) -> dict[str, Any]:
        """Every field, as config.json and weights files hold it (the epochs sentinel as null)."""
        data = dataclasses.asdict(self)
        if data["epochs"] == UNLIMITED_EPOCHS:
            data["epochs"] = None
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """A config from JSON-like data (a weights file may be hand-edited: every type is checked)."""
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise GanzooError(f"The config holds unknown fields {unknown}; it was written by a newer ganzoo?")
        values = {}
        for key, value in data.items():
            info = FIELDS[key]
            if key == "epochs" and value is None:
                value = UNLIMITED_EPOCHS
            elif value is None and info.optional:
                pass
            elif info.type is float and type(value) is int:
                value = float(value)                                    # JSON writes 1.0 as 1 in some tools
            elif type(value) is not info.type:                          # bool is not an int here
                raise GanzooError(f"The config field {key!r} should be {info.type.__name__}, "
                                  f"got {type(value).__name__} {value!r:.40}.")
            if isinstance(value, str) and "\0" in value:                 # no path or name holds one
                raise GanzooError(f"The config field {key!r} holds a NUL character: {value!r:.40}.")
            values[key] = value
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as e:
            raise GanzooError(f"The embedded config is not valid JSON ({e}).") from None
        if not isinstance(data, dict):
            raise GanzooError("The embedded config is not a JSON object.")
        return cls.from_dict(data)

    def validate(self) -> None:
        """Reject values no run can use, with a sentence naming the flag."""
        for info in FIELDS.values():
            problem = info.problem(getattr(self, info.name))
            if problem:
                raise GanzooError(problem)
        if self.batch_size % self.pack:
            raise GanzooError(f"--batch-size {self.batch_size} is not a multiple of --pack {self.pack}: the packed "
                              f"discriminator judges whole packs of {self.pack} samples; use e.g. --batch-size "
                              f"{max(self.pack, self.batch_size // self.pack * self.pack)}.")


def _fields() -> dict[str, FieldInfo]:
    hints = typing.get_type_hints(RunConfig)
    found = {}
    for f in dataclasses.fields(RunConfig):
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = type(None) in typing.get_args(hint)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        found[f.name] = FieldInfo(f.name, default, args[0] if optional else hint, optional, f.metadata["ganzoo"])
    return found


FIELDS: dict[str, FieldInfo] = _fields()
RESUMABLE = frozenset(name for name, info in FIELDS.items() if info.setting.resumable)
COMPARABLE = frozenset(name for name, info in FIELDS.items() if info.setting.comparable)


def unknown_key_message(key: str, where: str, known: Iterable[str] = FIELDS) -> str:
    """An unknown setting, with the closest known one."""
    close = difflib.get_close_matches(key.replace("-", "_"), list(known), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"{where} sets {key!r}, which is no run setting.{hint} (`ganzoo config MODEL` lists every one.)"


# -- config files ------------------------------------------------------------------------------------

def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a YAML, TOML or JSON file (a run's config.json too), typed and checked.

    Keys are field names (`batch_size`; `batch-size` works too); strings are read as the matching
    flag reads them (`lr: 2e-4`, which YAML leaves a string, `budget: 5m`). A null value means
    "the default" (for epochs: until --budget ends).
    """
    path = Path(path)
    if not path.is_file():
        raise GanzooError(f"No config file at {path}.")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            try:
                import tomllib
            except ImportError:   # Python 3.10
                raise GanzooError(f"{path}: TOML config files need Python 3.11 or later; use YAML or JSON.") from None
            data = tomllib.loads(text)
        else:
            import yaml
            data = yaml.safe_load(text)
    except GanzooError:
        raise
    except Exception as exc:      # the parsers' own error types: JSONDecodeError, YAMLError, TOMLDecodeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanzooError(f"{path} is not a readable {suffix.lstrip('.').upper() or 'YAML'} file: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GanzooError(f"{path} must hold settings as `name: value` lines, not a {type(data).__name__}.")
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in FIELDS:
            raise GanzooError(unknown_key_message(str(key), str(path)))
        info = FIELDS[name]
        if value is None:
            value = UNLIMITED_EPOCHS if name == "epochs" else None
            if value is None and not info.optional:
                continue                                  # null: the default
        elif isinstance(value, str) and info.type is not str:
            value = info.parse(value)
        elif info.type is float and type(value) is int:
            value = float(value)
        problem = info.problem(value)
        if problem:
            raise GanzooError(f"{path}: {problem}")
        values[name] = value
    return values


def template(config: RunConfig, title: str) -> str:
    """A commented YAML file with every field: what `ganzoo config MODEL` prints, what --config reads."""
    import yaml

    lines = [f"# {title}", "# Edit, then: ganzoo run --config FILE (flags on the command line override the file).",
             ""]
    for name, value in config.to_dict().items():
        info = FIELDS[name]
        lines.append(f"# {info.flag + ': ' if info.flag else ''}{info.help()}")
        lines.append(yaml.safe_dump({name: value}, default_flow_style=False, sort_keys=False).strip())
    return "\n".join(lines) + "\n"
