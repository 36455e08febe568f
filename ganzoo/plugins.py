"""The plugin manager: built-in plugins, third-party entry points, and the registries they fill.

Loading is forgiving by default: a third-party plugin that fails to import, or
whose hook raises, is recorded (and shown by `ganzoo plugins`) while every
command keeps working. Set GANZOO_STRICT_PLUGINS=1 to make any failure fatal.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import traceback
from dataclasses import dataclass, field
from functools import cache

import pluggy
import torch

from . import DISTRIBUTION, hookspecs
from .errors import GanzooError
from .registry import Registry

ENTRY_POINT_GROUP = "ganzoo"
STRICT_ENV = "GANZOO_STRICT_PLUGINS"

BUILTIN_PLUGINS = (
    "ganzoo_plugins.dcgan",
    "ganzoo_plugins.cdcgan",
    "ganzoo_plugins.basicgan",
    "ganzoo_plugins.losses",
    "ganzoo_plugins.datasets",
    "ganzoo_plugins.cifar",
    "ganzoo_plugins.svhn",
    "ganzoo_plugins.stl10",
    "ganzoo_plugins.celeba",
    "ganzoo_plugins.lsun",
    "ganzoo_plugins.mnist_metrics",
    "ganzoo_plugins.stacked_mnist",
    "ganzoo_plugins.inception",
    "ganzoo_plugins.manifold",
    "ganzoo_plugins.labellers",
    "ganzoo_plugins.lsgan",
    "ganzoo_plugins.wgangp",
    "ganzoo_plugins.r1",
    "ganzoo_plugins.ttur_ema",
    "ganzoo_plugins.diffaugment",
    "ganzoo_plugins.pacgan",
)

# hook name -> registry kind; one registry per hook.
HOOKS = {
    "register_generators": "generator",
    "register_discriminators": "discriminator",
    "register_losses": "loss",
    "register_datasets": "dataset",
    "register_models": "model",
    "register_metrics": "metric",
    "register_labellers": "labeller",
    "register_regularizers": "regularizer",
    "register_augmentations": "augmentation",
}


@dataclass
class PluginInfo:
    """What `ganzoo plugins` shows for one plugin."""

    name: str
    version: str
    source: str                      # "built-in" or the distribution that ships it
    registered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names
    error: str | None = None

    @property
    def distribution(self) -> str | None:
        """The package to `pip install` for this plugin: ganzoo's own for a built-in, None if unknown."""
        if self.source == "built-in":
            return DISTRIBUTION
        return None if self.source == "registered at run time" or ":" in self.source else self.source


