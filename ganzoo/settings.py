"""The settings language: how a setting is declared once and everything about it derived.

A setting is a dataclass field declared with `setting(default, help, ...)`. That one declaration
generates everything else about it:

- its command-line flag (``--batch-size`` for ``batch_size``), parsed with `parse` (the field's type by
  default), added to a command by `add_flags`;
- the flag's help, ending in the real default: ``(default 128)``, or ``shown_default`` where the
  value alone says too little (``(default: the dataset's)``);
- its validation: the type, then each function in ``checks`` (`positive_int`, `one_of(...)`, ...),
  whose sentence names the flag;
- its line, with the help as a comment, in a settings file's template, and the key a settings file
  (YAML, TOML or JSON) sets it with (`read_settings_file`);
- tags a schema reads (``resumable=True``, ``comparable=True``).

`fields_of(cls)` reads the declarations off a dataclass; nothing else lists them. The schemas themselves
(RunConfig, and each command's settings) are in ganzoo.config.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import GanzooError

MAX_SEED = 2 ** 63 - 1

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """'90s', '5m', '1.5h' or plain seconds ('300') -> seconds."""
    text = str(text).strip().lower()
    unit = DURATION_UNITS.get(text[-1:], None)
    number = text[:-1] if unit else text
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise GanzooError(f"A duration looks like 90s, 5m or 1.5h; got {text!r}.") from None
    if not 0 < seconds:
        raise GanzooError(f"A duration must be positive, got {text!r}.")
    if seconds == float("inf"):
        raise GanzooError(f"A duration must be finite, got {text!r}.")
    return seconds


def parse_budget(text: str) -> float:
    """A run's --budget: a duration, or 'none' (0.0) to train without one (e.g. lifting it on resume)."""
    if str(text).strip().lower() == "none":
        return 0.0
    try:
        return parse_duration(text)
    except GanzooError as exc:
        raise GanzooError(f"{exc} (--budget none: no budget)") from None


SIZE_UNITS = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def parse_size(text: str) -> int:
    """'512M', '8G', '1.5GiB' or plain bytes ('1000000') -> bytes (binary units); '0' means automatic."""
    given = str(text).strip()
    spelled = given.lower().removesuffix("b").removesuffix("i")          # 8GiB, 8GB, 8G are one size
    unit = spelled[-1:] if spelled[-1:].isalpha() else ""
    try:
        size = float(spelled[:len(spelled) - len(unit)]) * SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise GanzooError(f"A size looks like 512M, 8G or 1.5G; got {given!r}.") from None
    if not 0 <= size < float("inf"):
        raise GanzooError(f"A size must be zero (automatic) or positive and finite, got {given!r}.")
    return int(size)


# -- checks: each returns the sentence saying what is wrong, or None ---------------------------------

Check = Callable[[Any, str], "str | None"]


def positive_int(value: Any, flag: str) -> str | None:
    if type(value) is not int or value <= 0:
        return f"{flag} must be a positive integer, got {value!r}."
    return None


def positive_number(value: Any, flag: str) -> str | None:
    if not (value > 0 and math.isfinite(value)):
        return f"{flag} must be a positive number, got {value!r}."
    return None


def zero_or_positive_int(value: Any, flag: str) -> str | None:
    if type(value) is not int or value < 0:
        return f"{flag} must be a whole number, 0 or more, got {value!r:.40}."
    return None


def at_most(limit: int, why: str = "") -> Check:
    def check(value, flag):
        if value > limit:
            return f"{flag} must be at most {limit}{why}, got {value}."
        return None
    return check


def at_least(limit: int) -> Check:
    def check(value, flag):
        if type(value) is not int or value < limit:
            return f"{flag} must be at least {limit}, got {value!r}."
        return None
    return check


def between(low: int, high: int) -> Check:
    def check(value, flag):
        if type(value) is not int or not low <= value <= high:
            return f"{flag} must lie between {low} and {high}, got {value!r}."
        return None
    return check


def one_of(*choices: str, quoted: bool = False) -> Check:
    shown = [repr(c) if quoted else c for c in choices]
    words = ", ".join(shown[:-1]) + " or " + shown[-1]

    def check(value, flag):
        if value not in choices:
            return f"{flag} must be {words}, got {value!r}."
        return None
    check.choices = choices  # type: ignore[attr-defined]
    return check


def adam_beta(value: Any, flag: str) -> str | None:
    if not 0 <= value < 1:
        return f"Adam betas must lie in [0, 1), got {flag} {value}."
    return None


