"""`ganzoo compare`: train (or load) several models under the same data, seeds and budget; score them alike.

    ganzoo compare dcgan basicgan --data mnist --budget 5m --seeds 3
    ganzoo compare runs/dcgan-mnist runs/basicgan-mnist        # finished runs: evaluate only

Every trained model gets the same dataset, image size, channels, batch size and seeds, and either the
same number of epochs or the same training time (`--budget`, counted inside the training loop, so data
loading and evaluation do not eat into it). Training happens in segments (one per epoch, or `--points`
slices of the budget), each continuing the last from its checkpoint (bit for bit, see ganzoo.train), so
the models can be scored at several moments without the scoring being timed as training.

The report folder holds:
    report.md        the table, the plots and the settings, ready to attach to a paper or an issue
    results.json     every number (per seed, per evaluation point), the settings, versions
    samples.png      each model's samples from the same fixed noise, side by side
    losses.png       D's and G's losses against steps
    metrics.png      each metric against training time
    runs/            the training runs themselves (resumable; `ganzoo sample` works on them)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from .terminal import Console
from rich.table import Table

from .checkpoint import atomic_write, generator_weights, load_generator
from .config import TRAINING_TIME, UNLIMITED_EPOCHS, RunConfig
from .errors import GanzooError, Interrupted
from .guard import discriminator_won
from .train import read_metrics


# -- what a comparison is made of -----------------------------------------------------------------

@dataclass
class Contender:
    """One column of the comparison: a model to train, or a finished run / weights file to score."""

    label: str
    model: str
    path: Path | None = None           # finished run folder or weights file; None: train it here
    config: RunConfig | None = None    # a finished one's config, read from its weights

    @property
    def trained_here(self) -> bool:
        return self.path is None


@dataclass
class Settings:
    data: str = "mnist"
    data_dir: str | None = None
    epochs: int | None = None          # equal epochs ...
    budget: float | None = None        # ... or equal training seconds
    points: int = 4                    # evaluation points along a --budget run
    seeds: int = 1
    seed: int = 0                      # first seed; the others follow
    n: int | None = None               # samples for the final scores (default: what the metrics ask for)
    curve_n: int = 2000                # samples at the intermediate evaluation points
    metrics: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)   # RunConfig fields set alike for every model
    device: str = "auto"
    download: bool = True


def parse_contenders(names: list[str]) -> list[Contender]:
    """Registered model names, finished run folders or weights files; labels made unique."""
    from .plugins import registries

    regs = registries()
    contenders = []
    for name in names:
        path = Path(name)
        if name in regs.models and not path.exists():
            contenders.append(Contender(label=name, model=name))
        elif path.exists():
            weights = generator_weights(path)
            _, config = load_generator(weights)
            contenders.append(Contender(label=path.stem if path.is_file() else path.name, model=config.model,
                                        path=path, config=config))
        else:
            raise GanzooError(f"{regs.models.unknown_message(name)} (Or give a finished run folder or a "
                              f".safetensors file.)")
    if len(contenders) < 2:
        raise GanzooError("Compare needs at least two models or runs, e.g. `ganzoo compare dcgan basicgan`.")
    seen: dict[str, int] = {}
    for c in contenders:
        seen[c.label] = seen.get(c.label, 0) + 1
        if seen[c.label] > 1:
            c.label = f"{c.label}-{seen[c.label]}"
    return contenders


# -- measuring ---------------------------------------------------------------------------------------

class PeakMemory:
    """Peak memory while a block runs: CUDA's allocator peak on a GPU, else the process's resident set
    (sampled every 50 ms, since the OS peak counts the whole process's life)."""

    def __init__(self, device: torch.device):
        self.device, self.peak, self._stop = device, 0, threading.Event()

    @staticmethod
    def resident() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):   # not Linux: the lifetime peak is the best there is
            scale = 1 if platform.system() == "Darwin" else 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.resident())

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak = self.resident()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self.resident())
        return False


