"""Weights files and training checkpoints: safetensors only (never pickle), written atomically, carrying
their config. Every key of the format is spelled in this file, and nowhere else.

Two kinds of file share one format:
- a generator file (`<model>.safetensors`): G's weights + the run config, enough
  for `ganzoo sample` to rebuild the model from the file alone;
- a checkpoint (`checkpoint.safetensors`): G, D, both optimizers, the averaged G with --ema, and the
  `TrainState` (counters, RNG states, the training clock, the learning-rate scale, the last step's
  statistics), enough for `--resume` to continue bit for bit. With --ema the generator file holds the
  averaged G.
Both record which plugin, from which package and version, made each component ("ganzoo.plugins"), so a
file whose plugin is missing names the package to install.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import json
import math
import pickletools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from .config import RunConfig
from .errors import CheckpointError, GanzooError
from .files import atomic_write
from .models import ROLES, build_network, build_on_meta
from .plugins import registries
from .runfiles import RunFiles, weights_file

# -- the format: every key a weights file holds ------------------------------------------------------

FORMAT_VERSION = "1"
# metadata (text)
FORMAT, KIND, CONFIG, PLUGINS, STATE = "ganzoo.format", "ganzoo.kind", "ganzoo.config", "ganzoo.plugins", "ganzoo.state"
GENERATOR_FILE, CHECKPOINT_FILE = "generator", "checkpoint"          # the values of KIND
# tensors
PREFIX = {"generator": "G.", "discriminator": "D."}     # the networks' tensors, by role
EMA_PREFIX = "G_ema."           # a checkpoint's averaged generator (--ema); its generator file holds only that one
OPTIMIZER_PREFIX = {"G": "opt_g", "D": "opt_d"}       # each network's optimiser state: <prefix>.<param>.<name>
LAST_STATS = "stats.last"       # the last step's statistics (a phase not run keeps its last)
RNG_TORCH, RNG_CUDA, RNG_DATA_EPOCH = "rng.torch", "rng.cuda", "rng.data_epoch"
# STATE's JSON: the counters, the clock, the lr scale, the grad scaler, the optimisers' non-tensor state
STEP, EPOCH, STEP_IN_EPOCH, D_STEPS = "step", "epoch", "step_in_epoch", "d_steps"
TRAIN_SECONDS, LR_SCALE, SCALER = "train_seconds", "lr_scale", "scaler"


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def provenance(config: RunConfig) -> dict[str, dict[str, str]]:
    """Which plugin (and package, version) made each of the config's components: {role: {name, plugin, ...}}."""
    regs = registries()
    return {role: regs.provenance(kind, getattr(config, role)) for role, kind in ROLES.items()
            if getattr(config, role) in regs.by_kind(kind)}


def check_installed(config: RunConfig, metadata: dict[str, str], path: str | Path,
                    roles: tuple[str, ...] = tuple(ROLES)) -> None:
    """Every component of `roles` a weights file names is registered here; else name the package that made it.
    (Sampling asks for the generator's alone: a training-only component of an uninstalled plugin, its loss or
    its D, does not stop anyone drawing from the generator.)"""
    try:
        made_by = json.loads(metadata.get(PLUGINS, "{}"))
    except (ValueError, RecursionError):          # damaged, or nested beyond reason: no advice from it
        made_by = {}
    regs = registries()
    for role in roles:
        kind = ROLES[role]
        name = getattr(config, role)
        if name in regs.by_kind(kind):
            continue
        record = made_by.get(role) if isinstance(made_by, dict) else None
        if not isinstance(record, dict) or record.get("name") != name or not record.get("distribution"):
            continue                                     # an older or hand-edited file: the registry's message follows
        package, version = str(record["distribution"]), str(record.get("version", ""))
        plugin = str(record.get("plugin", "?"))
        pin = pip_requirement(package, version)
        if pin is None:                                  # text from the file, never printed as a command
            raise GanzooError(f"{path} was made with the {kind} {name!r} of a plugin it names {plugin[:80]!r}, "
                              f"which is not installed here; the file gives its package as {package[:80]!r} "
                              f"version {version[:40]!r}, which is not a valid package name and version (PEP 508), "
                              f"so ganzoo suggests no install command: find the plugin's package yourself.")
        made = (f"{path} was made with the {kind} {name!r} of the plugin {plugin[:80]!r} from the package "
                f"{pin.replace('==', ' ')}")
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            raise GanzooError(f"{made}, which is not installed here; install it (pip install '{pin}') and try "
                              f"again.") from None
        if "==" not in pin or same_version(installed, pin.split("==", 1)[1]):
            raise GanzooError(f"{made}; the {package} {installed} installed here does not register it (see `ganzoo "
                              f"plugins`).")
        raise GanzooError(f"{made}; the {package} {installed} installed here does not register it (see `ganzoo "
                          f"plugins`). Installing the version that made it would replace {installed} with "
                          f"{pin.split('==', 1)[1]}, which what else you run may depend on: in a separate "
                          f"environment, pip install '{pin}'.")


NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")    # a PEP 508 distribution name


def pip_requirement(package: str, version: str) -> str | None:
    """`package==version` (or the name alone, no version known) as a weights file gives them, if the name is a
    valid PEP 508 distribution name and the version a valid PEP 440 one (so nothing else can reach a shell
    through advice); None otherwise."""
    from packaging.version import InvalidVersion, Version

    if not NAME.fullmatch(package):
        return None
    if not version or version == "?":
        return package
    try:
        return f"{package}=={Version(version)}"
    except InvalidVersion:
        return None


def same_version(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, config: RunConfig,
                 extra: dict[str, Any] | None = None) -> Path:
    metadata = {FORMAT: FORMAT_VERSION, KIND: kind, CONFIG: config.to_json(),
                PLUGINS: json.dumps(provenance(config), sort_keys=True)}
    if extra:
        metadata[STATE] = json.dumps(extra)
    tensors = {k: _cpu(v) for k, v in tensors.items()}
    # Serialised in memory, written by Python: a full disk raises OSError (ENOSPC), not a library error.
    return atomic_write(path, lambda tmp: tmp.write_bytes(save(tensors, metadata=metadata)))


PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".ckpt", ".bin")
SNIFF_BYTES = 1 << 20


def pickle_kind(path: str | Path) -> str | None:
    """Which pickle-based format a file that is not safetensors holds, by content alone: "torch.save" (a zip
    of pickles), "pickle" (any protocol) or None.

    Reads at most SNIFF_BYTES and only disassembles them (pickletools.dis checks the opcodes and their
    stack without building any object), so it runs no code.
    """
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head[:4] == b"PK\x03\x04":
        return "torch.save"
    try:
        pickletools.dis(head, out=io.StringIO())
    except Exception:  # not a pickle, or one longer than SNIFF_BYTES: judged by its start
        # A damaged safetensors file starts with its header's length, then "{"; that length's first bytes
        # may well read 0x80 0x02, so a protocol mark alone does not make it a pickle.
        looks_safetensors = head[8:9] == b"{"
        protocol_mark = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
        return "pickle" if protocol_mark and not looks_safetensors else None
    return "pickle"


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read every tensor and the metadata; any damage becomes one GanzooError sentence.

    safetensors is the only loader: it cannot run code. A file it cannot read is refused, never
    handed to another loader; a pickle is named as one, by its suffix or, whatever its name
    (.weights, no suffix, even .safetensors), by its content. tests/test_untrusted.py fails if a
    pickle loader (torch's or the pickle module's) ever appears in ganzoo.
    """
    path = Path(path)
    if not path.is_file():
        raise GanzooError(f"No weights file at {path}.")
    if path.suffix in PICKLE_SUFFIXES:
        raise GanzooError(f"{path} looks like a pickle file; ganzoo loads weights only from .safetensors files.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        kind = None
        with contextlib.suppress(OSError):
            kind = pickle_kind(path)
        if kind:
            raise GanzooError(f"{path} is a pickle ({kind}) file, whatever its name; ganzoo loads weights only "
                              f"from safetensors files, which cannot run code.") from None
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise GanzooError(f"{path} is not a readable safetensors file (truncated or corrupted?): {reason}") from None
    if metadata.get(FORMAT) != FORMAT_VERSION or CONFIG not in metadata:
        raise GanzooError(f"{path} is a safetensors file but not a ganzoo weights file (no ganzoo config inside).")
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise GanzooError(f"{path} is damaged: its tensor {name!r} holds NaN/Inf values.")
    return tensors, metadata


def config_of(metadata: dict[str, str], path: str | Path = "the weights file",
              roles: tuple[str, ...] = tuple(ROLES)) -> RunConfig:
    """The config embedded in a weights file, checked as strictly as one typed on the command line, plugins
    loaded first; the components of `roles` must be installed (the registries check the training-only names,
    optimisers, schedule and step hooks, only where a run is resumed: ganzoo.resolve.resumed_config)."""
    registries()
    try:
        config = RunConfig.from_json(metadata[CONFIG])
        config.validate()
    except GanzooError as exc:
        raise GanzooError(f"{path} holds an invalid config: {exc}") from None
    except TypeError as exc:
        raise GanzooError(f"{path} holds a malformed config: {exc}") from None
    check_installed(config, metadata, path, roles)
    return config


def _state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def check_state(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], what: str) -> None:
    """A sentence when the names, shapes or dtypes of `state` differ from the model's `expected` ones."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise GanzooError(f"The {what} weights do not fit the model the config describes "
                          f"(missing: {missing[:3]}, unexpected: {unexpected[:3]}).")
    for k, v in state.items():
        if v.shape != expected[k].shape or v.dtype != expected[k].dtype:
            raise GanzooError(f"The {what} tensor {k!r} has shape {tuple(v.shape)} ({v.dtype}), the model "
                              f"expects {tuple(expected[k].shape)} ({expected[k].dtype}).")