def parse_betas(text: str) -> tuple[float, float] | None:
    """"B1,B2" as a pair of floats; "" (unset) as None."""
    if not text.strip():
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(text)
    return float(parts[0]), float(parts[1])


def beta_pair(value: Any, flag: str) -> str | None:
    try:
        betas = parse_betas(value)
    except ValueError:
        return f"{flag} takes two numbers B1,B2 (e.g. {flag} 0,0.9), got {value!r}."
    if betas is not None and not all(0 <= b < 1 for b in betas):
        return f"Adam betas must lie in [0, 1), got {flag} {value}."
    return None


def zero_or_positive(value: Any, flag: str) -> str | None:
    if not (value >= 0 and math.isfinite(value)):
        return f"{flag} must be 0 (unset) or a positive number, got {value!r}."
    return None


def ema_decay(value: Any, flag: str) -> str | None:
    if not 0 <= value < 1:
        return f"{flag} must lie in [0, 1) (0: no average; 0.999 is usual), got {value}."
    return None


def seed_range(value: Any, flag: str) -> str | None:
    if not 0 <= value < MAX_SEED:
        return f"{flag} must lie in [0, 2**63 - 1), got {value}."
    return None


def channel_count(value: Any, flag: str) -> str | None:
    return None if value in (0, 1, 3) else f"{flag} must be 1 or 3, got {value}."


MAX_THREADS = 4096


def thread_count(value: Any, flag: str) -> str | None:
    if type(value) is not int or not 0 <= value <= MAX_THREADS:
        return f"{flag} must be 0 (torch's default) or a positive integer up to {MAX_THREADS}, got {value!r}."
    return None


def epochs_between(value: Any, flag: str) -> str | None:
    if type(value) is not int or value < 0:
        return f"{flag} must be 0 (off) or a positive number of epochs, got {value!r}."
    return None


def byte_size(value: Any, flag: str) -> str | None:
    if value < 0:
        return f"{flag} must be a size such as 512M or 8G, got {value!r}."
    return None


def some_text(value: Any, flag: str) -> str | None:
    if not value.strip():
        return f"{flag} must name a split of the dataset, got {value!r}."
    return None


def finite_duration(value: Any, flag: str) -> str | None:
    if not 0 <= value < float("inf"):
        return f"{flag} must be a duration such as 90s, 5m or 1h, got {value!r}."
    return None


def parse_options(text: str) -> dict[str, dict[str, Any]]:
    """'loss.a=-1,discriminator.slope=0.1' -> {"loss": {"a": -1}, "discriminator": {"slope": 0.1}}; a regulariser's
    or an augmentation's options name it: 'regularizer.gp.center=0' -> {"regularizer.gp": {"center": 0}}.

    A value is read as JSON where it is one (numbers, true/false, null, "quoted"), else kept as text.
    """
    options: dict[str, dict[str, Any]] = {}
    for item in filter(None, (part.strip() for part in str(text).split(","))):
        key, equals, raw = item.partition("=")
        role, dot, name = key.strip().rpartition(".")
        if not (equals and dot and role and name):
            raise GanzooError(f"An option looks like ROLE.NAME=VALUE, e.g. loss.a=-1; got {item!r}.")
        try:
            value = json.loads(raw.strip())
        except (ValueError, RecursionError):
            value = raw.strip()
        options.setdefault(role, {})[name.strip()] = value
    return options


def format_options(options: dict[str, dict[str, Any]]) -> str:
    """The options as --options reads them, or 'none'."""
    items = [f"{role}.{name}={json.dumps(value)}" for role, named in options.items() for name, value in named.items()]
    return ",".join(items) or "none"


def option_values(value: Any, flag: str) -> str | None:
    """{role: {name: JSON value}}: what a weights file's JSON can hold and a factory can take as keywords."""
    for role, named in value.items():
        if not isinstance(role, str) or not isinstance(named, dict):
            return f"{flag} maps each component (e.g. loss) to its options, got {role!r}: {named!r:.40}."
        for name, option in named.items():
            if not isinstance(name, str) or not name.isidentifier():
                return f"{flag}: the {role}'s option name {name!r} is not a Python keyword name."
            try:
                json.dumps(option, allow_nan=False)
            except (TypeError, ValueError):
                return f"{flag}: the {role}'s option {name!r} must be a number, true/false, text or a list of them, " \
                       f"got {option!r:.40}."
    return None