def read_records(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return read_metrics(path) if path.is_file() else []


def loss_records(records: list[dict]) -> list[dict]:
    return [r for r in records if "loss_d" in r]


def d_collapsed(records: list[dict]) -> bool:
    """D has won (see ganzoo.guard) over the last quarter of the logged steps (at least three logs)."""
    losses = loss_records(records)
    tail = losses[-max(3, len(losses) // 4):]
    return len(losses) >= 3 and all(discriminator_won(r) for r in tail)


def throughput(losses: list[dict], batch_size: int | None) -> dict:
    """Training time (config.TRAINING_TIME, as the log's last record has it) and images trained ÷ that time.

    None for both when the log does not say (a run from an older ganzoo, or no log at all).
    """
    last = losses[-1] if losses else {}
    seconds = last.get("train_time")
    if not seconds or not batch_size:
        return {"train_time_s": seconds or None, "images_per_s": None}
    return {"train_time_s": seconds, "images_per_s": last["step"] * batch_size / seconds}


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


# -- the comparison ------------------------------------------------------------------------------

class Comparison:
    def __init__(self, contenders: list[Contender], settings: Settings, out: str | Path, *,
                 console: Console | None = None, resume: bool = False, overwrite: bool = False):
        from .device import select_device

        self.contenders, self.settings, self.out = contenders, settings, Path(out)
        self.console = console or Console(stderr=True)
        self.device = select_device(settings.device)
        self.results_file = self.out / "results.json"
        if settings.epochs is not None and settings.budget is not None:
            raise GanzooError("Give --epochs or --budget, not both: models compare at equal epochs or equal time.")
        if settings.seeds < 1:
            raise GanzooError(f"--seeds must be a positive integer, got {settings.seeds}.")
        if settings.points < 1:
            raise GanzooError(f"--points must be a positive integer, got {settings.points}.")
        if settings.epochs is None and settings.budget is None:
            settings.epochs = 1
        self.results: dict[str, Any] = {"settings": dataclasses.asdict(settings), "contenders": {}}
        if self.results_file.exists():
            if resume:
                previous = json.loads(self.results_file.read_text())
                if previous.get("settings") != self.results["settings"]:
                    raise GanzooError(f"{self.out} holds a comparison with other settings; choose another --out "
                                      f"or pass --overwrite.")
                self.results = previous
            elif not overwrite:
                raise GanzooError(f"{self.out} already holds a comparison; continue it with --resume, choose another "
                                  f"--out, or pass --overwrite.")

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write(self.results_file, lambda tmp: tmp.write_text(json.dumps(self.results, indent=2)))

    # .. training ..

    def config_for(self, contender: Contender, seed: int) -> RunConfig:
        from .run import make_config

        s = self.settings
        overrides = {**s.overrides, "data": s.data, "data_dir": s.data_dir, "seed": seed, "device": s.device,
                     "epochs": s.epochs or 1}
        config = make_config(contender.model, overrides)
        config.out = str(self.out / "runs" / f"{contender.label}-seed{seed}")
        return config

    def segments(self, config: RunConfig):
        """(epochs, budget) at the end of each training segment: one per epoch, or --points equal slices of
        time (a run's budget counts its whole training time, so each slice ends at a larger budget)."""
        if self.settings.budget is not None:
            for k in range(1, self.settings.points + 1):
                yield UNLIMITED_EPOCHS, self.settings.budget * k / self.settings.points
        else:
            for epoch in range(1, self.settings.epochs + 1):
                yield epoch, 0.0

    def train_one(self, contender: Contender, seed: int) -> dict:
        """Train one model with one seed, scoring it after each segment; a divergence is recorded, not raised."""
        from .evaluate import evaluate
        from .run import train

        config = self.config_for(contender, seed)
        run = {"seed": seed, "run_dir": config.out, "status": "ok", "message": "", "curve": []}
        started = False
        with PeakMemory(self.device) as memory:
            for epochs, budget in self.segments(config):
                if budget and run["curve"] and run["curve"][-1]["train_time_s"] >= budget:
                    continue                  # the last step ran past this slice's end too: nothing to train
                config.epochs, config.budget = epochs, budget
                try:
                    weights = train(config, resume=started, overwrite=not started, download=self.settings.download,
                                    console=self.console)
                except Interrupted:
                    raise
                except GanzooError as exc:                    # NaN/Inf, or anything else that ends a run
                    run["status"], run["message"] = "diverged" if "diverg" in str(exc).lower() else "failed", str(exc)
                    self.console.print(f"[red]{contender.label} (seed {seed}) stopped[/red]: {exc}")
                    break
                started = True
                last = (loss_records(read_records(Path(config.out))) or [{}])[-1]
                scores = evaluate(weights, metrics=self.settings.metrics, n=self.settings.curve_n,
                                  data_dir=self.settings.data_dir, download=self.settings.download,
                                  device=self.device, console=self.console)
                run["curve"].append({"train_time_s": last.get("train_time", 0.0), "step": last.get("step", 0),
                                     "scores": scores})
        run["peak_memory_mb"] = memory.peak / 2 ** 20
        return self.finish_run(run, Path(config.out), weights_of=Path(config.out) / f"{config.model}.safetensors",
                               batch_size=config.batch_size)

    def finish_run(self, run: dict, run_dir: Path | None, weights_of: Path, batch_size: int | None) -> dict:
        """Steps, training time and throughput from the run's log, the final scores at the full sample count."""
        from .evaluate import evaluate

        records = read_records(run_dir) if run_dir else []
        losses = loss_records(records)
        run["steps"] = losses[-1]["step"] if losses else None
        run["epochs_done"] = losses[-1]["epoch"] if losses else None
        run.update(throughput(losses, batch_size))
        if run["status"] == "ok" and d_collapsed(records):
            run["status"], run["message"] = "D collapsed", ("D separated real from fake almost perfectly for the "
                                                            "last quarter of training: G gets no useful gradient.")
        run["scores"] = {}
        if run["status"] != "diverged" and weights_of.is_file():
            run["scores"] = evaluate(weights_of, metrics=self.settings.metrics, n=self.settings.n,
                                     data_dir=self.settings.data_dir, download=self.settings.download,
                                     device=self.device, console=self.console)
        return run

    def score_finished(self, contender: Contender) -> dict:
        weights = generator_weights(contender.path)
        run_dir = contender.path if contender.path.is_dir() else None
        run = {"seed": None, "run_dir": str(contender.path), "status": "ok", "message": "", "curve": [],
               "peak_memory_mb": None}
        return self.finish_run(run, run_dir, weights, batch_size=contender.config.batch_size)

    def parameters(self, contender: Contender) -> dict:
        from .models import build_discriminator, build_generator, count_parameters

        if contender.trained_here:
            config = self.config_for(contender, self.settings.seed)
            return {"G": count_parameters(build_generator(config)), "D": count_parameters(build_discriminator(config))}
        generator, _ = load_generator(generator_weights(contender.path))
        return {"G": count_parameters(generator), "D": None}

    def run(self) -> dict:
        from .evaluate import evaluate_real

        self.out.mkdir(parents=True, exist_ok=True)
        shapes = set()
        for contender in self.contenders:
            entry = self.results["contenders"].setdefault(contender.label, {
                "model": contender.model, "source": str(contender.path) if contender.path else "trained here",
                "runs": []})
            entry["parameters"] = self.parameters(contender)
            seeds = [self.settings.seed + i for i in range(self.settings.seeds)] if contender.trained_here else [None]
            done = {r["seed"] for r in entry["runs"]}
            for seed in seeds:
                if seed in done:
                    self.console.print(f"{contender.label} seed {seed}: done earlier, kept")
                    continue
                self.console.rule(f"{contender.label}" + (f" · seed {seed}" if seed is not None else ""))
                run = self.train_one(contender, seed) if contender.trained_here else self.score_finished(contender)
                entry["runs"].append(run)
                self.save()                                   # nothing lost if a later model fails
            config = self.config_of(contender)
            shapes.add((config.data, config.image_size, config.channels))
        if len(shapes) > 1:
            self.console.print(f"[yellow]warning[/yellow]: the contenders were trained on different data or sizes "
                               f"{sorted(shapes)}; their scores are not comparable.")
        data, image_size, channels = sorted(shapes)[0]
        if "real" not in self.results:
            self.console.rule("real data (the floor)")
            self.results["real"] = evaluate_real(data=data, image_size=image_size, channels=channels,
                                                 metrics=self.settings.metrics, n=self.settings.n,
                                                 data_dir=self.settings.data_dir, download=self.settings.download,
                                                 device=self.device, console=self.console)
        self.results["environment"] = {"device": str(self.device), "torch": torch.__version__,
                                       "platform": platform.platform(), "cpus": os.cpu_count(),
                                       "gpu": torch.cuda.get_device_name(self.device) if self.device.type == "cuda"
                                       else None}
        self.summarise()
        self.save()
        return self.results

    def config_of(self, contender: Contender) -> RunConfig:
        if contender.trained_here:
            return self.config_for(contender, self.settings.seed)
        return contender.config

    def summarise(self) -> None:
        """Mean and spread over seeds of every number in the table."""
        for entry in self.results["contenders"].values():
            runs = entry["runs"]
            names = list(dict.fromkeys(k for r in runs for k in r["scores"]))
            summary = {name: mean_std([r["scores"].get(name) for r in runs]) for name in names}
            for key in ("images_per_s", "train_time_s", "peak_memory_mb"):
                summary[key] = mean_std([r.get(key) for r in runs])
            entry["summary"] = {k: {"mean": m, "std": s} for k, (m, s) in summary.items()}
            entry["status"] = ", ".join(sorted({r["status"] for r in runs}))


# -- showing it ----------------------------------------------------------------------------------

RESOURCE_COLUMNS = {  # summary key: (header, better, format)
    "images_per_s": ("img/s", "higher", "{:,.0f}"),
    "train_time_s": ("train time (s)", "lower", "{:,.0f}"),
    "peak_memory_mb": ("peak mem (MiB)", "lower", "{:,.0f}"),
}


def score_columns(results: dict) -> list[str]:
    names = [k for e in results["contenders"].values() for r in e["runs"] for k in r["scores"]]
    return list(dict.fromkeys(names + list(results.get("real", {}))))


def comparable(results: dict, key: str) -> bool:
    """Whether a column can rank the contenders: not the training time when the budget fixed it for all."""
    return not (key == "train_time_s" and results["settings"].get("budget"))


def best_labels(results: dict, key: str, direction: str) -> set[str]:
    """The one contender whose mean is strictly best in a comparable column; empty on a tie for the best
    (as shown, 4 significant digits), with fewer than two numbers to compare, or when the column cannot
    rank (see comparable). Diverged runs do not compete."""
    if direction not in ("lower", "higher") or not comparable(results, key):
        return set()
    means = {label: e["summary"].get(key, {}).get("mean", math.nan) for label, e in results["contenders"].items()
             if "diverged" not in e["status"]}
    means = {k: float(f"{v:.4g}") for k, v in means.items() if v is not None and math.isfinite(v)}
    if len(means) < 2:
        return set()
    target = min(means.values()) if direction == "lower" else max(means.values())
    best = {k for k, v in means.items() if v == target}
    return best if len(best) == 1 else set()


def format_mean_std(summary: dict, fmt: str | None = None) -> str:
    from .evaluate import format_value

    mean, std = summary.get("mean", math.nan), summary.get("std", math.nan)
    if mean is None or not math.isfinite(mean):
        return "-"
    text = fmt.format(mean) if fmt else format_value(mean)
    if std and math.isfinite(std) and std > 1e-9 * max(1.0, abs(mean)):   # not round-off: 1 ± 2.5e-15 is 1
        text += " ± " + (fmt.format(std) if fmt else format_value(std))
    return text


def table_rows(results: dict) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Header and rows (cell text, is-best) shared by the terminal table and report.md."""
    from .evaluate import better, format_value

    metrics = score_columns(results)
    header = ["model", "status", "params G / D"] + metrics + [h for h, _, _ in RESOURCE_COLUMNS.values()]
    arrows = {"lower": " ↓", "higher": " ↑"}
    header = header[:3] + [m + arrows.get(better(m), "") for m in metrics] + header[3 + len(metrics):]
    best = {m: best_labels(results, m, better(m)) for m in metrics}
    best.update({k: best_labels(results, k, d) for k, (_, d, _) in RESOURCE_COLUMNS.items()})
    rows = []
    for label, e in results["contenders"].items():
        p = e.get("parameters", {})
        params = " / ".join(f"{v / 1e6:.2f}M" if v else "-" for v in (p.get("G"), p.get("D")))
        seeds = len(e["runs"])
        row = [(f"{label}" + (f" ({seeds} seeds)" if seeds > 1 else ""), False), (e["status"], False), (params, False)]
        row += [(format_mean_std(e["summary"].get(m, {})), label in best[m]) for m in metrics]
        row += [(format_mean_std(e["summary"].get(k, {}), fmt), label in best[k])
                for k, (_, _, fmt) in RESOURCE_COLUMNS.items()]
        rows.append(row)
    real = results.get("real", {})
    rows.append([("real data (floor)", False), ("", False), ("", False)]
                + [(format_value(real[m]) if m in real else "-", False) for m in metrics]
                + [("", False)] * len(RESOURCE_COLUMNS))
    return header, rows


def rich_table(results: dict) -> Table:
    header, rows = table_rows(results)
    table = Table(title="comparison (mean ± std over seeds; ★ a column's one best value)", title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < 2 else "right", no_wrap=i == 0)
    for row in rows:
        style = "dim" if row[0][0].startswith("real") else None
        table.add_row(*(f"[bold green]{text} ★[/bold green]" if is_best else text for text, is_best in row), style=style)
    return table


def markdown_table(results: dict) -> str:
    header, rows = table_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 2)) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(f"**{t}**" if b else t for t, b in row) + " |")
    return "\n".join(lines)


# -- the report folder ---------------------------------------------------------------------------

def write_report(results: dict, out: Path, command: str) -> Path:
    """samples.png, losses.png, metrics.png and report.md beside results.json."""
    import matplotlib
    matplotlib.use("Agg")                          # files only, no display needed
    import matplotlib.pyplot as plt

    pictures = {"samples": side_by_side_samples(results, out / "samples.png", plt),
                "losses": loss_curves(results, out / "losses.png", plt),
                "metrics": metric_curves(results, out / "metrics.png", plt)}
    s = results["settings"]
    budget = f"{s['budget']:g} s of training each" if s.get("budget") else f"{s['epochs']} epoch(s) each"
    env = results.get("environment", {})
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
        f"the budget for every model, so it is not ranked); peak mem: " + ("the CUDA allocator's peak." if env.get("gpu") else
        "the process's peak resident memory while that model trained (libraries included)."), "",
    ]
    notes = [f"- **{label}** (seed {r['seed']}): {r['status']} — {r['message']}"
             for label, e in results["contenders"].items() for r in e["runs"] if r["status"] != "ok"]
    if notes:
        lines += ["Runs that did not end well:", "", *notes, ""]
    titles = {"samples": "Samples from the same fixed noise", "losses": "Losses",
              "metrics": "Scores against training time"}
    for key, path in pictures.items():
        if path:
            lines += [f"## {titles[key]}", "", f"![{key}]({path.name})", ""]
    lines += ["Every number is in `results.json`; the training runs are in `runs/` "
              "(`ganzoo sample runs/<run>/<model>.safetensors` draws more samples).", ""]
    report = out / "report.md"
    atomic_write(report, lambda tmp: tmp.write_text("\n".join(lines)))
    return report


def _first_weights(entry: dict) -> Path | None:
    for run in entry["runs"]:
        if run["status"] == "diverged":
            continue
        path = Path(run["run_dir"])
        try:
            return generator_weights(path)
        except GanzooError:
            continue
    return None


def side_by_side_samples(results: dict, path: Path, plt, n: int = 64) -> Path | None:
    """One panel per model: its first seed's samples, every model fed the same latent vectors."""
    from torchvision.utils import make_grid

    from .evaluate import generate_images

    panels = []
    for label, entry in results["contenders"].items():
        weights = _first_weights(entry)
        if weights is None:
            panels.append((label, None))
            continue
        generator, config = load_generator(weights)
        images = generate_images(generator, config, n, seed=0)              # [n, C, H, W] uint8, same z per seed
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


def loss_curves(results: dict, path: Path, plt) -> Path | None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    drawn = False
    for i, (label, entry) in enumerate(results["contenders"].items()):
        color = f"C{i}"
        for j, run in enumerate(entry["runs"]):
            records = loss_records(read_records(Path(run["run_dir"])))
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


def metric_curves(results: dict, path: Path, plt) -> Path | None:
    names = list(dict.fromkeys(k for e in results["contenders"].values() for r in e["runs"]
                               for point in r["curve"] for k in point["scores"]))
    if not names:
        return None
    from .evaluate import better

    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for i, (label, entry) in enumerate(results["contenders"].items()):
            for j, run in enumerate(entry["runs"]):
                points = [p for p in run["curve"] if name in p["scores"]]
                if points:
                    ax.plot([p["train_time_s"] for p in points], [p["scores"][name] for p in points], "o-",
                            color=f"C{i}", alpha=0.9 if j == 0 else 0.4, ms=3, label=label if j == 0 else None)
        real = results.get("real", {}).get(name)
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
