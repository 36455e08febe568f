"""The schema: every setting of a run (`RunConfig`), of a model (`ModelSpec`) and of each command, declared
once in the settings language (ganzoo.settings), which derives their flags, help, checks and files.

Adding a run setting is one edit: a line in `RunConfig`, e.g.

    n_critic: int = setting(1, "discriminator steps per generator step", checks=(positive_int,))

and the code that reads ``config.n_critic``. Nothing else lists the fields: `FIELDS` (and `RESUMABLE`,
`COMPARABLE`) are read off the dataclass. A field with ``flag=None`` has no flag (only `model`, which
`ganzoo run` takes as its positional argument). A run's settings are resolved (defaults, model, file,
flags, the machine, the data) by ganzoo.resolve.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GanzooError
from .settings import (MAX_SEED, FieldInfo, adam_beta, at_least, at_most, between, beta_pair, byte_size, channel_count, check_values,
                       ema_decay, epochs_between, fields_of, finite_duration, one_of, option_values,
                       parse_betas, parse_budget, parse_duration, parse_options, parse_regularizers, parse_size,
                       positive_int, positive_number, read_settings_file, regularizers_check, seed_range, setting,
                       some_text, template as settings_template, thread_count, zero_or_positive,
                       zero_or_positive_int)
from .settings import format_value as format_setting

__all__ = ["ANALYSIS_FIELDS", "COMMAND_FIELDS", "COMPARABLE", "CompareSettings", "DataSettings", "EVAL_N", "EvalSettings", "FIELDS",
           "MAX_SAMPLE_N", "SampleSettings", "MAX_IMAGE_SIZE", "MAX_SAMPLES", "MAX_SEED", "ModelSpec",
           "RESUMABLE", "RunConfig", "TRAINING_TIME", "UNLIMITED_EPOCHS", "ViewSettings", "format_value",
           "parse_betas", "parse_duration", "parse_regularizers", "read_config_file", "template"]

MAX_IMAGE_SIZE = 1024      # beyond this, neither the data nor DCGAN's widths fit any one machine
MAX_SAMPLES = 1024         # fixed-noise images per epoch grid (all drawn through G at once)

# --budget without --epochs: epochs enough to never end before the budget does. Saved as null and
# shown as "until the budget ends", never as the number.
UNLIMITED_EPOCHS = 10 ** 6

# What --budget counts, and what `ganzoo compare` reports as training time (one definition for both):
TRAINING_TIME = ("time inside the training loop (steps, logs, sample grids, checkpoints), summed over every "
                 "resume of the run; loading data and building networks before it, --eval-every scoring "
                 "in it, and --compile's first step (the compiling) are not counted")

EVAL_N = 10_000            # samples an evaluation draws unless its metrics ask for more (register(..., n=))
MAX_SAMPLE_N = 10_000      # images `ganzoo sample` draws into one grid


def a_name(value: Any, flag: str) -> str | None:
    """A registered component's name (an optimiser, a schedule): its registry checks it where a run is made or
    resumed, once plugins have loaded, so a stored config naming a plugin's is readable without that plugin."""
    if not value.strip() or value != value.strip() or "," in value:
        return f"{flag} must name one registered component (see `ganzoo list`), got {value!r}."
    return None


def names(value: Any, flag: str) -> str | None:
    """Comma-separated registered names (or none), each checked by its registry where a run is made."""
    if any(not n.strip() for n in value.split(",")) and value.strip():
        return f"{flag} must be comma-separated registered names (see `ganzoo list`), got {value!r}."
    return None


