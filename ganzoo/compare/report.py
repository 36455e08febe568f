"""Showing a comparison: the table (terminal and markdown), the differences against a baseline, report.md and its
plots (samples, losses, scores against time, and the Pareto plot of quality against training time)."""

from __future__ import annotations

import math
from pathlib import Path

from rich.table import Table
from torchvision.utils import make_grid

from ..checkpoint import load_generator
from ..files import atomic_write
from ..config import TRAINING_TIME
from ..errors import GanzooError
from ..evaluate import better, format_value
from ..runfiles import RunFiles, weights_file
from ..sampling import grid_columns, sample
from .quality import memorisation_section, precision_recall_plot, protocol_section
from .results import ContenderResult, Results, Stat, loss_records
from .statistics import Interval, beats, paired_difference, verdict

RESOURCE_COLUMNS = {  # summary key: (header, better, format)
    "images_per_s": ("img/s", "higher", "{:,.0f}"),
    "train_time_s": ("train time (s)", "lower", "{:,.0f}"),
    "peak_memory_mb": ("peak mem (MiB)", "lower", "{:,.0f}"),
}


def comparable(results: Results, key: str) -> bool:
    """Whether a column can rank the contenders: not the training time when the budget fixed it for all."""
    return not (key == "train_time_s" and results.settings.get("budget"))


def ranked(results: Results) -> list[str]:
    """The scores that rank (their metric registered better= lower or higher), in the table's order."""
    return [m for m in results.score_names() if better(m) in ("lower", "higher")]


def _finite_mean(entry: ContenderResult, key: str) -> float | None:
    stat = entry.summary.get(key)
    return stat.mean if stat is not None and stat.mean is not None and math.isfinite(stat.mean) else None


def best_labels(results: Results, key: str, direction: str) -> set[str]:
    """The contender with the best mean in a comparable column, when it beats **every** other one, the runner-up
    included, beyond seed noise: each paired-seed difference's 95% interval excludes zero (see statistics.beats).
    Empty otherwise: one seed (no interval), a difference within the noise, fewer than two numbers, or a column
    that cannot rank (see comparable). Diverged models do not compete."""
    if direction not in ("lower", "higher") or not comparable(results, key):
        return set()
    competing = {label: e for label, e in results.contenders.items()
                 if "diverged" not in e.status and _finite_mean(e, key) is not None}
    if len(competing) < 2:
        return set()
    order = sorted(competing, key=lambda label: _finite_mean(competing[label], key), reverse=direction == "higher")
    best = order[0]
    if all(beats(competing[best], competing[other], key, direction) for other in order[1:]):
        return {best}
    return set()


def _number(value: float, fmt: str | None = None) -> str:
    return fmt.format(value) if fmt else format_value(value)


def format_interval(stat: Stat | None, fmt: str | None = None) -> str:
    """'12.3 [10.1, 14.5]': the mean over seeds and its 95% interval; the mean alone with one seed (no interval,
    never '± 0'), and when every seed gave the same number (1 ± round-off is 1)."""
    mean = stat.mean if stat else math.nan
    if mean is None or not math.isfinite(mean):
        return "-"
    text = _number(mean, fmt)
    if stat.low is None or stat.high is None or not (math.isfinite(stat.low) and math.isfinite(stat.high)):
        return text
    if stat.high - stat.low <= 1e-9 * max(1.0, abs(mean)):
        return text
    return f"{text} [{_number(stat.low, fmt)}, {_number(stat.high, fmt)}]"


def signed(value: float) -> str:
    return ("+" if value > 0 else "−" if value < 0 else "") + format_value(abs(value))


def seed_counts(results: Results) -> list[int]:
    """How many seeds each contender's numbers rest on (finished runs given as paths count 1)."""
    return [len(e.runs) for e in results.contenders.values()]


def seeds_note(results: Results) -> str:
    """One sentence saying what the intervals rest on, or that there are none."""
    counts = sorted(set(seed_counts(results))) or [0]
    if counts[-1] <= 1:
        return ("One seed per model: no interval can be given, no difference can be told from seed noise, and "
                "nothing is in bold; run more seeds (--seeds 3 or more) to rank.")
    seeds = f"{counts[0]} seeds" if len(counts) == 1 else f"{counts[0]} to {counts[-1]} seeds"
    return (f"Cells: mean [95% interval of the mean] over {seeds} (Student t); the interval is left out where a "
            f"model has one usable seed. A column's best value is in bold only when it beats every other model, "
            f"the runner-up included, beyond seed noise (the paired-seed difference's 95% interval excludes zero).")


