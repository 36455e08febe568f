"""Collecting the checks of what a plugin registers, running them, and `ganzoo check-plugin`'s report."""

from __future__ import annotations

import time
import traceback
from typing import Callable

import torch
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..terminal import off_terminal

from ..device import select_device
from ..errors import GanzooError
from ..kinds import KINDS
from ..plugins import PluginInfo, Registries, registries
from ..settings import closest
from .data import dataset_checks, metric_checks
from .kit import CHECKED_KINDS, Check, CheckFailed, Result
from .losses import loss_checks
from .models import model_checks
from .networks import discriminator_checks, generator_checks
from .pieces import augmentation_checks, labeller_checks, regularizer_checks

CHECKED_PLURALS = tuple(kind.plural for kind in KINDS if kind.checked)

def component_checks(kind: str, name: str, *, device: str = "cpu", regs: Registries | None = None,
                     data_dir: str | None = None) -> list[Check]:
    """Every check of one registered thing of a kind the kit checks (CHECKED_KINDS: the kinds table says which).

    `data_dir`: a local copy of the dataset a metric scores by default (its first declared one)."""
    if kind not in CHECKED_KINDS:
        raise GanzooError(f"The kit checks {', '.join(CHECKED_KINDS)}; not {kind!r}.")
    regs = regs or registries()
    entry = regs.by_kind(kind).get(name)
    dev = torch.device(device)
    if kind == "generator":
        found = generator_checks(entry, dev)
    elif kind == "discriminator":
        found = discriminator_checks(entry, dev)
    elif kind == "loss":
        found = loss_checks(entry, dev)
    elif kind == "dataset":
        found = dataset_checks(entry, dev)
    elif kind == "metric":
        found = metric_checks(entry, dev, data_dir=data_dir)
    elif kind == "regularizer":
        found = regularizer_checks(entry, dev)
    elif kind == "augmentation":
        found = augmentation_checks(entry, dev)
    elif kind == "labeller":
        found = labeller_checks(entry, dev)
    else:
        found = model_checks(entry, dev, regs)
    return [Check(kind, name, what, entry.plugin, fn, str(dev)) for what, fn in found]


def find_plugin(name: str, regs: Registries | None = None) -> PluginInfo:
    """A plugin by the name `ganzoo plugins` shows, its distribution's name, or a built-in's short name."""
    regs = regs or registries()
    normal = name.replace("-", "_").lower()
    for match in (lambda p: p.name == name, lambda p: p.source.replace("-", "_").lower() == normal,
                  lambda p: p.name.replace("-", "_").lower() == normal,
                  lambda p: p.source == "built-in" and p.name.rsplit(".", 1)[-1] == normal):
        found = [p for p in regs.plugins if match(p)]
        if len(found) == 1:
            return found[0]
    names = [p.name for p in regs.plugins]
    spelled = {p.name.rsplit(".", 1)[-1] if p.source == "built-in" else p.name: p.name for p in regs.plugins}
    spelled |= {p.source: p.source for p in regs.plugins if p.source != "built-in"}
    hint = closest(name, spelled) if "." not in name else closest(name, names)
    raise GanzooError(f"No plugin named {name!r} is installed.{hint} Known: {', '.join(names)}; install it "
                      f"(pip install -e PATH) and check `ganzoo plugins`.")


def plugin_checks(plugin: str, *, device: str = "cpu", data_dir: str | None = None) -> list[Check]:
    """Every check of everything a plugin registers; raises CheckFailed if the plugin failed to load."""
    regs = registries()
    info = find_plugin(plugin, regs)
    if info.error:
        tb = getattr(info, "traceback", None)
        raise CheckFailed(f"Plugin {info.name!r} failed to load, so nothing it registers can be checked: "
                          f"{info.error}" + (f"\n{tb}" if tb else ""))
    return [check for kind in CHECKED_KINDS for name in info.registered.get(kind, [])
            for check in component_checks(kind, name, device=device, regs=regs, data_dir=data_dir)]


