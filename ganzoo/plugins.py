"""The plugin manager: built-in plugins, third-party entry points, and the registries they fill.

Loading is forgiving by default: a third-party plugin that fails to import, or
whose hook raises, is recorded (and shown by `ganzoo plugins`) while every
command keeps working. Set GANZOO_STRICT_PLUGINS=1 to make any failure fatal.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import traceback
from dataclasses import dataclass, field
from functools import cache
from typing import Iterator

import pluggy
import torch

from . import DISTRIBUTION, hookspecs
from .errors import GanzooError
from .kinds import BY_HOOK, BY_NAME, KINDS
from .registry import Entry, Registry
from .settings import closest

ENTRY_POINT_GROUP = "ganzoo"
STRICT_ENV = "GANZOO_STRICT_PLUGINS"

BUILTIN_PLUGINS = (
    "ganzoo_plugins.dcgan",
    "ganzoo_plugins.cdcgan",
    "ganzoo_plugins.acgan",
    "ganzoo_plugins.basicgan",
    "ganzoo_plugins.losses",
    "ganzoo_plugins.optimizers",
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
    "ganzoo_plugins.wgan",
    "ganzoo_plugins.r1",
    "ganzoo_plugins.ttur_ema",
    "ganzoo_plugins.diffaugment",
    "ganzoo_plugins.pacgan",
    "ganzoo_plugins.tensorboard",
    "ganzoo_plugins.pretrained",
)

# hook name -> registry kind; one registry per hook, one hook per row of the kinds table.
HOOKS = {kind.hook: kind.name for kind in KINDS}


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


class Registries:
    """One registry per plugin kind (ganzoo.kinds), as attributes named by the kind's plural
    (`regs.generators`, `regs.losses`, ...), and the plugins that filled them."""

    def __init__(self, plugins: list[PluginInfo] | None = None, **registries: Registry):
        self.plugins = plugins if plugins is not None else []
        for kind in KINDS:
            setattr(self, kind.plural, registries.get(kind.plural) or Registry(kind.name))

    def by_kind(self, kind: str) -> Registry:
        if kind not in BY_NAME:
            raise GanzooError(f"No registry holds {kind!r}s.{closest(kind, BY_NAME)} "
                              f"(Kinds: {', '.join(BY_NAME)}.)")
        return getattr(self, BY_NAME[kind].plural)

    def all(self) -> list[Registry]:
        return [getattr(self, kind.plural) for kind in KINDS]

    @contextlib.contextmanager
    def temporary(self, **entries: list[Entry]) -> Iterator["Registries"]:
        """Entries registered inside the block only, by registry: `temporary(losses=[entry], models=[...])`
        (what tests use to add a component for one test, without reaching into a registry)."""
        with contextlib.ExitStack() as stack:
            for plural, added in entries.items():
                stack.enter_context(getattr(self, plural).temporary(*added))
            yield self

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
            hint = closest(unknown[0], HOOKS) if unknown else ""
            message = f"unknown hook {unknown[0] if unknown else '?'!r}" + (f" ({hint.strip()})" if hint else "")
            for info in infos:
                if info.name == bad:
                    info.error = message
            pm.unregister(name=bad)
    return infos


def collect(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> Registries:
    """Call every plugin's register_* hooks, remembering which plugin registered what."""
    regs = {kind.hook: Registry(kind.name) for kind in KINDS}
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
    return Registries(list(by_name.values()), **{BY_HOOK[hook].plural: registry for hook, registry in regs.items()})


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
