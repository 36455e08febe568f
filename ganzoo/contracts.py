"""What ganzoo calls a plugin's factories and components with: the contracts, and their checks.

The table of plugin kinds (ganzoo.kinds) says for every kind which keywords `register()` takes as
declarations (``image_sizes=``, ...), which arguments ganzoo passes the factory, and how people read the
contract (`CONTRACTS`, by kind).
Every other keyword of `register()` is an **option**: a keyword parameter of the factory that the
registration sets (``register("ls-m101", LeastSquaresLoss, a=-1.0)``) and a ModelSpec or the run's
``options`` may override. A keyword that is neither is refused with a sentence and the closest name.

`check_factory` binds a factory's signature to what ganzoo will pass it, and `check_methods` a built
component's methods, so a component that does not fit is named, with its contract, before any data
loads (not as a TypeError deep inside a training step).
"""

from __future__ import annotations

import inspect
import json
import math
from typing import Any, Callable

from .errors import GanzooError
from .kinds import KINDS, Contract
from .settings import closest


CONTRACTS: dict[str, Contract] = {kind.name: kind.contract for kind in KINDS}


def contract(kind: str) -> Contract:
    """The kind's contract; a kind without one takes any keyword as a declaration and is not checked."""
    return CONTRACTS.get(kind) or Contract("factory(...)", callable=False)


def _signature(factory: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):          # some builtins have none: nothing to check
        return None


def option_names(kind: str, factory: Any) -> tuple[str, ...] | None:
    """The options a factory declares: its named parameters beyond the contract's. None: any (it takes **kwargs)."""
    spec = contract(kind)
    if not spec.callable:
        return ()
    signature = _signature(factory)
    if signature is None:
        return None
    params = list(signature.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:spec.positional]
    return tuple(p.name for p in params if p not in positional and p.name not in (*spec.arguments, *spec.conditional)
                 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def describe_options(kind: str, factory: Any) -> str:
    """The options a factory takes with their defaults (registration options applied), e.g. 'a=-1.0, b=1.0'."""
    names = option_names(kind, factory)
    if names is None:
        return "any (**kwargs)"
    signature = _signature(factory)
    shown = []
    for name in names:
        default = signature.parameters[name].default
        shown.append(name if default is inspect.Parameter.empty else f"{name}={default!r}")
    return ", ".join(shown)


def split_keywords(kind: str, what: str, factory: Any, keywords: dict[str, Any]) -> tuple[dict, dict]:
    """register()'s extra keywords as (declarations, options); an unknown one is refused with a sentence."""
    spec = contract(kind)
    if kind not in CONTRACTS:
        return dict(keywords), {}
    declared = {k: v for k, v in keywords.items() if k in spec.declarations}
    options = {k: v for k, v in keywords.items() if k not in spec.declarations}
    if options:
        check_option_names(kind, what, factory, options, hint_also=spec.declarations)
    return declared, options


def check_option_names(kind: str, what: str, factory: Any, options: dict[str, Any],
                       hint_also: tuple[str, ...] = ()) -> None:
    """Every name in `options` is an option the factory declares; else a sentence with the closest name.

    `hint_also`: the kind's declarations, when the names were given to register() (where both are accepted).
    """
    spec = contract(kind)
    known = option_names(kind, factory)
    if known is None:
        return
    for name in options:
        if name in known:
            continue
        accepted = [*hint_also, *known]
        if name in spec.arguments:
            raise GanzooError(f"{what} is given {name!r}, which ganzoo passes its factory itself ({spec.text}); it "
                              f"cannot be set as an option.{closest(name, accepted)}")
        if hint_also:
            raise GanzooError(f"{what} is registered with {name!r}, which is neither a declaration of a {kind} "
                              f"({', '.join(hint_also)}) nor an option of its factory ({', '.join(known) or 'none'})."
                              f"{closest(name, accepted)}")
        raise GanzooError(f"{what} has no option {name!r}.{closest(name, (*known, *spec.arguments))} (Its options: "
                          f"{', '.join(known) or 'none'}.)")


# The option types a value from the command line, a config file or a weights file (JSON) can be checked
# against, by the name an annotation (or a default's type) gives them, and how a sentence names them.
OPTION_TYPES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "float": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
              and math.isfinite(v)),
    "int": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "str": ("text", lambda v: isinstance(v, str)),
    "list": ("a list", lambda v: isinstance(v, list)),
    "tuple": ("a list", lambda v: isinstance(v, list)),
    "None": ("null", lambda v: v is None),
}


