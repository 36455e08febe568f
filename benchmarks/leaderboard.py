"""The zoo's leaderboard: every built-in model through `ganzoo compare` on each dataset, under one budget and
one set of seeds, merged into one table.

    python benchmarks/leaderboard.py --epochs 1 --seeds 2 --data-dir ../shared/data/mnist
    python benchmarks/leaderboard.py dcgan pacdcgan2 wgangp --budget 5m --data stackedmnist
    python benchmarks/leaderboard.py --epochs 1 --seeds 2 --data-dir ../shared/data/mnist --resume   # after a stop

Models: the names given, else every model ganzoo's own plugins register (not third-party ones). Datasets:
`--data` (comma-separated; default MNIST and Stacked MNIST). Each dataset is one `ganzoo compare` run (a
subprocess) into OUT/<dataset>/ (its report.md, plots, runs); any further flag (e.g. `--g-width 32`, `-n
2000`, `--threads 1`) goes to every compare as it is. OUT/leaderboard.md holds the table — rows: models;
columns: each dataset's scores, mean ± std over the seeds, a column's one best value in bold — with the
command, the machine, the date and the commit; OUT/results.json every number. `--resume` continues each compare
with its own --resume, so a stopped leaderboard keeps every finished run (and a finished compare is only read:
`--resume` on finished compare folders rebuilds leaderboard.md and results.json without training anything).
`--report` writes the table of a leaderboard that is still running (or stopped) from the models whose every seed
has finished, training nothing; it names the models still to come. With `--merge OTHER_OUT` (repeatable) it also
takes the finished models of leaderboards run beside this one (the same command with other models and another
--out, e.g. one per process): one table, refused unless every folder was trained and scored under the same
settings on the same machine.

Each cell is the mean over seeds with its Student t 95% interval; a column's best is in bold only when it beats
every other model beyond seed noise (paired by seed: the same seed is the same initialisation stream and data
order for every model), and below the table every model is measured against a baseline (`--baseline`, default
the first model named), seed by seed, marked only where the 95% interval of the difference excludes zero.
results.json keeps every seed's raw numbers beside the summaries.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from ganzoo.compare import Results
from ganzoo.compare.protocols import check_protocols
from ganzoo.compare.report import (baseline_label, best_labels, differences_note, format_interval, markdown_differences,
                                   seeds_note)
from ganzoo.compare.comparison import environment
from ganzoo.compare.statistics import paired_difference, verdict
from ganzoo.device import select_device
from ganzoo.errors import GanzooError
from ganzoo.evaluate import better, evaluate_real, format_value
from ganzoo.plugins import BUILTIN_PLUGINS, registries

DATASETS = ("mnist", "stackedmnist")
# Datasets whose labels are the very modes their metric counts: a conditional model is told the mode to draw,
# so its coverage there measures nothing; it is left out of them (a dash in the table, and a note).
LABELS_ARE_THE_MODES = {"stackedmnist"}
ARROWS = {"lower": "↓", "higher": "↑"}
REPO = Path(__file__).resolve().parents[1]


def builtin_models() -> list[str]:
    """Every model ganzoo's own plugins register, in `ganzoo list` order."""
    return [e.name for e in registries().models if e.plugin in BUILTIN_PLUGINS]


def is_conditional_model(name: str) -> bool:
    """Whether the model's generator is conditioned on class labels (cdcgan)."""
    regs = registries()
    entry = regs.models.get(name) if name in regs.models else None
    return bool(entry) and regs.generators.get(entry.factory.generator).conditional


def key_metrics(results: Results) -> list[str]:
    """The scores that rank (registered with better= lower or higher), in the order compare reports them."""
    return [m for m in results.score_names() if better(m) in ARROWS]