# -- the declaration of a field ------------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """What RunConfig says about one field besides its default (see the module docstring)."""

    help: str
    flag: str | None = ""                  # "" -> from the name (batch_size -> --batch-size); None -> none
    parse: Callable[[str], Any] | None = None   # text -> value, for flags and config-file strings
    checks: tuple[Check, ...] = ()
    resumable: bool = False                # `ganzoo run --resume` may change it
    comparable: bool = False               # `ganzoo compare` sets it alike for every model
    shown_default: str | None = None       # the default in words, where the value says too little
    metavar: str | None = None
    shown: Callable[[Any], str] | None = None   # how a value reads, where format_value's way does not fit
    null: Any = None                       # what null (JSON, YAML) means in a settings file (None: the default)
    short: str | None = None               # a one-letter flag as well, e.g. "-n"
    repeat: bool = False                   # the flag may be given again, each value kept (a list)
    one_of_group: str | None = None        # flags of one group name: exactly one of them must be given
    decided_by: str | None = None          # what decides it when it is not given (e.g. "--precision auto"):
                                           # a template leaves it null, so that the deciding still happens


def setting(default: Any, help: str, **options: Any) -> Any:
    """A RunConfig field: its default and its Setting (flag, help, checks, ...)."""
    if isinstance(default, dict):                          # each config gets its own copy
        return field(default_factory=lambda: json.loads(json.dumps(default)),
                     metadata={"ganzoo": Setting(help, **options)})
    return field(default=default, metadata={"ganzoo": Setting(help, **options)})


@dataclass(frozen=True)
class FieldInfo:
    """One RunConfig field with everything derived from its declaration."""

    name: str
    default: Any
    type: type                             # str, int, float, bool or dict (options)
    optional: bool                         # None is a value (data_dir)
    setting: Setting

    @property
    def flag(self) -> str | None:
        if self.setting.flag is None:
            return None
        return self.setting.flag or "--" + self.name.replace("_", "-")

    @property
    def flags(self) -> list[str]:
        """Every spelling of the flag: the long one, and a short one if declared."""
        return [f for f in (self.setting.short, self.flag) if f]

    @property
    def label(self) -> str:
        """How messages name the field: its flag, else its name."""
        return self.flag or self.name

    @property
    def choices(self) -> tuple[str, ...] | None:
        for check in self.setting.checks:
            if hasattr(check, "choices"):
                return check.choices
        return None

    def shown(self, value: Any = dataclasses.MISSING) -> str:
        """A value (by default, the default) as help and tables show it."""
        if value is dataclasses.MISSING:
            if self.setting.shown_default is not None:
                return self.setting.shown_default
            value = self.default
        return format_value(value, self)

    def help(self, extra: str = "", default: Any = dataclasses.MISSING) -> str:
        """The flag's help (and `extra`), ending in its real default: `default` where one is given (a model's own,
        e.g. wgangp's lr) and it differs from the declared one, else the declared default."""
        if default is not dataclasses.MISSING and default != self.default:
            return f"{self.setting.help}{extra} (default {self.shown(default) or 'none'})"
        colon = ":" if self.setting.shown_default else ""
        return f"{self.setting.help}{extra} (default{colon} {self.shown()})"

    def parse(self, text: str) -> Any:
        """A value from text (a flag, or a string in a config file)."""
        if self.setting.parse:
            return self.setting.parse(text)
        if self.type is bool:
            lowered = str(text).strip().lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise GanzooError(f"{self.label} must be true or false, got {text!r}.")
        try:
            return self.type(text)
        except ValueError:
            kind = {int: "an integer", float: "a number"}.get(self.type, self.type.__name__)
            raise GanzooError(f"{self.label} must be {kind}, got {text!r}.") from None

    def problem(self, value: Any) -> str | None:
        """The sentence saying why `value` cannot be this field's, or None."""
        if value is None and self.optional:
            return None
        expected = (int, float) if self.type is float else self.type
        if type(value) is bool and self.type is not bool or not isinstance(value, expected):
            kind = {bool: "true or false", int: "an integer", float: "a number", str: "text",
                    dict: "a mapping"}[self.type]
            return f"{self.label} must be {kind}, got {value!r:.40}."
        if isinstance(value, str) and "\0" in value:                   # no path or name holds one
            return f"{self.label} holds a NUL character: {value!r:.40}."
        for check in self.setting.checks:
            problem = check(value, self.label)
            if problem:
                return problem
        return None


