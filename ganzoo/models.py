"""Building networks by registry name from a RunConfig (the one way a generator or discriminator is made),
and drawing latent vectors from the config's prior.

`construct` calls a registered factory and checks what comes back; `build_network` gives it the
config's arguments. The trainer, weights files (ganzoo.checkpoint.load_networks), preflight's
meta-device sizing and the conformance kit all build through these two.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .config import RunConfig
from .errors import GanzooError
from .plugins import Registries, registries

NETWORKS = ("generator", "discriminator")
PREFIX = {"generator": "G.", "discriminator": "D."}      # their tensors' names in weights files


def network_arguments(kind: str, config: RunConfig) -> dict[str, Any]:
    """The keyword arguments a factory of this kind is called with (see ganzoo.hookspecs)."""
    if kind == "generator":
        return dict(image_size=config.image_size, channels=config.channels, z_dim=config.z_dim, width=config.g_width)
    return dict(image_size=config.image_size, channels=config.channels, width=config.d_width)


def construct(what: str, factory: Callable[..., Any], **kwargs: Any) -> nn.Module:
    """factory(**kwargs), which must give an nn.Module; a factory that rejects its arguments gets a sentence."""
    try:
        module = factory(**kwargs)
    except GanzooError:
        raise
    except (TypeError, ValueError) as exc:
        raise GanzooError(f"Could not build the {what} with {kwargs}: {exc}") from None
    if not isinstance(module, nn.Module):
        raise GanzooError(f"The {what} factory returned {type(module).__name__}, not a torch.nn.Module.")
    return module


def build_network(kind: str, config: RunConfig, regs: Registries | None = None) -> nn.Module:
    """The config's generator or discriminator, freshly initialised."""
    regs = regs or registries()
    name = getattr(config, kind)
    factory = regs.by_kind(kind).get(name).factory
    network = construct(f"{kind} {name!r}", factory, **network_arguments(kind, config))
    if kind == "discriminator" and config.spectral_norm:
        spectral_norm(network)
    return network


def spectral_norm(network: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every convolution and linear layer: a network transform
    a recipe may apply to D (--spectral-norm). Its power-iteration vectors are buffers: checkpoints keep them."""
    for module in list(network.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and not nn.utils.parametrize.is_parametrized(module):
            nn.utils.parametrizations.spectral_norm(module)
    return network


def build_generator(config: RunConfig, regs: Registries | None = None) -> nn.Module:
    return build_network("generator", config, regs)


def build_discriminator(config: RunConfig, regs: Registries | None = None) -> nn.Module:
    return build_network("discriminator", config, regs)


def build_on_meta(config: RunConfig, kinds: tuple[str, ...] = NETWORKS,
                  regs: Registries | None = None) -> list[nn.Module] | None:
    """The networks built on the meta device: their shapes and sizes, using no memory.

    A config asking for absurd sizes fails here with a sentence instead of in the allocator; None
    means a plugin's network cannot be built on "meta" (the real build then checks for itself).
    """
    regs = regs or registries()                         # loaded outside the meta context
    try:
        with torch.device("meta"):
            return [build_network(kind, config, regs) for kind in kinds]
    except GanzooError:
        raise
    except Exception as exc:
        if "overflow" in str(exc).lower():
            raise GanzooError(f"The networks the config describes are too large to build (z_dim {config.z_dim}, "
                              f"widths {config.g_width}/{config.d_width}, image size {config.image_size}); lower "
                              f"--g-width, --d-width, --z-dim or --image-size.") from None
        return None


def build_loss(config: RunConfig, regs: Registries | None = None):
    """The config's loss, with its component options (config.options["loss"]) where the config has them."""
    regs = regs or registries()
    options = (getattr(config, "options", None) or {}).get("loss", {})
    return regs.losses.get(config.loss).factory(**options)


def sample_latent(n: int, config: RunConfig, device: torch.device | str = "cpu",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I) or U(-1, 1) (the paper's prior), shape [n, z_dim]."""
    if config.latent == "uniform":
        return torch.rand(n, config.z_dim, device=device, generator=generator).mul_(2).sub_(1)
    return torch.randn(n, config.z_dim, device=device, generator=generator)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
