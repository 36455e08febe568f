"""Weights files: safetensors only (never pickle), written atomically, carrying their config.

Two kinds of file share one format:
- a generator file (`<model>.safetensors`): G's weights + the run config, enough
  for `ganzoo sample` to rebuild the model from the file alone;
- both record which plugin, from which package and version, made each component
  ("ganzoo.plugins"), so a file whose plugin is missing names the package to install;
- a checkpoint (`checkpoint.safetensors`): G, D, both optimizers, RNG states and
  counters (and the averaged G, under G_ema., with --ema), enough for `--resume` to
  continue bit for bit. With --ema the generator file holds the averaged G.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.metadata
import io
import json
import os
import pickletools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from .config import RunConfig
from .errors import GanzooError
from .models import PREFIX, ROLES, build_network, build_on_meta
from .plugins import registries
from .runfiles import RunFiles, weights_file

FORMAT_VERSION = "1"
EMA_PREFIX = "G_ema."  # a checkpoint's averaged generator (--ema); its generator file holds only that one
TMP_MARK = ".tmp"  # atomic_write's temporaries: .<name>.tmp<pid>


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete what atomic writes of a killed process left behind (call with the run folder locked)."""
    removed = []
    for path in Path(folder).glob(f".*{TMP_MARK}*"):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def provenance(config: RunConfig) -> dict[str, dict[str, str]]:
    """Which plugin (and package, version) made each of the config's components: {role: {name, plugin, ...}}."""
    regs = registries()
    return {role: regs.provenance(kind, getattr(config, role)) for role, kind in ROLES.items()
            if getattr(config, role) in regs.by_kind(kind)}


def check_installed(config: RunConfig, metadata: dict[str, str], path: str | Path) -> None:
    """Every component a weights file names is registered here; else name the package that made it."""
    try:
        made_by = json.loads(metadata.get("ganzoo.plugins", "{}"))
    except ValueError:
        made_by = {}
    regs = registries()
    for role, kind in ROLES.items():
        name = getattr(config, role)
        if name in regs.by_kind(kind):
            continue
        record = made_by.get(role) if isinstance(made_by, dict) else None
        if not isinstance(record, dict) or record.get("name") != name or not record.get("distribution"):
            continue                                     # an older or hand-edited file: the registry's message follows
        package, version = str(record["distribution"]), str(record.get("version", ""))
        pin = f"{package}=={version}" if version and version != "?" else package
        made = f"{path} was made with the {kind} {name!r} of the plugin {record.get('plugin', '?')!r} from the " \
               f"package {package} {version}"
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            raise GanzooError(f"{made}, which is not installed here; install it (pip install '{pin}') and try "
                              f"again.") from None
        raise GanzooError(f"{made}; the {package} {installed} installed here does not register it (see `ganzoo "
                          f"plugins`); install the version that made it (pip install '{pin}').")


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, config: RunConfig,
                 extra: dict[str, Any] | None = None) -> Path:
    metadata = {"ganzoo.format": FORMAT_VERSION, "ganzoo.kind": kind, "ganzoo.config": config.to_json(),
                "ganzoo.plugins": json.dumps(provenance(config), sort_keys=True)}
    if extra:
        metadata["ganzoo.state"] = json.dumps(extra)
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
    if metadata.get("ganzoo.format") != FORMAT_VERSION or "ganzoo.config" not in metadata:
        raise GanzooError(f"{path} is a safetensors file but not a ganzoo weights file (no ganzoo config inside).")
    for name, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise GanzooError(f"{path} is damaged: its tensor {name!r} holds NaN/Inf values.")
    return tensors, metadata


def config_of(metadata: dict[str, str], path: str | Path = "the weights file") -> RunConfig:
    """The config embedded in a weights file, checked as strictly as one typed on the command line."""
    try:
        config = RunConfig.from_json(metadata["ganzoo.config"])
        config.validate()
    except GanzooError as exc:
        raise GanzooError(f"{path} holds an invalid config: {exc}") from None
    except TypeError as exc:
        raise GanzooError(f"{path} holds a malformed config: {exc}") from None
    check_installed(config, metadata, path)
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
                        "generator", config)


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
        if features and self.config.num_classes:
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
    config = config_of(metadata, path)
    tensors = widened(tensors)
    if any(k.startswith(EMA_PREFIX) for k in tensors):    # a checkpoint with an averaged G: sample from that one
        tensors = {PREFIX["generator"] + k[len(EMA_PREFIX):] if k.startswith(EMA_PREFIX) else k: v
                   for k, v in tensors.items() if not k.startswith(PREFIX["generator"])}
    kinds = ["generator"] + (["discriminator"] if discriminator and any(k.startswith(PREFIX["discriminator"])
                                                                      for k in tensors) else [])
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