def format_value(value: Any, info: "FieldInfo | None" = None) -> str:
    """A setting's value as people read it: 0.0002, on/off, none, or as the setting shows it ('until the budget
    ends')."""
    if info is not None and info.setting.shown is not None:
        return info.setting.shown(value)
    if value is None or value == "":
        return "none"                                          # never "(default )"
    if isinstance(value, dict):
        return format_options(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def fields_of(cls: type) -> dict[str, FieldInfo]:
    """A settings dataclass's fields, each with everything derived from its declaration."""
    hints = typing.get_type_hints(cls)
    found = {}
    for f in dataclasses.fields(cls):
        if "ganzoo" not in f.metadata:
            continue
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = type(None) in typing.get_args(hint)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        found[f.name] = FieldInfo(f.name, default, args[0] if optional else hint, optional, f.metadata["ganzoo"])
    return found


CLOSE_ENOUGH = 0.6     # difflib's similarity ratio from which a known name is offered as the one meant


def closest(name: str, known: Iterable[str]) -> str:
    """' Did you mean X?' for the known name closest to `name`, or '': the one way ganzoo suggests a name."""
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=CLOSE_ENOUGH)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_key_message(key: str, where: str, known: Iterable[str]) -> str:
    """An unknown setting, with the closest known one."""
    hint = closest(key.replace("-", "_"), known)
    return f"{where} sets {key!r}, which is no run setting.{hint} (`ganzoo config MODEL` lists every one.)"


def _escaped(text: str | None) -> str | None:
    """Help text as argparse wants it: a literal % doubled (argparse %-formats help strings)."""
    return text.replace("%", "%%") if text else text


def add_flags(parser: argparse.ArgumentParser, fields: dict[str, FieldInfo], names: Iterable[str] | None = None,
              extra: str = "", defaults: bool = False, shown: dict[str, Any] | None = None) -> None:
    """The flags of these fields, generated from their declarations.

    With `defaults` False each defaults to None, "not given", so that model defaults and config files show
    through (ganzoo run); with `defaults` True to the declared default (a command's own settings). `shown`:
    the defaults the help shows where they are not the declared ones (a named model's own, `run wgangp --help`).
    """
    shown = shown or {}
    groups: dict[str, Any] = {}
    for name in (fields if names is None else names):
        info = fields[name]
        if info.flag is None:
            continue
        default = info.default if defaults else None
        help_text = info.help(extra, shown.get(name, dataclasses.MISSING))
        target = parser
        if info.setting.one_of_group:
            if info.setting.one_of_group not in groups:
                groups[info.setting.one_of_group] = parser.add_mutually_exclusive_group(required=True)
            target = groups[info.setting.one_of_group]
        if info.setting.repeat:
            parser.add_argument(*info.flags, dest=name, action="append", default=None, metavar=info.setting.metavar,
                                help=_escaped(help_text))
        elif info.type is bool:  # --flag / --no-flag, or a plain switch for a default-off command setting
            if defaults and not info.default:
                parser.add_argument(*info.flags, dest=name, action="store_true", help=_escaped(info.setting.help))
            else:
                parser.add_argument(*info.flags, dest=name, action=argparse.BooleanOptionalAction, default=default,
                                    help=_escaped(info.help(extra)))
        else:
            metavar = info.setting.metavar or ("{" + ",".join(info.choices) + "}" if info.choices else
                                               {int: "N", float: "X"}.get(info.type))
            help_ = info.setting.help if info.setting.one_of_group else help_text
            choices = {"choices": info.choices, "metavar": None} if defaults and info.choices else {"metavar": metavar}
            target.add_argument(*info.flags, dest=name, type=info.setting.parse or info.type, default=default,
                                help=_escaped(help_), **choices)


def check_values(fields: dict[str, FieldInfo], values: Any) -> None:
    """Every field's value (attributes of `values`) checked: the first problem as a GanzooError."""
    for info in fields.values():
        problem = info.problem(getattr(values, info.name))
        if problem:
            raise GanzooError(problem)


# -- settings files ------------------------------------------------------------------------------------

MAX_SETTINGS_VALUES = 10_000     # values in a config file, YAML aliases expanded (a run has about 60 settings)
BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode_text(raw: bytes, path: str | Path) -> str:
    """A config file's text: UTF-8, or UTF-8/16/32 with a byte-order mark (what editors save); else a sentence."""
    encoding = next((name for bom, name in BOMS if raw.startswith(bom)), "utf-8")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise GanzooError(f"{path} is not {encoding.upper().replace('-SIG', '')} text (byte {exc.start}); save it "
                          f"as UTF-8.") from None


def expanded_size(data: Any, limit: int = MAX_SETTINGS_VALUES) -> int:
    """How many values `data` holds with every shared object counted at each use (as JSON would write it),
    counting no further than just past `limit`: a YAML alias bomb is measured without being expanded."""
    count, stack = 0, [data]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return count