def load_state(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, what: str) -> None:
    """Load `prefix`-named tensors into module, with a sentence when shapes or names disagree."""
    state = _state(tensors, prefix)
    check_state(module.state_dict(), state, what)
    module.load_state_dict(state)


def save_generator(path: str | Path, generator: nn.Module, config: RunConfig) -> Path:
    return save_tensors(path, {f"{PREFIX['generator']}{k}": v for k, v in generator.state_dict().items()},
                        GENERATOR_FILE, config)


def rebuild(kind: str, config: RunConfig, tensors: dict[str, torch.Tensor]) -> nn.Module:
    """The generator or discriminator a file's config describes, with the file's weights loaded.

    Shapes are checked first on the meta device: a config claiming a huge model fails there, not in malloc.
    """
    prefix = PREFIX[kind]
    meta = build_on_meta(config, (kind,))
    if meta is not None:
        check_state(meta[0].state_dict(), _state(tensors, prefix), kind)
    network = build_network(kind, config)
    load_state(network, tensors, prefix, kind)
    return network


@dataclass
class Networks:
    """What a weights file holds: G always, D when it is a checkpoint; both in eval mode."""

    G: nn.Module
    D: nn.Module | None
    config: RunConfig
    path: Path

    def need_discriminator(self, what: str, features: bool = False) -> nn.Module:
        """D, or a sentence saying why `what` cannot have it; `features`: `what` runs D on images alone, which a
        conditional model's D (judging an image with its class) cannot do."""
        if features and self.config.conditional:
            raise GanzooError(f"{what} reads the discriminator's features of an image alone, and the conditional "
                              f"model {self.config.model!r} has a D that judges an image together with its class; "
                              f"ask its G for a class instead (--class).")
        if self.D is None:
            from .pretrained import name_of

            name = name_of(self.path)
            if name is not None:
                raise GanzooError(f"{what} needs the discriminator, and the pretrained generator {name!r} ships "
                                  f"without one; use a run's checkpoint (it holds D), e.g. `ganzoo run "
                                  f"{self.config.model} --data {self.config.data}`, then pass its run folder.")
            checkpoint = RunFiles(self.path.parent, self.config.model).checkpoint
            raise GanzooError(f"{what} needs the discriminator, but {self.path} holds only the generator; pass the "
                              f"run's checkpoint instead (e.g. {checkpoint}).")
        return self.D


HALF = (torch.float16, torch.bfloat16)


