"""Building networks by registry name from a RunConfig (the one way a generator or discriminator is made),
and drawing latent vectors from the config's prior.

`construct` calls a registered factory and checks what comes back; `build_network` gives it the
config's arguments. The trainer, weights files (ganzoo.checkpoint.load_networks), preflight's
meta-device sizing and the conformance kit all build through these two.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from einops import rearrange
from torch import nn

from .config import RunConfig
from .contracts import check_factory, check_methods, check_option_names, check_option_values, contract
from .settings import closest
from .errors import GanzooError
from .plugins import Registries, registries

NETWORKS = ("generator", "discriminator")
# The components a run is made of: role (a RunConfig field naming it, a key of config.options) -> registry kind.
ROLES = {"generator": "generator", "discriminator": "discriminator", "loss": "loss"}


def network_arguments(kind: str, config: RunConfig, regs: Registries | None = None,
                      conditional: bool | None = None) -> dict[str, Any]:
    """The keyword arguments a factory of this kind is called with (see ganzoo.hookspecs); a conditional
    network's (registered with conditional=True; None: look its entry up in `regs`) get num_classes too."""
    if kind == "generator":
        arguments = dict(image_size=config.image_size, channels=config.channels, z_dim=config.z_dim,
                         width=config.g_width)
    else:
        # a packed D (PacGAN, --pack m) sees m samples stacked along channels
        arguments = dict(image_size=config.image_size, channels=config.channels * config.pack, width=config.d_width)
    if conditional is None:
        conditional = (regs or registries()).by_kind(kind).get(getattr(config, kind)).takes_classes
    if conditional:
        arguments["num_classes"] = config.num_classes
    return arguments


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
    """The config's generator or discriminator, freshly initialised, with the run's options for it."""
    regs = regs or registries()
    name = getattr(config, kind)
    factory = regs.by_kind(kind).get(name).factory
    what = f"{kind} {name!r}"
    network = construct(what, factory, **network_arguments(kind, config, regs), **config.options.get(kind, {}))
    check_methods(kind, what, network, regs.by_kind(kind).get(name).conditional)
    if kind == "discriminator" and config.spectral_norm:
        spectral_norm(network)
    if kind == "discriminator" and config.pack > 1:
        network = Packed(network, config.pack)
    return network