def _type_names(annotation: Any) -> list[str] | None:
    """'float | None' (or float, Optional[float]) -> ['float', 'None']; None where it is anything else."""
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "").replace(" ", "")
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional["):-1] + "|None"
    names = ["None" if n in ("None", "NoneType") else n.split("[")[0] for n in text.split("|")]
    return names if all(n in OPTION_TYPES for n in names) else None


def check_option_values(kind: str, what: str, factory: Any, options: dict[str, Any]) -> None:
    """Each option's value is of the type the factory's annotation declares (or, unannotated, its default's):
    `loss.real_label=abc` is refused here, with a sentence, not at the first training step."""
    signature = _signature(factory) if contract(kind).callable else None
    if signature is None:
        return
    for name, value in options.items():
        param = signature.parameters.get(name)
        if param is None or param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            continue
        names = _type_names(param.annotation)
        if names is None and param.default is not inspect.Parameter.empty and param.default is not None:
            names = _type_names(type(param.default))            # an int default may be meant as a number
            names = ["float" if n == "int" else n for n in names] if names else None
        if names is None or any(OPTION_TYPES[n][1](value) for n in names):
            continue
        wanted = " or ".join(dict.fromkeys(OPTION_TYPES[n][0] for n in names))
        raise GanzooError(f"{what} takes {wanted} for its option {name!r}, got {json.dumps(value)[:60]}.")


def check_factory(kind: str, what: str, factory: Any, options: dict[str, Any] | None = None,
                  conditional: bool = False) -> None:
    """The factory accepts what ganzoo passes it (the contract's arguments, num_classes for a conditional network,
    and these options), and needs no more."""
    spec = contract(kind)
    if not spec.callable:
        return
    if not callable(factory):
        raise GanzooError(f"{what} registered a {type(factory).__name__}, which cannot be called; the {kind} "
                          f"contract is {spec.text}.")
    signature = _signature(factory)
    if signature is None:
        return
    arguments = {name: None for name in (*spec.arguments, *(spec.conditional if conditional else ()))}
    arguments |= dict(options or {})
    try:
        signature.bind(*([None] * spec.positional), **arguments)
    except TypeError as exc:
        text = f"{spec.text}, given {', '.join(spec.conditional)} when conditional" if conditional else spec.text
        raise GanzooError(f"{what} breaks the {kind} contract, {text}: its factory's signature is "
                          f"{signature} ({exc}).") from None


def check_methods(kind: str, what: str, component: Any, conditional: bool = False) -> None:
    """A built component has the methods its contract calls, taking the arguments ganzoo passes (a conditional
    network's forward takes the class labels too)."""
    spec = contract(kind)
    for method, counts, text in spec.conditional_methods if conditional else spec.methods:
        function = getattr(component, method, None)
        if not callable(function):
            raise GanzooError(f"{what} breaks the {kind} contract: its {type(component).__name__} has no "
                              f"{method}() method; it needs {text}.")
        signature = _signature(function)
        if signature is None:
            continue
        problems = []
        for count in counts:
            try:
                signature.bind(*([None] * count))
                break
            except TypeError as exc:
                problems.append(str(exc))
        else:
            raise GanzooError(f"{what} breaks the {kind} contract: {text}, but its {method} is {method}{signature} "
                              f"({problems[0]}).")