def leaderboard_table(by_data: dict[str, Results]) -> str:
    """One markdown table: a row per model (in the order first met), per dataset its key scores as the mean over
    seeds with its 95% interval and the training wall-clock per run; a column's best in bold only when it beats
    every other model beyond seed noise (compare's rule; diverged runs do not compete), a notes column naming
    runs that diverged, failed or saw D collapse; the last row: real data, scored the same way."""
    for results in by_data.values():
        check_protocols(results)        # a column's numbers were all made under one protocol, or none is shown
    models = list(dict.fromkeys(label for results in by_data.values() for label in results.contenders))
    columns = [(data, m) for data, results in by_data.items() for m in key_metrics(results)] + \
              [(data, "train_time_s") for data in by_data]
    columns.sort(key=lambda c: list(by_data).index(c[0]))                     # each dataset's columns together
    header = ["model"] + [f"{data} {m} {ARROWS[better(m)]}" if m != "train_time_s" else f"{data} train s/run"
                          for data, m in columns] + ["notes"]
    best = {(data, m): best_labels(by_data[data], m, better(m)) for data, m in columns if m != "train_time_s"}
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(columns) + "---|"]
    for label in models:
        cells, notes = [label], []
        for data, m in columns:
            entry = by_data[data].contenders.get(label)
            fmt = "{:,.0f}" if m == "train_time_s" else None
            text = format_interval(entry.summary.get(m), fmt) if entry else "-"
            cells.append(f"**{text}**" if label in best.get((data, m), ()) else text)
        for data, results in by_data.items():
            entry = results.contenders.get(label)
            bad: dict[str, list[str]] = {}                   # status -> the seeds that ended so
            for run in entry.runs if entry else []:
                if run.status != "ok":
                    bad.setdefault(run.status, []).append(str(run.seed))
            notes += [f"{data}: {status} (seed {', '.join(seeds)})" for status, seeds in bad.items()]
        lines.append("| " + " | ".join(cells + ["; ".join(notes)]) + " |")
    real = ["real data (floor)"] + [format_value(by_data[data].real[m]) if m in (by_data[data].real or {}) else
                                    "" if m == "train_time_s" else "-" for data, m in columns]
    lines.append("| " + " | ".join(real + [""]) + " |")
    return "\n".join(lines)


def column_protocol(results: Results) -> dict:
    """The protocol of each metric behind a dataset's columns (one per column: check_protocols made sure)."""
    return next((run.protocol for e in results.contenders.values() for run in e.runs if run.protocol), {})


def budget_words(settings: dict) -> str:
    if settings.get("budget"):
        return f"{settings['budget']:g} s of training per model and seed"
    return f"{settings['epochs']} epoch(s) per model and seed"


def machine(environment: dict) -> str:
    device = environment.get("gpu") or environment.get("device", "?")
    cpu = f" ({environment['cpu']})" if environment.get("cpu") else ""
    return f"{device}, {environment.get('cpus', os.cpu_count())} CPUs{cpu}, " \
           f"{environment.get('platform', platform.platform())}, torch {environment.get('torch', '?')}"


def commit(repo: Path = REPO) -> dict[str, str] | None:
    """The checkout the table was made with: `git describe --always --dirty` and the full commit id; None
    without git or outside a repository."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        return {"describe": git("describe", "--always", "--dirty", "--tags"), "commit": git("rev-parse", "HEAD")}
    except (OSError, subprocess.SubprocessError):
        return None


def run_dates(by_data: dict[str, Results]) -> tuple[str, str] | None:
    """When the first and the last run ended (UTC), where the results record it."""
    dates = sorted(r.finished_at for results in by_data.values() for e in results.contenders.values()
                   for r in e.runs if r.finished_at)
    return (dates[0], dates[-1]) if dates else None


def baselines(by_data: dict[str, Results], baseline: str | None) -> dict[str, str]:
    """Each dataset's baseline: the one asked for where it ran there, else that dataset's first model."""
    return {data: baseline if baseline in results.contenders else baseline_label(results)
            for data, results in by_data.items() if results.contenders}


def raw_runs(entry) -> list[dict]:
    """Every seed's numbers, as compare recorded them (the bad seeds too)."""
    keys = ("seed", "status", "message", "scores", "train_time_s", "wall_time_s", "images_per_s", "peak_memory_mb",
            "steps", "epochs_done", "finished_at", "run_dir")
    return [{k: getattr(r, k) for k in keys} for r in entry.runs]


