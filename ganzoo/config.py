"""A run's whole configuration as one dataclass: printed, saved as JSON and embedded in weights files."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import GanzooError

MAX_IMAGE_SIZE = 1024      # beyond this, neither the data nor DCGAN's widths fit any one machine
MAX_SAMPLES = 1024         # fixed-noise images per epoch grid (all drawn through G at once)


@dataclass(frozen=True)
class ModelSpec:
    """A trainable model: generator + discriminator + loss (registry names) and its own defaults.

    `defaults` overrides RunConfig's defaults for this model (e.g. {"lr": 1e-4});
    a user's command-line flag overrides both.
    """

    generator: str
    discriminator: str
    loss: str
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Everything that defines a training run. Defaults follow Radford et al. 2015 (DCGAN)."""

    model: str = "dcgan"
    generator: str = ""            # filled from the model's ModelSpec
    discriminator: str = ""
    loss: str = ""
    data: str = "mnist"
    data_dir: str | None = None
    image_size: int = 0            # 0: the dataset's default
    channels: int = 0              # 0: the dataset's default
    z_dim: int = 100
    latent: str = "normal"         # "normal" or "uniform" (the paper's choice) prior for z
    g_width: int = 64              # generator's narrowest feature width
    d_width: int = 64              # discriminator's narrowest feature width
    epochs: int = 5
    batch_size: int = 128
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    device: str = "auto"           # auto | cpu | cuda | cuda:N
    threads: int = 0               # CPU threads torch computes with; 0: torch's default (one per core)
    precision: str = "auto"        # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    log_every: int = 50            # steps between reading losses back from the device
    checkpoint_every: int = 500    # steps between checkpoints (also at each epoch's end)
    samples: int = 64              # fixed-noise images in each epoch's grid
    on_divergence: str = "stop"    # NaN/Inf in losses or weights: "stop", or "rollback" to the last checkpoint
    eval_every: int = 0            # epochs between evaluations with the dataset's metrics (0: never)
    eval_n: int = 10000            # samples per evaluation during training
    metrics: str = ""              # comma-separated metrics for eval_every; "": the dataset's
    compile: bool = False          # torch.compile G and D (falls back to eager, with a warning, if it fails)
    channels_last: bool = False    # NHWC memory format for convolutional networks and batches
    budget: float = 0.0            # training seconds (see TRAINING_TIME) after which the run ends as if done; 0: none
    out: str = ""

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

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """A config from JSON-like data (a weights file may be hand-edited: every type is checked)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise GanzooError(f"The config holds unknown fields {unknown}; it was written by a newer ganzoo?")
        defaults = cls()
        values = {}
        for key, value in data.items():
            expected = type(getattr(defaults, key))
            if key == "data_dir" and value is None:
                pass
            elif expected is float and type(value) is int:
                value = float(value)                                    # JSON writes 1.0 as 1 in some tools
            elif type(value) is not (str if key == "data_dir" else expected):  # bool is not an int here
                raise GanzooError(f"The config field {key!r} should be {expected.__name__}, "
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
        positive = {"epochs": "--epochs", "batch_size": "--batch-size", "z_dim": "--z-dim",
                    "g_width": "--g-width", "d_width": "--d-width", "log_every": "--log-every",
                    "checkpoint_every": "--checkpoint-every", "samples": "--samples", "eval_n": "--eval-n"}
        for name, flag in positive.items():
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise GanzooError(f"{flag} must be a positive integer, got {value!r}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise GanzooError(f"--lr must be a positive number, got {self.lr!r}.")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise GanzooError(f"Adam betas must lie in [0, 1), got ({self.beta1}, {self.beta2}).")
        if self.latent not in ("normal", "uniform"):
            raise GanzooError(f"--latent must be 'normal' or 'uniform', got {self.latent!r}.")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise GanzooError(f"--precision must be auto, fp32, bf16 or fp16, got {self.precision!r}.")
        if self.channels not in (0, 1, 3):
            raise GanzooError(f"--channels must be 1 or 3, got {self.channels}.")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise GanzooError(f"--threads must be 0 (torch's default) or a positive integer, got {self.threads!r}.")
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise GanzooError(f"--eval-every must be 0 (off) or a positive number of epochs, got {self.eval_every!r}.")
        for name in ("compile", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise GanzooError(f"{name} must be true or false, got {getattr(self, name)!r}.")
        if not (isinstance(self.budget, (int, float)) and 0 <= self.budget < float("inf")):
            raise GanzooError(f"--budget must be a duration such as 90s, 5m or 1h, got {self.budget!r}.")
        if self.image_size < 0:
            raise GanzooError(f"--image-size must be positive, got {self.image_size}.")
        if self.image_size > MAX_IMAGE_SIZE:
            raise GanzooError(f"--image-size {self.image_size} is larger than ganzoo trains "
                              f"(at most {MAX_IMAGE_SIZE}).")
        if self.samples > MAX_SAMPLES:
            raise GanzooError(f"--samples must be at most {MAX_SAMPLES}, got {self.samples}.")
        if not 0 <= self.seed < 2 ** 63 - 1:
            raise GanzooError(f"--seed must lie in [0, 2**63 - 1), got {self.seed}.")
        if self.on_divergence not in ("stop", "rollback"):
            raise GanzooError(f"--on-divergence must be 'stop' or 'rollback', got {self.on_divergence!r}.")


# --budget without --epochs: epochs enough to never end before the budget does
UNLIMITED_EPOCHS = 10 ** 6

# What --budget counts, and what `ganzoo compare` reports as training time (one definition for both):
TRAINING_TIME = ("time inside the training loop (steps, logs, sample grids, checkpoints), summed over every "
                 "resume of the run; loading data and building networks before it, and --eval-every scoring "
                 "in it, are not counted")

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str) -> float:
    """A run's --budget: a duration, or 'none' (0.0) to train without one (e.g. lifting it on resume)."""
    if str(text).strip().lower() == "none":
        return 0.0
    try:
        return parse_duration(text)
    except GanzooError as exc:
        raise GanzooError(f"{exc} (--budget none: no budget)") from None


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
