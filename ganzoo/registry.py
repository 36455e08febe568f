"""Registries: plain name -> entry maps behind a small class (the timm pattern).

Every registry is filled by the plugin hooks in `ganzoo.hookspecs`; nothing here
knows about any particular model, loss or dataset.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .errors import GanzooError


@dataclass(frozen=True)
class Entry:
    """One registered thing: what it is called, how to build it, who registered it."""

    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str
    info: dict[str, Any] = field(default_factory=dict)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


class Registry:
    """A name -> Entry map for one kind of thing ("generator", "loss", ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, factory: Callable[..., Any], description: str | None = None,
                 *, plugin: str = "?", **info: Any) -> None:
        if not isinstance(name, str) or not name or name != name.strip():
            raise GanzooError(f"Plugin {plugin!r} tried to register a {self.kind} with an invalid name {name!r}.")
        if name in self._entries:
            other = self._entries[name].plugin
            raise GanzooError(
                f"The {self.kind} name {name!r} is registered twice: by plugin {other!r} and by plugin "
                f"{plugin!r}; uninstall one of them or ask its author to rename it."
            )
        description = description or _first_line(getattr(factory, "__doc__", None))
        self._entries[name] = Entry(name, factory, description, plugin, dict(info))

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise GanzooError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        known = sorted(self._entries)
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"Unknown {self.kind} {name!r}.{hint} Known: {', '.join(known) or 'none'}."

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def plural(self) -> str:
        return self.kind + ("es" if self.kind.endswith("s") else "s")

    def names(self) -> list[str]:
        return sorted(self._entries)