def table_rows(results: Results) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows (cell text, is-best) shared by the terminal table and report.md."""
    metrics = results.score_names()
    header = ["model", "status", "params G / D"] + metrics + [h for h, _, _ in RESOURCE_COLUMNS.values()]
    arrows = {"lower": " ↓", "higher": " ↑"}
    header = header[:3] + [m + arrows.get(better(m), "") for m in metrics] + header[3 + len(metrics):]
    best = {m: best_labels(results, m, better(m)) for m in metrics}
    best.update({k: best_labels(results, k, d) for k, (_, d, _) in RESOURCE_COLUMNS.items()})
    rows = []
    for label, e in results.contenders.items():
        params = " / ".join(f"{v / 1e6:.2f}M" if v else "-" for v in (e.parameters.get("G"), e.parameters.get("D")))
        seeds = len(e.runs)
        row = [(f"{label}" + (f" ({seeds} seeds)" if seeds > 1 else ""), False), (e.status, False), (params, False)]
        row += [(format_interval(e.summary.get(m)), label in best[m]) for m in metrics]
        row += [(format_interval(e.summary.get(k), fmt), label in best[k])
                for k, (_, _, fmt) in RESOURCE_COLUMNS.items()]
        rows.append(row)
    real = results.real or {}
    rows.append([("real data (floor)", False), ("", False), ("", False)]
                + [(format_value(real[m]) if m in real else "-", False) for m in metrics]
                + [("", False)] * len(RESOURCE_COLUMNS))
    return header, rows


def rich_table(results: Results) -> Table:
    header, rows = table_rows(results)
    table = Table(title="comparison (mean [95% interval] over seeds; ★ best beyond seed noise)", title_justify="left",
                  caption=seeds_note(results), caption_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < 2 else "right", no_wrap=i == 0)
    for row in rows:
        style = "dim" if row[0][0].startswith("real") else None
        table.add_row(*(f"[bold green]{text} ★[/bold green]" if is_best else text for text, is_best in row), style=style)
    return table


def markdown_table(results: Results) -> str:
    header, rows = table_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(f"**{t}**" if b else t for t, b in row) + " |")
    return "\n".join(lines)


# -- against a baseline ---------------------------------------------------------------------------

def baseline_label(results: Results, baseline: str | None = None) -> str:
    """The contender the others are measured against: `baseline`, by default the first one named."""
    labels = list(results.contenders)
    if baseline is None:
        return labels[0]
    if baseline not in labels:
        raise GanzooError(f"--baseline {baseline!r} is not one of this comparison's models ({', '.join(labels)}).")
    return baseline


def difference_cell(difference: Interval, direction: str, seeds: int | None = None) -> tuple[str, str]:
    """(text, verdict) of one paired difference: '−4.2 [−6.1, −2.3]' and 'better' / 'worse' only when the
    interval excludes zero; one seed: the difference alone, said to have no interval; no seed in common: '-'."""
    if difference.n == 0:
        return "-", ""
    if not difference.has_interval:
        return f"{signed(difference.mean)} (1 seed, no interval)", ""
    text = f"{signed(difference.mean)} [{signed(difference.low)}, {signed(difference.high)}]"
    if seeds is not None and difference.n != seeds:
        text += f" ({difference.n} seeds)"
    return text, verdict(difference, direction)


def difference_rows(results: Results, baseline: str | None = None) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Header and rows of (cell text, verdict) for every model against the baseline, per ranked score: the
    paired-seed difference model − baseline with its 95% interval."""
    base = baseline_label(results, baseline)
    metrics = ranked(results)
    arrows = {"lower": " ↓", "higher": " ↑"}
    header = ["model"] + [f"Δ {m}{arrows[better(m)]}" for m in metrics]
    seeds = max(seed_counts(results), default=0)
    rows = []
    for label, entry in results.contenders.items():
        if label == base:
            continue
        cells = [difference_cell(paired_difference(entry, results.contenders[base], m), better(m), seeds)
                 for m in metrics]
        rows.append([(label, "")] + cells)
    return header, rows


def markdown_differences(results: Results, baseline: str | None = None) -> str:
    header, rows = difference_rows(results, baseline)
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in rows:
        lines.append("| " + " | ".join(f"**{text}** {mark}" if mark else text for text, mark in row) + " |")
    return "\n".join(lines)


def rich_differences(results: Results, baseline: str | None = None) -> Table:
    base = baseline_label(results, baseline)
    header, rows = difference_rows(results, base)
    table = Table(title=f"against {base} (model − {base}, paired by seed, 95% interval; marked where it excludes 0)",
                  title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0)
    colours = {"better": "bold green", "worse": "bold red"}
    for row in rows:
        table.add_row(*(f"[{colours[mark]}]{text} {mark}[/{colours[mark]}]" if mark else text for text, mark in row))
    return table