def registered_checks(*, device: str = "cpu", data_dir: str | None = None) -> list[Check]:
    """Every check of everything registered: what ganzoo's own test suite runs, parametrized."""
    regs = registries()
    return [check for kind in CHECKED_KINDS for name in regs.by_kind(kind).names()
            for check in component_checks(kind, name, device=device, regs=regs, data_dir=data_dir)]


def run_checks(checks: list[Check], on_result: Callable[[Result], None] | None = None) -> list[Result]:
    results = []
    for check in checks:
        start = time.perf_counter()
        try:
            check.run()
            result = Result(check, time.perf_counter() - start)
        except CheckFailed as exc:
            cause = exc.__cause__
            details = None
            if cause is not None and not isinstance(cause, (CheckFailed, GanzooError)):
                details = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
            result = Result(check, time.perf_counter() - start, str(exc), details)
        results.append(result)
        if on_result:
            on_result(result)
    return results


def check_plugin(plugin: str, *, device: str = "cpu", data_dir: str | None = None) -> list[Result]:
    """Run every check on a plugin; raise CheckFailed listing each failure and its fix (for pytest)."""
    results = run_checks(plugin_checks(plugin, device=device, data_dir=data_dir))
    failed = [r for r in results if not r.passed]
    if failed:
        lines = [f"{len(failed)} of {len(results)} conformance checks of plugin {plugin!r} failed:"]
        lines += [f"- {r.check.kind} {r.check.name!r}, {r.check.what}: {r.error}" for r in failed]
        raise CheckFailed("\n".join(lines))
    return results


# -- `ganzoo check-plugin` --------------------------------------------------------------------------

def check_plugins_command(names: list[str], *, every: bool, device: str, out, console,
                          data_dir: str | None = None) -> int:
    """What `ganzoo check-plugin` does: a table per plugin, the failures spelled out, exit status 1 on any."""
    device = str(select_device(device))
    regs = registries()
    if every:
        infos = [p for p in regs.plugins]
    elif names:
        infos = [find_plugin(n, regs) for n in names]
    else:
        raise GanzooError("Name the plugin to check, e.g. `ganzoo check-plugin myvariant` (see `ganzoo plugins`), "
                          "or pass --all.")
    status = 0
    for info in infos:
        title = f"{info.name} ({info.source}, {info.version})"
        if info.error:
            status = 1
            out.print(f"[bold]{escape(title)}[/bold]: [red]failed to load[/red]: {escape(info.error)}", highlight=False)
            tb = getattr(info, "traceback", None)
            if tb:
                out.print(tb, highlight=False, markup=False)
            continue
        checks = plugin_checks(info.name, device=device, data_dir=data_dir)
        if not checks:
            kinds = ", ".join(info.registered) or "nothing"
            out.print(f"[bold]{escape(title)}[/bold]: registers {kinds}; the kit checks {', '.join(CHECKED_PLURALS)}, "
                      f"so there is nothing to check.", highlight=False)
            continue
        progress = Progress(TextColumn(f"checking {info.name}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True,
                            disable=off_terminal(console))
        with progress:
            task = progress.add_task("", total=len(checks))

            def advance(result: Result) -> None:
                progress.update(task, advance=1, description=f"{result.check.kind} {result.check.name}")
            start = time.perf_counter()
            results = run_checks(checks, advance)
            total = time.perf_counter() - start
        table = Table(title=f"conformance of {title} on {device}", title_justify="left")
        for column in ("kind", "name", "check", "result", "seconds"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        for r in results:
            table.add_row(r.check.kind, r.check.name, r.check.what,
                          "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]", f"{r.seconds:.2f}")
        out.print(table)
        failed = [r for r in results if not r.passed]
        for i, r in enumerate(failed, 1):
            what = f"{r.check.kind} {r.check.name!r}, {r.check.what}: {r.error}"
            out.print(f"[bold red]{i}.[/bold red] {escape(what)}", highlight=False)
            if r.details:
                out.print(r.details, highlight=False, markup=False)
        verdict = (f"[green]all {len(results)} checks passed[/green]" if not failed
                   else f"[bold red]{len(failed)} of {len(results)} checks failed[/bold red]")
        out.print(f"{info.name}: {verdict} in {total:.1f} s", highlight=False)
        status = status or (1 if failed else 0)
    return status