def model_record(results: Results, label: str, base: str) -> dict:
    """A model on one dataset in results.json: status, every seed, the summaries, and its difference to the
    baseline per key score (paired by seed)."""
    entry = results.contenders[label]
    record = {"status": entry.status, "seeds": len(entry.runs), "runs": raw_runs(entry)}
    for m in key_metrics(results) + ["train_time_s"]:
        if m in entry.summary:
            stat = entry.summary[m]
            record[m] = {"mean": stat.mean, "std": stat.std, "low": stat.low, "high": stat.high, "n": stat.n}
    if label != base:
        record["against_baseline"] = {}
        for m in key_metrics(results):
            difference = paired_difference(entry, results.contenders[base], m)
            record["against_baseline"][m] = {**difference.to_dict(), "verdict": verdict(difference, better(m))}
    return record


def write(by_data: dict[str, Results], out: Path, command: str, baseline: str | None = None,
          pending: dict[str, list[str]] | None = None) -> str:
    """OUT/leaderboard.md and OUT/results.json; returns the markdown. `pending`: per dataset, the models still
    training (a table written with --report while the leaderboard runs)."""
    pending = pending or {}
    progress = ["**In progress.** Still to come: " + "; ".join(f"{data}: {', '.join(models)}"
                                                               for data, models in pending.items())
                + ". The rows above are every model whose seeds have all finished.", ""] if pending else []
    first = next(iter(by_data.values()))
    s, env = first.settings, first.environment
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    dates = run_dates(by_data)
    when = f"Date: {date}" + (f" (runs ended {dates[0][:10]} to {dates[1][:10]})" if dates else "")
    made_with = commit()
    at = f"commit `{made_with['describe']}` ({made_with['commit']})" if made_with else "commit unknown (no git)"
    overrides = ", ".join(f"{k} {v}" for k, v in sorted(s.get("overrides", {}).items())) or "none"
    bases = baselines(by_data, baseline)
    against = []
    for data, results in by_data.items():
        if len(results.contenders) > 1 and key_metrics(results):
            against += [f"### {data}: against {bases[data]}", "", markdown_differences(results, bases[data]), ""]
    text = "\n".join([
        "# ganzoo leaderboard", "",
        f"`{command}`", "",
        f"{budget_words(s)}; seeds {s['seed']}..{s['seed'] + s['seeds'] - 1}; settings shared by every model: "
        f"{overrides}. Scores: `ganzoo compare`'s final scores, from {s['n'] or 'the metrics’ default number of'} "
        f"samples; the last row scores real training images the same way. Train s/run: the training wall-clock of "
        f"one run (the clock --budget counts). Machine: {machine(env)}. {when}. Made at {at}.", "",
        seeds_note(first), "",
        leaderboard_table(by_data), "",
        *progress,
        *(["## Against the baseline", "", differences_note(), "", *against] if against else []),
        "Each dataset's report (plots, the Pareto plot, every seed's numbers, the runs, the protocol every score was "
        "made under): " + ", ".join(f"[{data}]({data}/report.md)" for data in by_data) + ". Every seed's raw numbers "
        "are in results.json.", ""])
    (out / "leaderboard.md").write_text(text)
    summary = {
        "command": command, "date": date, "pending": pending, "commit": made_with, "machine": env, "baseline": bases,
        "intervals": "Student t 95% intervals over seeds; differences paired by seed",
        "datasets": {data: {"settings": r.settings, "metrics": {m: better(m) for m in key_metrics(r)},
                            "protocol": column_protocol(r), "real": r.real, "environment": r.environment,
                            "report": str(out / data / "report.md")}
                     for data, r in by_data.items()},
        "models": {label: {data: model_record(r, label, bases[data]) for data, r in by_data.items()
                           if label in r.contenders}
                   for label in dict.fromkeys(l for r in by_data.values() for l in r.contenders)},
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2, allow_nan=True))
    return text