def differences_note(base: str = "the baseline") -> str:
    """What a differences table's cells are, for the baseline named `base`."""
    return (f"Each cell: the model's score minus {base}'s, seed by seed (the same seed is the same initialisation "
            f"stream and data order for both), averaged, with the Student t 95% interval of that mean difference. "
            f"It is marked better or worse only when the interval excludes zero; otherwise the two cannot be told "
            f"apart from seed noise under this budget.")


# -- the report folder ---------------------------------------------------------------------------

def write_report(results: Results, out: Path, command: str, baseline: str | None = None) -> Path:
    """samples.png, losses.png, metrics.png, pareto.png and report.md beside results.json."""
    import matplotlib
    matplotlib.use("Agg")                          # files only, no display needed
    import matplotlib.pyplot as plt

    pictures = {"samples": side_by_side_samples(results, out / "samples.png", plt),
                "losses": loss_curves(results, out / "losses.png", plt),
                "metrics": metric_curves(results, out / "metrics.png", plt),
                "pareto": pareto_plot(results, out / "pareto.png", plt),
                "precision_recall": precision_recall_plot(results, out / "precision_recall.png", plt)}
    s = results.settings
    budget = f"{s['budget']:g} s of training each" if s.get("budget") else f"{s['epochs']} epoch(s) each"
    env = results.environment
    lines = [
        "# ganzoo compare", "",
        f"`{command}`", "",
        f"Data **{s['data']}**, the same preprocessing, batch size and seeds for every trained model; "
        f"{budget}; seeds {s['seed']}..{s['seed'] + s['seeds'] - 1}. Scores from "
        f"{s['n'] or 'the metrics’ default number of'} samples (latent seed 0); the last row scores real training "
        f"images the same way — the floor. "
        f"Device: {env.get('gpu') or env.get('device')} ({env.get('cpus')} CPUs), torch {env.get('torch')}.", "",
        seeds_note(results), "",
        markdown_table(results), "",
        f"img/s: images trained ÷ training time; train time: {TRAINING_TIME} (under an equal --budget it is "
        f"the budget for every model, so it is not ranked); peak mem: "
        + ("the CUDA allocator's peak." if env.get("gpu") else
           "the process's peak resident memory while that model trained (libraries included)."), "",
    ]
    if len(results.contenders) > 1 and ranked(results):
        lines += [f"## Against the baseline, {baseline_label(results, baseline)}", "",
                  differences_note(baseline_label(results, baseline)), "", markdown_differences(results, baseline), ""]
    notes = [f"- **{label}** (seed {r.seed}): {r.status} — {r.message}"
             for label, e in results.contenders.items() for r in e.runs if r.status != "ok"]
    if notes:
        lines += ["Runs that did not end well:", "", *notes, ""]
    lines += ["## Every seed", "", markdown_seeds(results), ""]
    titles = {"samples": "Samples from the same fixed noise", "losses": "Losses",
              "metrics": "Scores against training time",
              "pareto": "Quality against training time (one point per seed; the dashed line is the Pareto front)",
              "precision_recall": "Precision against recall"}
    for key, path in pictures.items():
        if path:
            lines += [f"## {titles[key]}", "", f"![{key}]({path.name})", ""]
    lines += memorisation_section(results, out)
    lines += protocol_section(results)
    lines += ["Every number is in `results.json`; the training runs are in `runs/` "
              "(`ganzoo sample runs/<run>/<model>.safetensors` draws more samples).", ""]
    report = out / "report.md"
    atomic_write(report, lambda tmp: tmp.write_text("\n".join(lines)))
    return report