def spectral_norm(network: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every convolution and linear layer: a network transform
    a recipe may apply to D (--spectral-norm). Its power-iteration vectors are buffers: checkpoints keep them."""
    for module in list(network.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and not nn.utils.parametrize.is_parametrized(module):
            nn.utils.parametrizations.spectral_norm(module)
    return network


def pack_samples(x: torch.Tensor, m: int) -> torch.Tensor:
    """m consecutive samples stacked along channels, as one: [B, C, H, W] -> [B/m, m*C, H, W]."""
    if x.shape[0] % m:
        raise GanzooError(f"A packed discriminator judges samples {m} at a time; it was given {x.shape[0]}, "
                          f"not a multiple of {m}.")
    return rearrange(x, "(b m) c h w -> b (m c) h w", m=m)


class Packed(nn.Module):
    """PacGAN (Lin et al. 2018, arXiv:1712.04086): D judges m samples at once, all real or all generated,
    stacked along channels, so a generator that repeats itself is caught by the lack of variety within a
    pack. A network transform of any discriminator (--pack m), built for m*C input channels; one score
    per pack, which the losses (targets shaped like D's output) and D's statistics take as they are."""

    def __init__(self, inner: nn.Module, pack: int):
        super().__init__()
        self.inner, self.pack = inner, pack

    def forward(self, x):                                   # [B, C, H, W] -> [B/m] scores, one per pack
        return self.inner(pack_samples(x, self.pack))       # inner sees [B/m, m*C, H, W]


def check_components(config: RunConfig, regs: Registries | None = None) -> None:
    """Before any data loads: the config's components exist, its options are theirs, and every factory fits
    its contract (so a broken one is named here, not as a TypeError in the first training step)."""
    regs = regs or registries()
    named = recipe_piece_roles(config)
    unknown = sorted(set(config.options) - set(ROLES) - set(named))
    if unknown:
        role = unknown[0]
        kind, _, name = role.partition(".")
        if kind in ("regularizer", "augment") and name:
            flag, used = ("--regularizers", named_in(config, "regularizer")) if kind == "regularizer" \
                else ("--augment", named_in(config, "augment"))
            raise GanzooError(f"The run's options name {role!r}, and the run has no {kind} {name!r} (its {flag}: "
                              f"{', '.join(used) or 'none'}).{closest(name, used)}")
        raise GanzooError(f"The run's options name {role!r}, which is no component of a run."
                          f"{closest(role, (*ROLES, *named))} (Components: {', '.join(ROLES)}, and "
                          f"regularizer.NAME or augment.NAME for the run's regularisers and augmentations.)")
    for role, (kind, name) in named.items():
        entry = regs.by_kind(kind).get(name)
        check_option_names(kind, f"The {kind} {name!r}", entry.factory, config.options.get(role, {}))
        check_factory(kind, f"The {kind} {name!r} (plugin {entry.plugin!r})", entry.factory, config.options.get(role, {}))
    for role, kind in ROLES.items():
        name = getattr(config, role)
        entry = regs.by_kind(kind).get(name)
        what = f"The {kind} {name!r}"
        options = config.options.get(role, {})
        check_option_names(kind, what, entry.factory, options)
        check_option_values(kind, what, entry.factory, options)
        check_factory(kind, f"{what} (plugin {entry.plugin!r})", entry.factory, options, entry.takes_classes)
    generator, discriminator = regs.generators.get(config.generator), regs.discriminators.get(config.discriminator)
    if discriminator.class_head and not generator.conditional:
        raise GanzooError(f"The discriminator {discriminator.name!r} classifies images into classes (class_head) and "
                          f"the generator {generator.name!r} draws no class; pair it with a conditional generator.")
    if config.pack > 1 and discriminator.class_head:
        raise GanzooError(f"--pack {config.pack} packs samples of different classes, and the discriminator "
                          f"{config.discriminator!r} classifies each image; use --pack 1.")
    if generator.conditional != (discriminator.conditional or discriminator.class_head):
        conditional, plain = (generator, discriminator) if generator.conditional else (discriminator, generator)
        raise GanzooError(f"The {conditional.name!r} {'generator' if conditional is generator else 'discriminator'} "
                          f"is conditioned on class labels and the {plain.name!r} "
                          f"{'generator' if plain is generator else 'discriminator'} is not; pair conditional "
                          f"networks with conditional ones.")
    if config.num_classes and not generator.conditional:
        raise GanzooError(f"--num-classes is for conditional models; the generator {config.generator!r} takes no "
                          f"class labels.")
    if config.pack > 1 and discriminator.conditional:
        # a pack mixes m samples, generally of m classes, so one label per pack would be a lie
        raise GanzooError(f"--pack {config.pack} packs samples of different classes, and the conditional "
                          f"discriminator {config.discriminator!r} judges one class per image; use --pack 1.")
    build_loss(config, regs)                                # cheap: its methods are checked too


def named_in(config: RunConfig, kind: str) -> list[str]:
    """The regularisers (kind "regularizer") or augmentations ("augment") a run names, in order."""
    from .settings import parse_regularizers
    if kind == "regularizer":
        return [name for name, _, _ in parse_regularizers(config.regularizers)]
    return [n.strip() for n in config.augment.split(",") if n.strip()]


def recipe_piece_roles(config: RunConfig) -> dict[str, tuple[str, str]]:
    """The option roles of the run's regularisers and augmentations: {"regularizer.gp": ("regularizer", "gp"),
    "augment.cutout": ("augmentation", "cutout")} (--options regularizer.gp.center=0)."""
    return {**{f"regularizer.{n}": ("regularizer", n) for n in named_in(config, "regularizer")},
            **{f"augment.{n}": ("augmentation", n) for n in named_in(config, "augment")}}


def build_component(kind: str, name: str, /, **arguments: Any) -> Any:
    """A registered component built by name: what a plugin's factory calls to reuse another plugin's.

    ``arguments`` are the factory's (for a discriminator: image_size, channels, width) and any of its
    options; its registration options apply unless overridden. Call it from a factory, which ganzoo runs
    after every plugin has loaded, never from a register_* hook itself (that raises a GanzooError).
    """
    regs = registries()
    entry = regs.by_kind(kind).get(name)            # an unknown kind: a sentence with the closest
    what = f"The {kind} {name!r}"
    spec = contract(kind)
    options = {k: v for k, v in arguments.items() if k not in (*spec.arguments, *spec.conditional)}
    conditional = bool(entry.info.get("conditional"))
    check_option_names(kind, what, entry.factory, options)
    check_factory(kind, what, entry.factory, options, conditional or entry.class_head)
    component = entry.factory(**arguments)
    check_methods(kind, what, component, conditional)
    return component


def build_generator(config: RunConfig, regs: Registries | None = None) -> nn.Module:
    return build_network("generator", config, regs)


def build_discriminator(config: RunConfig, regs: Registries | None = None) -> nn.Module:
    return build_network("discriminator", config, regs)


class SkipInitOnMeta(torch.overrides.TorchFunctionMode):
    """Initialising a meta tensor (nn.init.normal_, Tensor.uniform_, ...) writes nothing, so it is skipped: on the
    meta device torch would route it through its reference kernels and import its compiler (a second and more
    of every command's start) to do nothing."""

    INITS = {"normal_", "uniform_", "fill_", "zero_", "constant_", "ones_", "zeros_", "xavier_uniform_",
             "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "orthogonal_"}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")
        if getattr(func, "__name__", "") in self.INITS and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)


def build_on_meta(config: RunConfig, kinds: tuple[str, ...] = NETWORKS,
                  regs: Registries | None = None) -> list[nn.Module] | None:
    """The networks built on the meta device: their shapes and sizes, using no memory.

    A config asking for absurd sizes fails here with a sentence instead of in the allocator; None
    means a plugin's network cannot be built on "meta" (the real build then checks for itself).
    """
    regs = regs or registries()                         # loaded outside the meta context
    try:
        with torch.device("meta"), SkipInitOnMeta():
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
    """The config's loss, with the run's options for it."""
    regs = regs or registries()
    what = f"loss {config.loss!r}"
    try:
        loss = regs.losses.get(config.loss).factory(**config.options.get("loss", {}))
    except TypeError as exc:
        raise GanzooError(f"Could not build the {what} with options {config.options.get('loss', {})}: {exc}") from None
    check_methods("loss", what, loss)
    return loss


def sample_latent(n: int, config: RunConfig, device: torch.device | str = "cpu",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ N(0, I) or U(-1, 1) (the paper's prior), shape [n, z_dim]."""
    if config.latent == "uniform":
        return torch.rand(n, config.z_dim, device=device, generator=generator).mul_(2).sub_(1)
    return torch.randn(n, config.z_dim, device=device, generator=generator)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
