"""Registries: plain name -> entry maps behind a small class (the timm pattern).

Every registry is filled by the plugin hooks in `ganzoo.hookspecs`; nothing here
knows about any particular model, loss or dataset.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .cards import check_card
from .contracts import split_keywords
from .errors import GanzooError
from .settings import closest


@dataclass(frozen=True)
class PowersOfTwo:
    """The image sizes 2**k from `minimum` (to `maximum`, if given): what stride-2 convolution stacks support.

    Pass it as ``image_sizes=`` when registering a network: ``size in PowersOfTwo(8)``
    is true for 8, 16, 32, 64, ...
    """

    minimum: int = 8
    maximum: int | None = None

    def __contains__(self, size: object) -> bool:
        return (isinstance(size, int) and size >= self.minimum and size & (size - 1) == 0
                and (self.maximum is None or size <= self.maximum))

    def __str__(self) -> str:
        sizes = [2 ** k for k in range(self.minimum.bit_length() - 1, 40) if 2 ** k in self]
        shown = ", ".join(map(str, sizes[:4])) + (", ..." if len(sizes) > 5 else "".join(f", {s}" for s in sizes[4:]))
        upper = f" and at most {self.maximum}" if self.maximum else ""
        return f"a power of two, at least {self.minimum}{upper} ({shown})"


def describe_sizes(sizes: Any) -> str:
    """A declared `image_sizes` in words, for error messages and listings."""
    if sizes is None:
        return "any size"
    if isinstance(sizes, range) and sizes.step == 1:
        return f"from {sizes.start} to {sizes.stop - 1}"
    if isinstance(sizes, range):
        return f"from {sizes.start} to {sizes.stop - 1} in steps of {sizes.step}"
    if isinstance(sizes, (tuple, list, set, frozenset)):
        return "one of " + ", ".join(map(str, sorted(sizes)))
    return str(sizes)


def _check_sizes(sizes: Any, what: str) -> None:
    if isinstance(sizes, (str, bytes)) or not hasattr(type(sizes), "__contains__"):
        raise GanzooError(f"{what} declares image_sizes={sizes!r}; give a tuple of ints, a range or "
                          f"ganzoo.PowersOfTwo(...), anything that answers `size in image_sizes`.")
    if isinstance(sizes, (tuple, list, set, frozenset, range)) and (
            not sizes or not all(isinstance(s, int) and s > 0 for s in sizes)):
        raise GanzooError(f"{what} declares image_sizes={sizes!r}; it must hold at least one positive int.")


def _check_channels(counts: Any, what: str) -> None:
    if not isinstance(counts, (tuple, list, set, frozenset)) or not counts or not all(c in (1, 3) for c in counts):
        raise GanzooError(f"{what} declares channel_counts={counts!r}; give the counts it supports, a tuple from "
                          f"1 (grey) and 3 (colour), e.g. channel_counts=(1,).")


@dataclass(frozen=True)
class Entry:
    """One registered thing: what it is called, how to build it, who registered it.

    `factory` builds it with the options given at registration already applied (a later keyword
    overrides one); `original` is the factory as registered, `options` those registration options,
    `info` the declarations (``image_sizes=``, ...).
    """

    name: str
    factory: Callable[..., Any]
    description: str
    plugin: str
    info: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    original: Any = None

    @property
    def channel_counts(self) -> Any:
        """The channel counts a network declared with ``register(..., channel_counts=...)``; None means 1 and 3."""
        return self.info.get("channel_counts")

    def supports_channels(self, channels: int) -> bool:
        return self.channel_counts is None or channels in self.channel_counts

    @property
    def image_sizes(self) -> Any:
        """What the network declared with ``register(..., image_sizes=...)``; None means any size."""
        return self.info.get("image_sizes")

    def supports_image_size(self, size: int) -> bool:
        return self.image_sizes is None or size in self.image_sizes

    @property
    def card(self) -> dict[str, Any]:
        """A pretrained generator's model card (see ganzoo.cards); empty for other kinds."""
        return self.info.get("card") or {}

    @property
    def conditional(self) -> bool:
        """A network declared with ``register(..., conditional=True)``: its factory takes num_classes and its
        forward the class labels beside z or x (G(z, y), D(x, y))."""
        return bool(self.info.get("conditional", False))

    @property
    def class_head(self) -> bool:
        """A discriminator declared with ``register(..., class_head=True)``: its factory takes num_classes and its
        forward(x) returns (logits [B], {"class_logits": [B, num_classes]}), an auxiliary classifier (ACGAN)."""
        return bool(self.info.get("class_head", False))

    @property
    def takes_classes(self) -> bool:
        """Whether the factory is given num_classes: a conditional network, or a D with a class head."""
        return self.conditional or self.class_head


def _first_line(text: str | None) -> str:
    """A docstring's first paragraph as one line (a sentence wrapped over two lines stays whole)."""
    paragraph = (text or "").strip().split("\n\n")[0]
    return " ".join(paragraph.split())


class Registry:
    """A name -> Entry map for one kind of thing ("generator", "loss", ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, factory: Callable[..., Any], description: str | None = None,
                 *, plugin: str = "?", **keywords: Any) -> Entry:
        """Add an entry. `keywords` are the kind's declarations (see ganzoo.contracts) and options of the
        factory; any other keyword is refused with a sentence naming the closest accepted one."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise GanzooError(f"Plugin {plugin!r} tried to register a {self.kind} with an invalid name {name!r}.")
        self._check_free(name, plugin)
        what = f"Plugin {plugin!r}'s {self.kind} {name!r}"
        info, options = split_keywords(self.kind, what, factory, keywords)
        if "image_sizes" in info:
            _check_sizes(info["image_sizes"], what)
        if "channel_counts" in info:
            _check_channels(info["channel_counts"], what)
        if self.kind == "pretrained generator":
            info["card"] = check_card(info.get("card"), what, factory)
            description = description or info["card"]["description"]
        description = description or _first_line(getattr(factory, "__doc__", None) if callable(factory) else None)
        built = functools.partial(factory, **options) if options else factory
        entry = Entry(name, built, description, plugin, dict(info), dict(options), factory)
        self._entries[name] = entry
        return entry

    def add(self, entry: Entry) -> None:
        """An entry checked elsewhere (a staging registry), under the same rule of one name, one plugin."""
        self._check_free(entry.name, entry.plugin)
        self._entries[entry.name] = entry

    def _check_free(self, name: str, plugin: str) -> None:
        if name in self._entries:
            other = self._entries[name].plugin
            raise GanzooError(
                f"The {self.kind} name {name!r} is registered twice: by plugin {other!r} and by plugin "
                f"{plugin!r}; uninstall one of them or ask its author to rename it."
            )

    @contextlib.contextmanager
    def temporary(self, *entries: Entry) -> Iterator["Registry"]:
        """These entries registered inside the block only (a name taken already is shadowed for the block):
        how tests add a component for one test without reaching into the registry."""
        saved = {entry.name: self._entries.get(entry.name) for entry in entries}
        for entry in entries:
            self._entries[entry.name] = entry
        try:
            yield self
        finally:
            for name, entry in saved.items():
                if entry is None:
                    self._entries.pop(name, None)
                else:
                    self._entries[name] = entry

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise GanzooError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        known = sorted(self._entries)
        return f"Unknown {self.kind} {name!r}.{closest(name, known)} Known: {', '.join(known) or 'none'}."

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
