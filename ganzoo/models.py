"""Building networks by registry name from a RunConfig, and drawing latent vectors."""

from __future__ import annotations

import torch
from torch import nn

from .config import RunConfig
from .errors import GanzooError
from .plugins import Registries, registries


def resolve_model(config: RunConfig, regs: Registries | None = None) -> RunConfig:
    """Fill generator/discriminator/loss from the model's ModelSpec where the config leaves them empty."""
    regs = regs or registries()
    spec = regs.models.get(config.model).factory
    config.generator = config.generator or spec.generator
    config.discriminator = config.discriminator or spec.discriminator
    config.loss = config.loss or spec.loss
    return config


def _build(kind: str, factory, **kwargs) -> nn.Module:
    try:
        module = factory(**kwargs)
    except GanzooError:
        raise
    except (TypeError, ValueError) as exc:
        raise GanzooError(f"Could not build the {kind} with {kwargs}: {exc}") from None
    if not isinstance(module, nn.Module):
        raise GanzooError(f"The {kind} factory returned {type(module).__name__}, not a torch.nn.Module.")
    return module


def build_generator(config: RunConfig, regs: Registries | None = None) -> nn.Module:
    regs = regs or registries()
    factory = regs.generators.get(config.generator).factory
    return _build(f"generator {config.generator!r}", factory, image_size=config.image_size,
                  channels=config.channels, z_dim=config.z_dim, width=config.g_width)


def build_discriminator(config: RunConfig, regs: Registries | None = None) -> nn.Module:
    regs = regs or registries()
    factory = regs.discriminators.get(config.discriminator).factory
    return _build(f"discriminator {config.discriminator!r}", factory, image_size=config.image_size,
                  channels=config.channels, width=config.d_width)


def build_on_meta(config: RunConfig, discriminator: bool = True) -> list[nn.Module] | None:
    """G (and D) built on the meta device: their shapes and sizes, using no memory.

    A config asking for absurd sizes fails here with a sentence instead of in the allocator; None
    means a plugin's network cannot be built on "meta" (the real build then checks for itself).
    """
    try:
        with torch.device("meta"):
            return [build_generator(config)] + ([build_discriminator(config)] if discriminator else [])
    except GanzooError:
        raise
    except Exception as exc:
        if "overflow" in str(exc).lower():
            raise GanzooError(f"The networks the config describes are too large to build (z_dim {config.z_dim}, "
                              f"widths {config.g_width}/{config.d_width}, image size {config.image_size}); lower "
                              f"--g-width, --d-width, --z-dim or --image-size.") from None
        return None


def build_loss(config: RunConfig, regs: Registries | None = None):
    regs = regs or registries()
    return regs.losses.get(config.loss).factory()


def sample_latent(n: int, config: RunConfig, device: torch.device | str = "cpu",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I) or U(-1, 1) (the paper's prior), shape [n, z_dim]."""
    if config.latent == "uniform":
        return torch.rand(n, config.z_dim, device=device, generator=generator).mul_(2).sub_(1)
    return torch.randn(n, config.z_dim, device=device, generator=generator)


# Sample number i of seed s is drawn from its own generator, seeded s * SEED_STRIDE + i, so a number
# names the same z in every command (sample, eval, sheet, the analyses) and for every sample count
# (torch's CPU randn is not prefix-stable: randn(64)[:16] differs from randn(16)).
SEED_STRIDE = 1_000_003


def latents(config: RunConfig, seed: int, indices) -> torch.Tensor:
    """z number i of `seed` for each i in indices: [len(indices), z_dim] on the CPU, from the config's prior."""
    indices = [int(i) for i in indices]
    if any(not 0 <= i < SEED_STRIDE for i in indices):
        raise GanzooError(f"Sample numbers run from 0 to {SEED_STRIDE - 1}, got {min(indices)}..{max(indices)}.")
    out = torch.empty(len(indices), config.z_dim)
    g = torch.Generator()
    for row, i in enumerate(indices):
        g.manual_seed(int(seed) * SEED_STRIDE + i)
        out[row] = sample_latent(1, config, generator=g)[0]
    return out


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
