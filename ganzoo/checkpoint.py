"""Weights files: safetensors only (never pickle), written atomically, carrying their config.

Two kinds of file share one format:
- a generator file (`<model>.safetensors`): G's weights + the run config, enough
  for `ganzoo sample` to rebuild the model from the file alone;
- a checkpoint (`checkpoint.safetensors`): G, D, both optimizers, RNG states and
  counters, enough for `--resume` to continue bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .config import RunConfig
from .errors import GanzooError

FORMAT_VERSION = "1"


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, config: RunConfig,
                 extra: dict[str, Any] | None = None) -> Path:
    metadata = {"ganzoo.format": FORMAT_VERSION, "ganzoo.kind": kind, "ganzoo.config": config.to_json()}
    if extra:
        metadata["ganzoo.state"] = json.dumps(extra)
    tensors = {k: _cpu(v) for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read every tensor and the metadata; any damage becomes one GanzooError sentence."""
    path = Path(path)
    if not path.is_file():
        raise GanzooError(f"No weights file at {path}.")
    if path.suffix in (".pt", ".pth", ".pkl", ".ckpt", ".bin"):
        raise GanzooError(f"{path} looks like a pickle file; ganzoo loads weights only from .safetensors files.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise GanzooError(f"{path} is not a readable safetensors file (truncated or corrupted?): {exc}") from None
    if metadata.get("ganzoo.format") != FORMAT_VERSION or "ganzoo.config" not in metadata:
        raise GanzooError(f"{path} is a safetensors file but not a ganzoo weights file (no ganzoo config inside).")
    return tensors, metadata


def config_of(metadata: dict[str, str]) -> RunConfig:
    try:
        return RunConfig.from_json(metadata["ganzoo.config"])
    except TypeError as exc:
        raise GanzooError(f"The embedded config is malformed: {exc}") from None


def load_state(module: nn.Module, tensors: dict[str, torch.Tensor], prefix: str, what: str) -> None:
    """Load `prefix`-named tensors into module, with a sentence when shapes or names disagree."""
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise GanzooError(f"The {what} weights do not fit the model the config describes "
                          f"(missing: {missing[:3]}, unexpected: {unexpected[:3]}).")
    for k, v in state.items():
        if v.shape != expected[k].shape or v.dtype != expected[k].dtype:
            raise GanzooError(f"The {what} tensor {k!r} has shape {tuple(v.shape)} ({v.dtype}), the model "
                              f"expects {tuple(expected[k].shape)} ({expected[k].dtype}).")
    module.load_state_dict(state)


def save_generator(path: str | Path, generator: nn.Module, config: RunConfig) -> Path:
    return save_tensors(path, {f"G.{k}": v for k, v in generator.state_dict().items()}, "generator", config)


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, RunConfig]:
    """Rebuild the generator a weights file (generator file or checkpoint) describes, in eval mode."""
    from .models import build_generator  # late: models imports the plugin registries

    tensors, metadata = read_tensors(path)
    config = config_of(metadata)
    generator = build_generator(config)
    load_state(generator, tensors, "G.", "generator")
    return generator.to(device).eval(), config


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