def widened(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights stored in half precision (shipped pretrained generators) as the float32 the networks are built in."""
    return {k: v.float() if v.dtype in HALF else v for k, v in tensors.items()}


def load_networks(path: str | Path, device: torch.device | str = "cpu", *, discriminator: bool = True) -> Networks:
    """Rebuild G (and D, when the file is a checkpoint and `discriminator`) from one weights file, read once."""
    tensors, metadata = read_tensors(path)
    kinds = ["generator"] + (["discriminator"] if discriminator and any(k.startswith(PREFIX["discriminator"])
                                                                      for k in tensors) else [])
    config = config_of(metadata, path, roles=tuple(kinds))     # only what building these networks needs
    tensors = widened(tensors)
    if any(k.startswith(EMA_PREFIX) for k in tensors):    # a checkpoint with an averaged G: sample from that one
        tensors = {PREFIX["generator"] + k[len(EMA_PREFIX):] if k.startswith(EMA_PREFIX) else k: v
                   for k, v in tensors.items() if not k.startswith(PREFIX["generator"])}
    try:
        nets = {kind: rebuild(kind, config, tensors).to(device).eval() for kind in kinds}
    except GanzooError as exc:
        raise GanzooError(f"{path}: {exc}") from None
    return Networks(nets["generator"], nets.get("discriminator"), config, Path(path))


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, RunConfig]:
    """Rebuild the generator a weights file (generator file or checkpoint) or run folder describes, in eval mode."""
    nets = load_networks(weights_file(path), device, discriminator=False)
    return nets.G, nets.config


# -- optimizer state <-> flat tensors + JSON ------------------------------------------------------

def flatten_optimizer(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def unflatten_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str,
                        info: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in info["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    if len({frozenset(s) for s in state.values()}) > 1:  # every parameter's state has the same parts
        raise GanzooError(f"The checkpoint's {prefix} optimizer state is incomplete: some parameters lack parts "
                          f"of it.")
    try:
        opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise GanzooError(f"The checkpoint's optimizer state does not fit this model: {exc}") from None
    # A file holds dense (NCHW) tensors; give each state tensor its parameter's memory layout again
    # (e.g. channels-last), since fused optimizers walk a parameter and its state as one flat buffer.
    for group in opt.param_groups:
        for param in group["params"]:
            for key, value in opt.state.get(param, {}).items():
                if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                    opt.state[param][key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


# -- a training checkpoint: the networks, their optimisers and the TrainState --------------------------

class Clock:
    """Training time (config.TRAINING_TIME): the seconds earlier segments banked, plus the running one's."""

    def __init__(self, banked: float = 0.0):
        self.banked = banked             # seconds before the clock last started (earlier resumes included)
        self.started: float | None = None   # perf_counter() when it started; None: stopped

    @property
    def running(self) -> bool:
        return self.started is not None

    def seconds(self) -> float:
        return self.banked + (time.perf_counter() - self.started if self.started is not None else 0.0)

    def start(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def stop(self) -> None:
        if self.started is not None:
            self.banked, self.started = self.seconds(), None

    def set(self, banked: float) -> None:
        """Start over from `banked` seconds (a resume, a rollback), still running if it was."""
        self.banked = banked
        if self.started is not None:
            self.started = time.perf_counter()

    @contextlib.contextmanager
    def paused(self):
        """Time in the block is not training time (scoring during a run)."""
        running = self.running
        self.stop()
        try:
            yield
        finally:
            if running:
                self.start()


@dataclass
class TrainState:
    """Where a run stands, besides its networks and optimisers: what a checkpoint restores of the loop and
    the step."""

    last_stats: torch.Tensor         # [n_stats] the last step's statistics; a phase not run keeps its last
    data_epoch_rng: torch.Tensor     # the data RNG's state that regenerates this epoch's order
    step: int = 0                    # optimiser steps done (the loop's count)
    epoch: int = 0                   # epochs completed
    step_in_epoch: int = 0
    d_steps: int = 0                 # the step's own count of D updates (= step in a run; a caller may step alone)
    lr_scale: float = 1.0            # halved at each --on-divergence rollback
    clock: Clock = field(default_factory=Clock)

    def position(self, steps_per_epoch: int) -> str:
        """Where training stands, numbered as the progress line numbers it: 'step 704 (epoch 2, 236/468 steps)'."""
        if self.step_in_epoch:
            return f"step {self.step} (epoch {self.epoch + 1}, {self.step_in_epoch}/{steps_per_epoch} steps)"
        return f"step {self.step} (end of epoch {self.epoch})" if self.epoch else f"step {self.step} (start)"

    def epochs_float(self, steps_per_epoch: int) -> float:
        """Epochs trained, with the current one's fraction: what the log's "epoch" says."""
        return self.epoch + self.step_in_epoch / steps_per_epoch


class Trainable(Protocol):
    """What a checkpoint holds besides the TrainState (a training step: ganzoo.training.step.Step)."""

    G: nn.Module
    D: nn.Module
    ema: Any                                  # with a .G module, or None
    optimizers: dict[str, torch.optim.Optimizer]   # "G", "D"
    scaler: torch.amp.GradScaler
    device: torch.device


def save_checkpoint(path: str | Path, config: RunConfig, state: TrainState, trained: Trainable) -> Path:
    """The networks, their optimisers and the state, as one checkpoint."""
    tensors = {f"{PREFIX['generator']}{k}": v for k, v in trained.G.state_dict().items()}
    tensors |= {f"{PREFIX['discriminator']}{k}": v for k, v in trained.D.state_dict().items()}
    if trained.ema:
        tensors |= {f"{EMA_PREFIX}{k}": v for k, v in trained.ema.G.state_dict().items()}
    tensors[LAST_STATS] = state.last_stats
    extra: dict[str, Any] = {STEP: state.step, EPOCH: state.epoch, STEP_IN_EPOCH: state.step_in_epoch,
                             TRAIN_SECONDS: state.clock.seconds()}
    for network in ("G", "D"):
        flat, info = flatten_optimizer(trained.optimizers[network], OPTIMIZER_PREFIX[network])
        tensors |= flat
        extra[OPTIMIZER_PREFIX[network]] = info
    tensors[RNG_TORCH] = torch.get_rng_state()
    tensors[RNG_DATA_EPOCH] = state.data_epoch_rng
    if trained.device.type == "cuda":
        tensors[RNG_CUDA] = torch.cuda.get_rng_state(trained.device)
    extra |= {SCALER: trained.scaler.state_dict(), LR_SCALE: state.lr_scale, D_STEPS: state.d_steps}
    return save_tensors(path, tensors, CHECKPOINT_FILE, config, extra)


def load_checkpoint(path: str | Path, state: TrainState, trained: Trainable, steps_per_epoch: int) -> None:
    """Restore a checkpoint into the networks, optimisers and state (and torch's RNG); anything damaged or
    written for other data is a CheckpointError naming the file, and then nothing has changed but weights."""
    tensors, metadata = read_tensors(path)
    if metadata.get(KIND) != CHECKPOINT_FILE:
        raise CheckpointError(f"{path} is a generator-only file; resuming needs checkpoint.safetensors.")
    try:
        load_state(trained.G, tensors, PREFIX["generator"], "generator")
        load_state(trained.D, tensors, PREFIX["discriminator"], "discriminator")
        if trained.ema:
            load_state(trained.ema.G, tensors, EMA_PREFIX, "averaged generator")
    except GanzooError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:  # a hand-edited or damaged state: one sentence, whatever is wrong with it
        extra = json.loads(metadata[STATE])
        step, epoch, step_in_epoch = (extra[k] for k in (STEP, EPOCH, STEP_IN_EPOCH))
        if not all(type(v) is int and v >= 0 for v in (step, epoch, step_in_epoch)):
            raise ValueError(f"bad step counters {step!r}, {epoch!r}, {step_in_epoch!r}")
        train_seconds = extra[TRAIN_SECONDS]
        if type(train_seconds) not in (int, float) or not 0 <= train_seconds < math.inf:
            raise ValueError(f"bad training time {train_seconds!r}")
        lr_scale, d_steps = extra[LR_SCALE], extra[D_STEPS]
        if type(d_steps) is not int or d_steps < 0:
            raise ValueError(f"bad D step count {d_steps!r}")
        if type(lr_scale) not in (int, float) or not 0 < lr_scale <= 1:
            raise ValueError(f"bad learning-rate scale {lr_scale!r}")
        last_stats = tensors[LAST_STATS]
        if last_stats.shape != state.last_stats.shape:
            raise ValueError(f"{len(last_stats)} step statistics, this recipe reports {len(state.last_stats)}")
        for network in ("G", "D"):
            prefix = OPTIMIZER_PREFIX[network]
            unflatten_optimizer(trained.optimizers[network], tensors, prefix, extra[prefix])
        if extra[SCALER]:
            trained.scaler.load_state_dict(extra[SCALER])
        torch.Generator().set_state(tensors[RNG_DATA_EPOCH])  # validates before anything is changed
        torch.set_rng_state(tensors[RNG_TORCH])
        if trained.device.type == "cuda" and RNG_CUDA in tensors:
            torch.cuda.set_rng_state(tensors[RNG_CUDA], trained.device)
    except GanzooError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except (KeyError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is damaged: its training state is missing or malformed "
                              f"({type(exc).__name__}: {str(exc)[:120]}).") from None
    if step_in_epoch > steps_per_epoch or step != epoch * steps_per_epoch + step_in_epoch:
        raise CheckpointError(f"{path} was written at step {step} (epoch {epoch}, step {step_in_epoch} in it), which "
                              f"does not fit the data's {steps_per_epoch} steps per epoch: the dataset changed "
                              f"since; resume with the same data, or start a new run.")
    state.data_epoch_rng = tensors[RNG_DATA_EPOCH]
    state.step, state.epoch, state.step_in_epoch = step, epoch, step_in_epoch
    state.clock.set(float(train_seconds))
    state.lr_scale = float(lr_scale)
    state.d_steps = d_steps
    state.last_stats = last_stats.to(trained.device)
