"""Showing a comparison: the table (terminal and markdown), report.md and its three plots."""

from __future__ import annotations

import math
from pathlib import Path

from rich.table import Table
from torchvision.utils import make_grid

from ..checkpoint import atomic_write, load_generator
from ..config import TRAINING_TIME
from ..errors import GanzooError
from ..evaluate import better, format_value
from ..runfiles import RunFiles, weights_file
from ..sampling import sample
from .quality import memorisation_section, precision_recall_plot, protocol_section
from .results import ContenderResult, Results, Stat, loss_records

RESOURCE_COLUMNS = {  # summary key: (header, better, format)
    "images_per_s": ("img/s", "higher", "{:,.0f}"),
    "train_time_s": ("train time (s)", "lower", "{:,.0f}"),
    "peak_memory_mb": ("peak mem (MiB)", "lower", "{:,.0f}"),
}


def comparable(results: Results, key: str) -> bool:
    """Whether a column can rank the contenders: not the training time when the budget fixed it for all."""
    return not (key == "train_time_s" and results.settings.get("budget"))


def best_labels(results: Results, key: str, direction: str) -> set[str]:
    """The one contender whose mean is strictly best in a comparable column; empty on a tie for the best
    (as shown, 4 significant digits), with fewer than two numbers to compare, or when the column cannot
    rank (see comparable). Diverged runs do not compete."""
    if direction not in ("lower", "higher") or not comparable(results, key):
        return set()
    means = {label: e.summary[key].mean if key in e.summary else math.nan for label, e in results.contenders.items()
             if "diverged" not in e.status}
    means = {k: float(f"{v:.4g}") for k, v in means.items() if v is not None and math.isfinite(v)}
    if len(means) < 2:
        return set()
    target = min(means.values()) if direction == "lower" else max(means.values())
    best = {k for k, v in means.items() if v == target}
    return best if len(best) == 1 else set()


def format_mean_std(stat: Stat | None, fmt: str | None = None) -> str:
    mean, std = (stat.mean, stat.std) if stat else (math.nan, math.nan)
    if mean is None or not math.isfinite(mean):
        return "-"
    text = fmt.format(mean) if fmt else format_value(mean)
    if std and math.isfinite(std) and std > 1e-9 * max(1.0, abs(mean)):   # not round-off: 1 ± 2.5e-15 is 1
        text += " ± " + (fmt.format(std) if fmt else format_value(std))
    return text


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
        row += [(format_mean_std(e.summary.get(m)), label in best[m]) for m in metrics]
        row += [(format_mean_std(e.summary.get(k), fmt), label in best[k])
                for k, (_, _, fmt) in RESOURCE_COLUMNS.items()]
        rows.append(row)
    real = results.real or {}
    rows.append([("real data (floor)", False), ("", False), ("", False)]
                + [(format_value(real[m]) if m in real else "-", False) for m in metrics]
                + [("", False)] * len(RESOURCE_COLUMNS))
    return header, rows


def rich_table(results: Results) -> Table:
    header, rows = table_rows(results)
    table = Table(title="comparison (mean ± std over seeds; ★ a column's one best value)", title_justify="left")
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


# -- the report folder ---------------------------------------------------------------------------

def write_report(results: Results, out: Path, command: str) -> Path:
    """samples.png, losses.png, metrics.png and report.md beside results.json."""
    import matplotlib
    matplotlib.use("Agg")                          # files only, no display needed
    import matplotlib.pyplot as plt

    pictures = {"samples": side_by_side_samples(results, out / "samples.png", plt),
                "losses": loss_curves(results, out / "losses.png", plt),
                "metrics": metric_curves(results, out / "metrics.png", plt),
                "precision_recall": precision_recall_plot(results, out / "precision_recall.png", plt)}
    s = results.settings
    budget = f"{s['budget']:g} s of training each" if s.get("budget") else f"{s['epochs']} epoch(s) each"
    env = results.environment
    lines = [
        "# ganzoo compare", "",
        f"`{command}`", "",
        f"Data **{s['data']}**, the same preprocessing, batch size and seeds for every trained model; "
        f"{budget}; seeds {s['seed']}..{s['seed'] + s['seeds'] - 1}. Scores: mean ± std over seeds, from "
        f"{s['n'] or 'the metrics’ default number of'} samples (latent seed 0); the last row scores real training "
        f"images the same way — the floor. A column's one best value is in bold (none on a tie). "
        f"Device: {env.get('gpu') or env.get('device')} ({env.get('cpus')} CPUs), torch {env.get('torch')}.", "",
        markdown_table(results), "",
        f"img/s: images trained ÷ training time; train time: {TRAINING_TIME} (under an equal --budget it is "
        f"the budget for every model, so it is not ranked); peak mem: "
        + ("the CUDA allocator's peak." if env.get("gpu") else
           "the process's peak resident memory while that model trained (libraries included)."), "",
    ]
    notes = [f"- **{label}** (seed {r.seed}): {r.status} — {r.message}"
             for label, e in results.contenders.items() for r in e.runs if r.status != "ok"]
    if notes:
        lines += ["Runs that did not end well:", "", *notes, ""]
    titles = {"samples": "Samples from the same fixed noise", "losses": "Losses",
              "metrics": "Scores against training time", "precision_recall": "Precision against recall"}
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


def _first_weights(entry: ContenderResult) -> Path | None:
    for run in entry.runs:
        if run.status == "diverged":
            continue
        try:
            return weights_file(run.run_dir)
        except GanzooError:
            continue
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
        panels.append((label, make_grid(images, nrow=int(math.sqrt(n)), padding=2, pad_value=255)))
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