def image_size_range(value: Any, flag: str) -> str | None:
    if value < 0:
        return f"{flag} must be positive, got {value}."
    if value > MAX_IMAGE_SIZE:
        return f"{flag} {value} is larger than ganzoo trains (at most {MAX_IMAGE_SIZE})."
    return None


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

    model: str = setting("dcgan", "registered model name (see `ganzoo list`)", flag=None,
                         shown_default="none for `ganzoo run`, which needs one named (or a config file's `model`); "
                                       "dcgan for RunConfig() in Python")
    generator: str = setting("", "generator network, a registered name", shown_default="the model's")
    discriminator: str = setting("", "discriminator network, a registered name", shown_default="the model's")
    loss: str = setting("", "adversarial loss, a registered name", shown_default="the model's")
    options: dict = setting({}, "options of the components, by role, e.g. loss.a=-1,discriminator.slope=0.1, or "
                            "of a regulariser or augmentation by name, regularizer.gp.center=0,augment.cutout.ratio=0.25; each "
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
    latent: str = setting("normal", "latent prior: normal, N(0, I), as pytorch/examples' DCGAN and every number "
                          "ganzoo publishes; or uniform in [-1, 1], the DCGAN paper's",
                          checks=(one_of("normal", "uniform", quoted=True),))
    num_classes: int = setting(0, "classes a conditional model's G and D are conditioned on; unconditional models "
                               "take none", checks=(zero_or_positive_int,),
                               shown_default="the dataset's for a conditional model, else 0")
    g_width: int = setting(64, "generator's narrowest feature width (the DCGAN paper's Fig. 1: 128; 64 as "
                           "pytorch/examples, a quarter of the compute)", checks=(positive_int,), comparable=True)
    d_width: int = setting(64, "discriminator's narrowest feature width", checks=(positive_int,), comparable=True)
    epochs: int = setting(5, "epochs to train", checks=(positive_int, at_most(UNLIMITED_EPOCHS)), resumable=True,
                          shown_default="5; with --budget alone, until the budget ends", null=UNLIMITED_EPOCHS,
                          shown=lambda v: "until the budget ends" if v in (None, UNLIMITED_EPOCHS) else str(v))
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
    optimizer_g: str = setting("adam", "the generator's optimizer, a registered name: adam, rmsprop, sgd or a "
                               "plugin's (see `ganzoo list`)", checks=(a_name,))
    optimizer_d: str = setting("adam", "the discriminator's optimizer, a registered name", checks=(a_name,))
    lr_schedule: str = setting("constant", "learning-rate schedule, a registered name: constant, linear (to 0 at the "
                               "last step), cosine (with a warm-up) or a plugin's", checks=(a_name,))
    step_hooks: str = setting("", "what runs after each optimiser step, comma-separated registered names, e.g. "
                              "clip (WGAN's weight clipping)", checks=(names,), shown_default="none")
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
    collective_timeout: float = setting(0.0, "under torchrun: how long a process waits for a peer that has stopped "
                                        "responding (frozen, killed, unreachable) before the run stops with an "
                                        "error naming it, e.g. 90s, 5m; auto: 20 times the slowest step so far, "
                                        "at least 60s", parse=lambda text: 0.0 if str(text).strip().lower() == "auto"
                                        else parse_duration(text), checks=(finite_duration,), resumable=True,
                                        metavar="DURATION", shown=lambda v: f"{v:g}" if v else "auto")
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
    eval_every: int = setting(0, "evaluate with the dataset's metrics every N epochs (and after the last)",
                              checks=(epochs_between,), resumable=True, shown_default="0, never")
    eval_n: int = setting(EVAL_N, "samples per evaluation during training", checks=(positive_int,), resumable=True)
    metrics: str = setting("", "comma-separated metrics for --eval-every (see `ganzoo list`)", resumable=True,
                           shown_default="the dataset's")
    compile: bool = setting(False, "torch.compile G and D; falls back to eager with a warning if compiling fails",
                            resumable=True, shown_default="off; no gain measured on a CPU")
    channels_last: bool = setting(False, "NHWC memory format for convolutional networks", resumable=True,
                                  shown_default="off; on where --precision auto picks bf16 on a CPU",
                                  decided_by="--precision auto")
    budget: float = setting(0.0, "stop cleanly after this much training time, e.g. 90s, 5m, 1h: time in the "
                            "training loop, loading and --eval-every scoring not counted, summed over resumes; "
                            "none: no budget", parse=parse_budget, checks=(finite_duration,), resumable=True, metavar="DURATION",
                            shown=lambda v: f"{v:g}s" if v else "none")
    memory_budget: int = setting(0, "images larger than this stream from host memory instead of being held on the "
                                 "device, e.g. 512M, 8G", parse=parse_size, checks=(byte_size,), resumable=True,
                                 shown_default="0, half the free memory", metavar="SIZE")
    tensorboard: bool = setting(False, "also log losses, D outputs, images/s, scores and the fixed-noise grids for "
                                "TensorBoard, in RUN/tensorboard (needs pip install 'pyganzoo[tensorboard]'); the "
                                "same as --loggers tensorboard", resumable=True)
    loggers: str = setting("", "where else the run logs its records and grids, comma-separated registered loggers "
                           "(see `ganzoo list`), e.g. tensorboard or mlflow", resumable=True, shown_default="none")
    out: str = setting("", "run folder", shown_default="runs/<model>-<data>, numbered")

    @property
    def conditional(self) -> bool:
        """Whether G and D are conditioned on class labels (G(z, y), D(x, y)). Decided once, from the registry's
        conditional=True, when the settings are resolved (ganzoo.resolve), which records it as num_classes:
        a resolved config has classes exactly when its networks are conditional."""
        return self.num_classes > 0

    def stored_data_dir(self) -> str | None:
        """data_dir as the run stored it (absolute: ganzoo.resolve), for reading the run's data again: a folder
        (or a file, for a dataset registered with file_root=True), or a sentence saying why not."""
        path = self.data_dir
        if path:
            from .data import check_root              # the dataset says whether its root is a file or a folder
            check_root(self.data, path, stored=True)
        return path

    def to_dict(self) -> dict[str, Any]:
        """Every field, as config.json and weights files hold it (the epochs sentinel as null)."""
        data = dataclasses.asdict(self)
        for name, info in FIELDS.items():
            if info.setting.null is not None and data[name] == info.setting.null:
                data[name] = None
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
            if value is None and info.setting.null is not None:
                value = info.setting.null
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
        except (TypeError, ValueError, RecursionError) as e:   # RecursionError: nested beyond reason
            raise GanzooError(f"The embedded config is not valid JSON ({str(e)[:120]}).") from None
        if not isinstance(data, dict):
            raise GanzooError("The embedded config is not a JSON object.")
        return cls.from_dict(data)

    def validate(self) -> None:
        """Reject values no run can use, with a sentence naming the flag."""
        check_values(FIELDS, self)
        self.check_batch(1)

    def check_batch(self, processes: int) -> None:
        """Every rule on a batch's shape, against what each of `processes` processes gets of --batch-size (the
        global batch): checked before any file is written, once the number of processes is known."""
        if self.batch_size % processes:
            raise GanzooError(f"--batch-size {self.batch_size} is the global batch and does not split evenly over "
                              f"{processes} processes; give a multiple of {processes}.")
        share = self.batch_size // processes
        if share % self.pack:
            unit = processes * self.pack
            each = "" if processes == 1 else f" gives each of {processes} processes {share} images, which"
            raise GanzooError(f"--batch-size {self.batch_size}{each} is not a multiple of --pack {self.pack}: the "
                              f"packed discriminator judges whole packs of {self.pack} samples; use e.g. --batch-size "
                              f"{max(unit, self.batch_size // unit * unit)}.")


# -- the settings of the other commands (their flags, help and checks, as `ganzoo run`'s) -----------------

DEVICE_HELP = "auto, cpu, cuda or cuda:N"
NO_DOWNLOAD_HELP = "never download; use --data-dir or the cache"


RESIZE_HELP = ("how images reach Inception's 299x299 (fid, kid, prdc, memorisation): tf, TensorFlow 1.x bilinear as "
               "the original FID and torch-fidelity; clean, clean-fid's PIL bicubic; torch, pytorch-fid's bilinear")
RESIZES = ("tf", "clean", "torch")
SAMPLE_FORMATS = ("grid", "npz", "png-folder")


@dataclass
class CompareSettings:
    """`ganzoo compare`'s own settings (besides RunConfig's comparable ones, which it takes too)."""

    data: str = setting("mnist", "dataset name")
    data_dir: str | None = setting(None, "local copy of the dataset", shown_default="none, the download cache")
    epochs: int | None = setting(None, "equal epochs for every model", checks=(positive_int, at_most(UNLIMITED_EPOCHS)),
                                 shown_default="1, unlike `ganzoo run`'s 5: a comparison trains every model and seed, "
                                               "and scores each epoch; --epochs 5 compares default runs")
    budget: float | None = setting(None, "equal training time for every model instead, e.g. 90s, 5m (none: epochs)",
                                   parse=parse_budget, checks=(finite_duration,), metavar="DURATION",
                                   shown_default="none")
    points: int = setting(4, "evaluation points along a --budget run", checks=(positive_int, at_most(10_000)))
    seeds: int = setting(1, "seeds per model; scores show the mean and its 95% interval, differences are paired by "
                         "seed; one seed gives no interval", checks=(positive_int, at_most(1000)))
    baseline: str | None = setting(None, "the model every other is measured against, seed by seed", metavar="MODEL",
                                   shown_default="the first named")
    seed: int = setting(0, "first seed", checks=(seed_range,))
    n: int | None = setting(None, "samples for the final scores", flag="-n", checks=(at_least(2),),
                            shown_default="the metrics' own")
    curve_n: int = setting(2000, "samples at intermediate points", checks=(at_least(2),))
    metrics: str | None = setting(None, "comma-separated metric names", shown_default="the dataset's")
    resize: str | None = setting(None, RESIZE_HELP, checks=(one_of(*RESIZES),), shown_default="tf")
    device: str = setting("auto", DEVICE_HELP)
    out: str | None = setting(None, "report folder", shown_default="reports/compare-<models>-<data>")
    resume: bool = setting(False, "continue an interrupted comparison in --out")
    overwrite: bool = setting(False, "replace a comparison in --out")
    no_download: bool = setting(False, NO_DOWNLOAD_HELP)


def sample_count(value, flag):
    """At least one sample (a grid holds at most MAX_SAMPLE_N: `ganzoo sample` checks that once the format is known)."""
    if type(value) is not int or value < 1:
        return f"{flag} must lie between 1 and {MAX_SAMPLE_N}, got {value!r} (with --format, any number from 1)."
    return None


@dataclass
class SampleSettings:
    """`ganzoo sample WEIGHTS`."""

    n: int | None = setting(None, "number of samples; with --by-class, samples per class", flag="-n",
                            checks=(sample_count,),
                            shown_default=f"64, at most {MAX_SAMPLE_N:,} in a grid; with --by-class 10; 50000 with --format")
    fmt: str = setting("grid", "grid: one PNG grid; png-folder: PATH/000000.png ... (torch-fidelity, clean-fid; "
                       "StudioGAN reads its parent folder); npz: arr_0 uint8 [N, H, W, 3] (the ADM evaluator's layout)",
                       flag="--format", checks=(one_of(*SAMPLE_FORMATS),))
    cls: int | None = setting(None, "a conditional model's class to draw, e.g. --class 7", flag="--class",
                              metavar="C", shown_default="every class in turn")
    by_class: bool = setting(False, "a conditional model's grid of one row per class, column j the same z in every "
                             "row")
    out: str | None = setting(None, "PNG file to write; the folder or .npz file with --format",
                              shown_default="samples.png")
    seed: int = setting(0, "seed of the latent vectors", checks=(seed_range,))
    device: str = setting("auto", DEVICE_HELP)
    nrow: int | None = setting(None, "images per row", checks=(positive_int,), shown_default="a square grid")


@dataclass
class EvalSettings:
    """`ganzoo eval WEIGHTS`."""

    data: str | None = setting(None, "dataset whose test split is the reference", shown_default="the run's")
    data_dir: str | None = setting(None, "local copy of that dataset", shown_default="the run's")
    metrics: str | None = setting(None, "comma-separated metric names", shown_default="the dataset's")
    n: int | None = setting(None, "samples to score", flag="-n", checks=(at_least(2),),
                            shown_default=f"what the metrics ask for, {EVAL_N:,} unless one asks for more")
    seed: int = setting(0, "seed of the latents and of the real subset", checks=(seed_range,))
    device: str = setting("auto", DEVICE_HELP)
    json: str | None = setting(None, "where to write the results", shown_default="WEIGHTS with .eval.json")
    inception_weights: str | None = setting(None, "FID Inception weights (safetensors) for fid/kid",
                                            shown_default="$GANZOO_INCEPTION_WEIGHTS")
    resize: str | None = setting(None, RESIZE_HELP, checks=(one_of(*RESIZES),), shown_default="tf")
    no_download: bool = setting(False, NO_DOWNLOAD_HELP)


@dataclass
class DataSettings:
    """`ganzoo data NAME`."""

    data_dir: str | None = setting(None, "local copy of the dataset (torchvision's layout)", shown_default="none")
    split: str = setting("train", "which split", checks=(some_text,))
    image_size: int | None = setting(None, "resolution of the grid", checks=(image_size_range, positive_int),
                                     shown_default="the dataset's")
    channels: int | None = setting(None, "1 or 3", checks=(channel_count,), shown_default="the dataset's")
    n: int = setting(64, "images in the grid, picked at random", flag="-n", checks=(between(1, 1024),))
    seed: int = setting(0, "seed of the pick", checks=(seed_range,))
    out: str | None = setting(None, "PNG file to write", shown_default="<name>-<split>.png")
    no_download: bool = setting(False, NO_DOWNLOAD_HELP)


# -- the analyses (ganzoo.analysis.commands): what they share, then each one's own ------------------------------

@dataclass
class ViewSettings:
    """`ganzoo view [RUN_OR_FOLDER ...]`."""

    host: str = setting("127.0.0.1", "address to listen on (127.0.0.1: this machine only; 0.0.0.0 opens it to the "
                                     "network)")
    port: int | None = setting(None, "port", checks=(between(1, 65535),), shown_default="7860, or the next free one")
    threads: int | None = setting(None, "CPU threads torch draws with", checks=(at_least(1),),
                                  shown_default="torch's")


@dataclass
class AnalysisSettings:
    """What every analysis takes besides its weights file (each takes those of these that apply to it)."""

    cls: int | None = setting(None, "a conditional model's class, fixed while z moves", flag="--class", metavar="C",
                              shown_default="0")
    seed: int = setting(0, "seed of the sample sheet the sample numbers refer to")
    device: str = setting("auto", DEVICE_HELP)
    out: str | None = setting(None, "file to write", shown_default="<run>/analysis/<a name made of the arguments>, "
                                                                   "so runs with other arguments write beside it")


@dataclass
class LabellerSettings:
    """The labeller an analysis picks samples by class with (arithmetic's class:N terms, dropout --class)."""

    labeller: str = setting("probe", "how to label samples: probe = a linear probe on D's features trained on "
                            "labelled real images (needs a checkpoint)")
    data: str | None = setting(None, "labelled dataset the labeller learns from", shown_default="the run's")
    data_dir: str | None = setting(None, "local copy of that dataset", shown_default="the run's")
    per_class: int = setting(100, "labelled images per class it learns from")
    no_download: bool = setting(False, "never download the dataset")


@dataclass
class SheetSettings:
    n: int = setting(64, "samples on the sheet", flag="-n")
    start: int = setting(0, "number of the first sample")


@dataclass
class InterpolateSettings:
    path: str | None = setting(None, "a row walking through these sheet numbers (repeat for more rows)", repeat=True,
                               metavar="I,J[,K...]", shown_default="--rows walks 0->1, 2->3, 4->5, ...")
    rows: int = setting(8, "walks between consecutive sheet samples (0->1, 2->3, ...) when no --path is given")
    steps: int = setting(10, "images per leg, both ends included")
    mode: str = setting("slerp", "spherical (slerp) or linear (lerp) interpolation", checks=(one_of("slerp", "lerp"),))
    gif: str | None = setting(None, "animated GIF to write", shown_default="the PNG's name with .gif")
    no_gif: bool = setting(False, "write the PNG grid only")
    fps: float = setting(12.0, "GIF frames per second")


@dataclass
class ArithmeticSettings:
    exemplars: int = setting(3, "exemplars per class:N term")
    pool: int = setting(512, "sheet samples the labeller searches")
    variations: int = setting(8, "noisy variations of the result")
    noise: float = setting(0.25, "uniform noise scale of the variations")


@dataclass
class FiltersSettings:
    limit: int = setting(256, "filters to show at most")


@dataclass
class FeaturemapsSettings:
    index: int = setting(0, "sheet number of the sample")
    limit: int = setting(128, "maps per layer to show at most; the caption says when a layer has more")


@dataclass
class ProbeSettings:
    seed: int = setting(0, "seed of the labelled subset, the test subset and the random D")
    data: str | None = setting(None, "labelled dataset", shown_default="the run's")
    data_dir: str | None = setting(None, "local copy of that dataset", shown_default="the run's")
    no_download: bool = setting(False, "never download the dataset")
    per_class: int = setting(100, "labelled training images per class")
    test_size: int | None = setting(None, "test images to score on", shown_default="the whole test split")
    lam: float | None = setting(None, "fixed L2 strength", flag="--lambda",
                                shown_default="chosen on a held-out fifth of the labelled images")
    per_layer: bool = setting(False, "also score each D layer alone")


@dataclass
class DropoutSettings:
    layer: int = setting(-2, "which hidden layer of G, counted from 0 (negative: from the output)")
    maps: str | None = setting(None, "the maps to drop", metavar="I,J,...", one_of_group="maps")
    target: int | None = setting(None, "drop the maps that draw this class", flag="--class", one_of_group="maps")
    top: int = setting(10, "maps --class drops at most; 0: every map the selection finds (for --select probe, every "
                       "map the probe weighs positively, the paper's rule)")
    select: str = setting("ablation", "how --class picks maps: ablation drops each map alone and keeps those whose "
                          "loss most removes the class and least changes other samples; probe is the paper's "
                          "logistic regression on the maps' activations (see README for why ablation)",
                          checks=(one_of("ablation", "probe"),))
    pool: int = setting(1024, "samples the labeller labels; --class picks maps and measures the drop on them")
    n: int = setting(16, "samples to show", flag="-n")


FIELDS: dict[str, FieldInfo] = fields_of(RunConfig)
ANALYSIS_FIELDS: dict[str, dict[str, FieldInfo]] = {
    "common": fields_of(AnalysisSettings), "labeller": fields_of(LabellerSettings),
    "sheet": fields_of(SheetSettings), "interpolate": fields_of(InterpolateSettings),
    "arithmetic": fields_of(ArithmeticSettings), "filters": fields_of(FiltersSettings),
    "featuremaps": fields_of(FeaturemapsSettings), "probe": fields_of(ProbeSettings),
    "dropout": fields_of(DropoutSettings)}
COMMAND_FIELDS: dict[str, dict[str, FieldInfo]] = {
    "compare": fields_of(CompareSettings), "sample": fields_of(SampleSettings), "eval": fields_of(EvalSettings),
    "data": fields_of(DataSettings), "view": fields_of(ViewSettings)}
RESUMABLE = frozenset(name for name, info in FIELDS.items() if info.setting.resumable)
COMPARABLE = frozenset(name for name, info in FIELDS.items() if info.setting.comparable)


def format_value(value: Any, name: str = "") -> str:
    """A run setting's value as people read it: 0.0002, on/off, none, 'until the budget ends'."""
    return format_setting(value, FIELDS.get(name))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A run's settings from a YAML, TOML or JSON file (a run's config.json too), typed and checked."""
    return read_settings_file(path, FIELDS)


def template(config: RunConfig, title: str, fixed=()) -> str:
    """A commented YAML file with every run setting: what `ganzoo config MODEL` prints, what --config reads.
    `fixed`: the settings the model itself sets (kept even where something else would decide them)."""
    return settings_template(config.to_dict(), FIELDS, title, fixed)