def markdown_seeds(results: Results) -> str:
    """Every run, one row per model and seed, the bad ones included: status, ranked scores, training time."""
    metrics = ranked(results)
    header = ["model", "seed", "status"] + metrics + ["train time (s)", "wall time (s)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---|" + "---:|" * (len(metrics) + 2)]
    for label, entry in results.contenders.items():
        for run in entry.runs:
            cells = [label, "-" if run.seed is None else str(run.seed), run.status]
            cells += [format_value(run.scores[m]) if m in run.scores else "-" for m in metrics]
            cells += [f"{t:,.0f}" if t else "-" for t in (run.train_time_s, run.wall_time_s)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pareto_front(points: list[tuple[float, float]], direction: str) -> list[tuple[float, float]]:
    """The points no other point beats on both training time (less) and quality (better), by time."""
    front, best = [], None
    for time_s, value in sorted(points, key=lambda p: (p[0], p[1] if direction == "lower" else -p[1])):
        if best is None or (value < best if direction == "lower" else value > best):
            front.append((time_s, value))
            best = value
    return front


def pareto_plot(results: Results, path: Path, plt) -> Path | None:
    """Each ranked score against training time, one point per seed (a colour per model), the real-data floor
    dashed, and the Pareto front over every seed's point: what no run beat both faster and better."""
    metrics = ranked(results)
    points = {m: {label: [(r.train_time_s, r.scores[m]) for r in e.runs
                          if r.train_time_s and m in r.scores and math.isfinite(r.scores[m])]
                  for label, e in results.contenders.items()} for m in metrics}
    metrics = [m for m in metrics if any(points[m].values())]
    if not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.8 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        direction = better(m)
        for i, (label, xy) in enumerate(points[m].items()):
            if xy:
                ax.scatter([x for x, _ in xy], [y for _, y in xy], color=f"C{i}", s=22, alpha=0.85, label=label)
        front = pareto_front([p for xy in points[m].values() for p in xy], direction)
        if len(front) > 1:
            ax.step([x for x, _ in front], [y for _, y in front], where="post", color="black", ls=":", lw=1,
                    label="Pareto front")
        real = (results.real or {}).get(m)
        if real is not None and math.isfinite(real):
            ax.axhline(real, color="gray", ls="--", lw=1, label="real data")
        values = [y for xy in points[m].values() for _, y in xy] + ([real] if real else [])
        if values and min(values) > 0 and max(values) / min(values) > 100:
            ax.set_yscale("log")
        ax.set_title(f"{m} ({direction} is better)", fontsize=9)
        ax.set_xlabel("training time (s)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path, plt)


def _first_weights(entry: ContenderResult) -> Path | None:
    for run in entry.runs:
        if run.status == "diverged":
            continue
        try:
            weights = weights_file(run.run_dir)
        except GanzooError:
            continue
        if weights.is_file():                    # a report rebuilt from results.json alone may lack the runs
            return weights
    return None


def side_by_side_samples(results: Results, path: Path, plt, n: int = 64) -> Path | None:
    """One panel per model: its first seed's samples, every model fed the same latent vectors."""
    panels = []
    for label, entry in results.contenders.items():
        weights = _first_weights(entry)
        if weights is None:
            panels.append((label, None))
            continue
        generator, config = load_generator(weights)
        images = sample(generator, config, n, seed=0, uint8=True)           # [n, C, H, W] uint8, same z per seed
        panels.append((label, make_grid(images, nrow=grid_columns(n), padding=2, pad_value=255)))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for ax, (label, grid) in zip(axes[0], panels):
        ax.set_title(label)
        ax.axis("off")
        if grid is None:
            ax.text(0.5, 0.5, "diverged", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(grid.permute(1, 2, 0).numpy().squeeze(), cmap="gray", vmin=0, vmax=255)
    return _save(fig, path, plt)


def loss_curves(results: Results, path: Path, plt) -> Path | None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    drawn = False
    for i, (label, entry) in enumerate(results.contenders.items()):
        color = f"C{i}"
        for j, run in enumerate(entry.runs):
            records = loss_records(RunFiles(run.run_dir, model="").records())
            if not records:
                continue
            steps = [r["step"] for r in records]
            for ax, key in zip(axes, ("loss_d", "loss_g")):
                ax.plot(steps, [r[key] for r in records], color=color, alpha=0.9 if j == 0 else 0.4, lw=1,
                        label=label if j == 0 else None)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    for ax, title in zip(axes, ("discriminator loss", "generator loss")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend()
    return _save(fig, path, plt)


def metric_curves(results: Results, path: Path, plt) -> Path | None:
    names = list(dict.fromkeys(k for e in results.contenders.values() for r in e.runs
                               for point in r.curve for k in point.scores))
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for i, (label, entry) in enumerate(results.contenders.items()):
            for j, run in enumerate(entry.runs):
                points = [p for p in run.curve if name in p.scores]
                if points:
                    ax.plot([p.train_time_s for p in points], [p.scores[name] for p in points], "o-",
                            color=f"C{i}", alpha=0.9 if j == 0 else 0.4, ms=3, label=label if j == 0 else None)
        real = (results.real or {}).get(name)
        if real is not None and math.isfinite(real):
            ax.axhline(real, color="gray", ls="--", lw=1, label="real data")
        values = [v for line in ax.get_lines() for v in line.get_ydata() if math.isfinite(v)]
        if values and min(values) > 0 and max(values) / min(values) > 100:
            ax.set_yscale("log")                 # distances fall by orders of magnitude early in training
        direction = better(name)
        ax.set_title(name + (f" ({direction} is better)" if direction else ""), fontsize=9)
        ax.set_xlabel("training time (s)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save(fig, path, plt)


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