def finished_so_far(folder: Path, models: list[str], seeds: int) -> tuple[Results | None, list[str]]:
    """A compare folder's results restricted to the models whose every seed has finished, with the real-data row
    and the machine filled in as a finished compare does; and the models still to come. (None, models) when
    nothing has finished there yet."""
    path = folder / "results.json"
    if not path.exists():
        return None, models
    results = Results.from_dict(json.loads(path.read_text()))
    done = [m for m in models if m in results.contenders and len(results.contenders[m].runs) >= seeds]
    results.contenders = {m: results.contenders[m] for m in done}
    if not done:
        return None, models
    device = select_device(results.settings.get("device", "auto"))
    if not results.environment:
        results.environment = environment(device)
    if results.real is None:
        config = json.loads((Path(results.contenders[done[0]].runs[0].run_dir) / "config.json").read_text())
        s = results.settings
        real = evaluate_real(data=config["data"], image_size=config["image_size"], channels=config["channels"],
                             metrics=s.get("metrics"), n=s.get("n"), data_dir=s.get("data_dir"), download=False,
                             device=device)
        scored = {name for entry in results.contenders.values() for run in entry.runs for name in run.scores}
        results.real = {name: value for name, value in real.items() if name in scored}   # the runs' columns only
        results.real_protocol = real.protocol
        if not any(run.protocol for entry in results.contenders.values() for run in entry.runs):
            # the runs were scored by a ganzoo from before scores carried their protocol: the real row, scored
            # now by the same metrics, is left without one too, as they are (the table names the commit)
            results.real_protocol = None
    return results, [m for m in models if m not in done]


# A comparison's settings that may differ between folders merged into one table: which models it held, and where
# the data was read from.
MAY_DIFFER = ("inputs", "data_dir", "download")


def combined(parts: list[tuple[Path, Results]]) -> Results:
    """Several compare folders' finished models as one comparison (a leaderboard split over processes or sessions),
    refused with the difference named unless they were trained and scored under the same settings on the same
    machine, and unless each model finished in one folder only."""
    (first_folder, first), rest = parts[0], parts[1:]
    merged = Results(settings=dict(first.settings), contenders=dict(first.contenders), real=first.real,
                     environment=first.environment, real_protocol=first.real_protocol)
    for folder, other in rest:
        differing = sorted(k for k in set(first.settings) | set(other.settings)
                           if k not in MAY_DIFFER and first.settings.get(k) != other.settings.get(k))
        if differing:
            raise GanzooError(f"{first_folder} and {folder} were run under different settings "
                              f"({', '.join(f'{k}: {first.settings.get(k)!r} against {other.settings.get(k)!r}' for k in differing)}); "
                              f"one table ranks one protocol.")
        if other.environment != first.environment:
            raise GanzooError(f"{first_folder} and {folder} were run on different machines or software "
                              f"({first.environment} against {other.environment}); one table names one machine.")
        twice = sorted(set(other.contenders) & set(merged.contenders))
        if twice:
            raise GanzooError(f"{', '.join(twice)} finished in {folder} and in an earlier folder too; merge each model "
                              f"from one folder.")
        merged.contenders.update(other.contenders)
    return merged