@dataclass
class Registries:
    generators: Registry
    discriminators: Registry
    losses: Registry
    datasets: Registry
    models: Registry
    plugins: list[PluginInfo]
    metrics: Registry = field(default_factory=lambda: Registry("metric"))
    labellers: Registry = field(default_factory=lambda: Registry("labeller"))
    regularizers: Registry = field(default_factory=lambda: Registry("regularizer"))
    augmentations: Registry = field(default_factory=lambda: Registry("augmentation"))

    def by_kind(self, kind: str) -> Registry:
        return {r.kind: r for r in self.all()}[kind]

    def all(self) -> list[Registry]:
        return [self.models, self.generators, self.discriminators, self.losses, self.datasets, self.metrics,
                self.labellers, self.regularizers, self.augmentations]

    @property
    def failed(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def provenance(self, kind: str, name: str) -> dict[str, str]:
        """Who made a registered component: {"name", "plugin", "distribution", "version"}, as weights files record it."""
        entry = self.by_kind(kind).get(name)
        info = next((p for p in self.plugins if p.name == entry.plugin), None)
        record = {"name": name, "plugin": entry.plugin}
        if info is not None and info.distribution:
            record.update(distribution=info.distribution, version=info.version)
        return record


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").lower() not in ("", "0", "false", "no")


def _short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _ganzoo_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def make_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("ganzoo")
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(pm: pluggy.PluginManager, *, entry_points: bool = True) -> list[PluginInfo]:
    """Register the built-in plugins, then every `ganzoo` entry point, each in its own try/except."""
    infos: list[PluginInfo] = []
    version = _ganzoo_version()
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
        infos.append(PluginInfo(module_name, version, "built-in"))
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist
            info = PluginInfo(ep.name, dist.version if dist else "?", dist.name if dist else ep.value)
            infos.append(info)
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken plugin must not break ganzoo
                if _strict():
                    raise GanzooError(f"Plugin {ep.name!r} failed to load: {_short_error(exc)}") from exc
                info.error = _short_error(exc)
                info.traceback = traceback.format_exc()  # type: ignore[attr-defined]
    while True:  # a misspelled hook name is an error, not silence
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:
            bad = pm.get_name(exc.plugin)
            if _strict() or bad in BUILTIN_PLUGINS:
                raise GanzooError(f"Plugin {bad!r} is invalid: {exc}") from exc
            unknown = [n for n in pm.hook.__dict__ if not n.startswith("_")
                       and not getattr(pm.hook, n).has_spec() and getattr(pm.hook, n).get_hookimpls()]
            hint = difflib.get_close_matches(unknown[0], list(HOOKS), n=1) if unknown else []
            message = f"unknown hook {unknown[0] if unknown else '?'!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            for info in infos:
                if info.name == bad:
                    info.error = message
            pm.unregister(name=bad)
    return infos


def collect(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> Registries:
    """Call every plugin's register_* hooks, remembering which plugin registered what."""
    regs = {hook: Registry(kind) for hook, kind in HOOKS.items()}
    by_name = {i.name: i for i in infos}
    for hook_name, registry in regs.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name
            info = by_name.setdefault(plugin, PluginInfo(plugin, "?", "registered at run time"))
            if info.error:
                continue

            staged: list[tuple] = []

            def register(name, factory, description=None, **extra):
                staged.append((name, factory, description, extra))

            try:
                impl.function(register=register)
                # All or nothing: a plugin whose hook fails leaves no half of its entries behind.
                scratch = Registry(registry.kind)
                for name, factory, description, extra in staged:
                    if name in registry:
                        registry.register(name, factory, plugin=plugin)  # raises, naming both plugins
                    scratch.register(name, factory, description, plugin=plugin, **extra)
            except Exception as exc:
                if _strict() or plugin in BUILTIN_PLUGINS:
                    raise
                info.error = str(exc) if isinstance(exc, GanzooError) else f"{hook_name} failed: {_short_error(exc)}"
                continue
            for entry in scratch:
                registry.add(entry)
                info.registered.setdefault(registry.kind, []).append(entry.name)
    return Registries(
        generators=regs["register_generators"],
        discriminators=regs["register_discriminators"],
        losses=regs["register_losses"],
        datasets=regs["register_datasets"],
        models=regs["register_models"],
        plugins=list(by_name.values()),
        metrics=regs["register_metrics"],
        labellers=regs["register_labellers"],
        regularizers=regs["register_regularizers"],
        augmentations=regs["register_augmentations"],
    )


REENTRY = ("ganzoo's registries were asked for while plugins are still loading, from inside a register_* hook, "
           "where they are not complete yet. Build another registered component inside your factory instead, which "
           "ganzoo calls after loading: register(\"mine\", lambda **kw: Wrapper(ganzoo.build_component("
           "\"discriminator\", \"dcgan\", **kw))); to reuse one in a model, name it in a ModelSpec.")

_loading = False


@cache
def _load_registries() -> Registries:
    global _loading
    pm = make_plugin_manager()
    _loading = True
    try:
        with torch.device("cpu"):
            return collect(pm, load_plugins(pm))
    finally:
        _loading = False


def registries() -> Registries:
    """The process-wide registries, built once on first use.

    First use may come inside a caller's device context (networks are built under
    ``torch.device("meta")`` to size them): plugins are imported and their hooks run on the CPU
    regardless, so a module-level tensor in any plugin is a real CPU tensor. Called from inside a
    hook, while they are being built, it raises a GanzooError (REENTRY) instead of loading again.
    """
    if _loading:
        raise GanzooError(REENTRY)
    return _load_registries()


registries.cache_clear = _load_registries.cache_clear  # type: ignore[attr-defined]