def read_settings_file(path: str | Path, fields: dict[str, FieldInfo]) -> dict[str, Any]:
    """The settings of a YAML, TOML or JSON file (a run's config.json too), typed and checked.

    Keys are field names (`batch_size`; `batch-size` works too); strings are read as the matching
    flag reads them (`lr: 2e-4`, which YAML leaves a string, `budget: 5m`). A null value means
    "the default", or what the setting declares null to mean (for epochs: until --budget ends).
    """
    path = Path(path)
    if not path.is_file():
        raise GanzooError(f"No config file at {path}.")
    text = decode_text(path.read_bytes(), path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            try:
                import tomllib
            except ImportError:   # Python 3.10
                raise GanzooError(f"{path}: TOML config files need Python 3.11 or later; use YAML or JSON.") from None
            data = tomllib.loads(text)
        else:
            import yaml
            data = yaml.safe_load(text)
    except GanzooError:
        raise
    except Exception as exc:      # the parsers' own error types: JSONDecodeError, YAMLError, TOMLDecodeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanzooError(f"{path} is not a readable {suffix.lstrip('.').upper() or 'YAML'} file: {first}") from None
    if data is None:
        return {}
    if expanded_size(data) > MAX_SETTINGS_VALUES:     # YAML aliases share one object many times: count each use
        raise GanzooError(f"{path} holds more than {MAX_SETTINGS_VALUES:,} values once its aliases are expanded; "
                          f"a config file names a few dozen settings.")
    if not isinstance(data, dict):
        raise GanzooError(f"{path} must hold settings as `name: value` lines, not a {type(data).__name__}.")
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise GanzooError(unknown_key_message(str(key), str(path), fields))
        info = fields[name]
        if value is None:
            value = info.setting.null
            if value is None and not info.optional:
                continue                                  # null: the default
        elif isinstance(value, str) and info.type is not str:
            value = info.parse(value)
        elif info.type is float and type(value) is int:
            value = float(value)
        problem = info.problem(value)
        if problem:
            raise GanzooError(f"{path}: {problem}")
        values[name] = value
    return values


def template(values: dict[str, Any], fields: dict[str, FieldInfo], title: str, fixed: Iterable[str] = ()) -> str:
    """A commented YAML file with every field: what `ganzoo config MODEL` prints, what --config reads. Each help
    shows the value written below it as the default. A setting something else decides when it is not given
    (`decided_by`) is written as null, "not given", unless named in `fixed` (a model sets it), so that a run
    from the file decides it as a plain run does."""
    import yaml

    lines = [f"# {title}", "# Edit, then: ganzoo run --config FILE (flags on the command line override the file).",
             ""]
    for name, value in values.items():
        info = fields[name]
        if info.setting.decided_by and name not in fixed and value == info.default:
            lines.append(f"# {info.flag + ': ' if info.flag else ''}{info.help()}; null: {info.setting.decided_by} "
                         f"decides")
            lines.append(f"{name}: null")
            continue
        lines.append(f"# {info.flag + ': ' if info.flag else ''}{info.help(default=value)}")
        lines.append(yaml.safe_dump({name: value}, default_flow_style=False, sort_keys=False).strip())
    return "\n".join(lines) + "\n"


# -- a recipe's regularisers, as --regularizers spells them ----------------------------------------------

SPEC = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?::\s*([0-9.eE+-]+))?\s*(?:@\s*(\d+))?\s*$")


def parse_regularizers(text: str) -> list[tuple[str, float | None, int | None]]:
    """'gp:10, r1:0.1@16' -> [("gp", 10.0, None), ("r1", 0.1, 16)]: NAME[:WEIGHT][@EVERY], comma-separated."""
    specs = []
    for part in filter(str.strip, text.split(",")):
        match = SPEC.match(part)
        weight = None
        if match and match[2] is not None:
            try:
                weight = float(match[2])
            except ValueError:
                match = None
        if not match or (weight is not None and not weight >= 0) or (match[3] is not None and int(match[3]) < 1):
            raise GanzooError(f"--regularizers takes NAME[:WEIGHT][@EVERY], comma-separated (e.g. gp:10 or "
                              f"r1:0.1@16), got {part.strip()!r}.")
        specs.append((match[1], weight, int(match[3]) if match[3] else None))
    return specs


def regularizers_check(value: Any, flag: str) -> str | None:
    try:
        parse_regularizers(value)
    except GanzooError as exc:
        return str(exc).replace("--regularizers", flag)
    return None