def run_to_the_end(command: list[str]) -> int:
    """Run a compare and wait for it: Ctrl-C reaches it (it checkpoints and stops cleanly), not this script,
    which would otherwise kill it mid-write."""
    process = subprocess.Popen(command)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)       # after the exec: the child keeps its handler
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def split_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """The leaderboard's own arguments, and compare's flags passed on in their order. A bare word is a model
    only when it names a registered one, so `--threads 1` passes on whole (argparse would take its 1 for a
    model name)."""
    takes_value = {o for a in parser._actions if a.nargs is None and a.option_strings for o in a.option_strings}
    switches = {o for a in parser._actions if a.nargs == 0 for o in a.option_strings}
    models = set(registries().models.names())
    ours, passed_on, i = [], [], 0
    while i < len(argv):
        token = argv[i]
        if token in takes_value and i + 1 < len(argv):
            ours += argv[i:i + 2]
            i += 2
            continue
        if token in switches or token.split("=", 1)[0] in takes_value or token in models:
            ours.append(token)
        else:
            passed_on.append(token)
        i += 1
    return ours, passed_on


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "),
                                     epilog="Other flags go to every `ganzoo compare` as they are.")
    parser.add_argument("models", nargs="*", help="registered model names (default: every built-in model)")
    parser.add_argument("--data", default=",".join(DATASETS), help="datasets, comma-separated (default %(default)s)")
    parser.add_argument("--data-dir", default=None, help="local copy of the datasets (MNIST's for both defaults)")
    parser.add_argument("--epochs", type=int, default=None, help="equal epochs for every model (compare's default 1)")
    parser.add_argument("--budget", default=None, help="equal training time for every model instead, e.g. 5m")
    parser.add_argument("--seeds", type=int, default=1,
                        help="seeds per model; 3 or more give intervals that can rank (default 1)")
    parser.add_argument("--baseline", default=None, metavar="MODEL",
                        help="the model every other is measured against, seed by seed (default: the first named)")
    parser.add_argument("--out", default="reports/leaderboard", help="folder (default %(default)s)")
    parser.add_argument("--resume", action="store_true", help="continue a stopped leaderboard in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace a leaderboard in --out")
    parser.add_argument("--report", action="store_true",
                        help="write the table of the models finished so far in --out, training nothing")
    parser.add_argument("--merge", action="append", default=[], metavar="OTHER_OUT",
                        help="with --report: also the finished models of another leaderboard folder (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = arguments()
    argv = sys.argv[1:] if argv is None else argv
    ours, passed_on = split_arguments(parser, argv)
    args = parser.parse_args(ours)
    models = args.models or builtin_models()
    if args.merge and not args.report:
        parser.error("--merge goes with --report: it joins finished leaderboards into one table")
    if args.baseline is not None and args.baseline not in models:
        parser.error(f"--baseline {args.baseline!r} is not one of the models ranked ({', '.join(models)})")
    datasets = [d.strip() for d in args.data.split(",") if d.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    by_data, pending = {}, {}
    for data in datasets:
        entrants = [m for m in models if not (data in LABELS_ARE_THE_MODES and is_conditional_model(m))]
        if len(entrants) < len(models):
            print(f"== {data}: {', '.join(sorted(set(models) - set(entrants)))} left out: a conditional model is "
                  f"told the mode that {data}'s metric counts", flush=True)
        if not entrants:
            continue
        if args.report:
            found = []
            for folder in [out, *map(Path, args.merge)]:
                results, _ = finished_so_far(folder / data, entrants, args.seeds)
                if results is not None:
                    found.append((folder / data, results))
            done = {label for _, results in found for label in results.contenders}
            pending[data] = [m for m in entrants if m not in done]
            if found:
                try:
                    by_data[data] = combined(found)
                except GanzooError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 1
            continue
        command = [sys.executable, "-m", "ganzoo", "compare", *entrants, "--data", data, "--seeds", str(args.seeds),
                   "--out", str(out / data), *passed_on]
        if args.baseline in entrants:
            command += ["--baseline", args.baseline]
        for flag, value in (("--data-dir", args.data_dir), ("--epochs", args.epochs), ("--budget", args.budget)):
            if value is not None:
                command += [flag, str(value)]
        command += ["--resume"] * args.resume + ["--overwrite"] * args.overwrite
        print(f"== {data}: {shlex.join(command[1:])}", flush=True)
        returncode = run_to_the_end(command)
        if returncode != 0:
            print(f"error: the comparison on {data} stopped (exit {returncode}); finished runs are kept in "
                  f"{out / data}. Continue with: python benchmarks/leaderboard.py {shlex.join(argv)}"
                  + ("" if args.resume else " --resume"), file=sys.stderr)
            return returncode
        by_data[data] = Results.from_dict(json.loads((out / data / "results.json").read_text()))
    if not by_data:
        print(f"error: no model has finished every seed in {out} yet", file=sys.stderr)
        return 1
    command = [a for a in argv if a not in ("--resume", "--overwrite", "--report")]  # what the table is the result of
    command = [a for i, a in enumerate(command) if a != "--merge" and (i == 0 or command[i - 1] != "--merge")]
    try:
        text = write(by_data, out, "python benchmarks/leaderboard.py " + shlex.join(command), baseline=args.baseline,
                     pending={data: models for data, models in pending.items() if models})
    except GanzooError as exc:                                               # scores of different protocols
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(text)
    print(f"-> {out / 'leaderboard.md'}, {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
