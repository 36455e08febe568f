"""Running a comparison: the contenders, the settings they share, training in segments and scoring."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from ..checkpoint import load_generator
from ..files import atomic_write
from ..config import UNLIMITED_EPOCHS, RunConfig
from ..device import select_device
from ..errors import Diverged, GanzooError, Interrupted
from ..evaluate import Scores, evaluate, evaluate_real, resolve_metrics
from ..neighbours import draw_closest
from ..models import build_discriminator, build_generator, count_parameters
from ..plugins import Registries, registries
from ..resolve import make_config
from ..run import train
from ..runfiles import RunFiles, weights_file
from ..terminal import Console
from .protocols import check_protocols
from .quality import memorisation_picture
from .results import ContenderResult, CurvePoint, Results, RunResult, d_collapsed, loss_records, throughput


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
    resize: str | None = None          # how Inception metrics resize (None: their default, tf)


def parse_contenders(names: list[str], regs: Registries | None = None, seeds: int = 1) -> list[Contender]:
    """Registered model names, finished run folders or weights files; labels made unique. One registered model
    is enough when it trains over several seeds (its spread is the comparison: a leaderboard adding one model, or
    a dataset that leaves all but one model out)."""
    regs = regs or registries()
    contenders = []
    for name in names:
        path = Path(name)
        if name in regs.models and path.exists():             # `compare acgan` beside a run folder named acgan
            what = "folder" if path.is_dir() else "file"
            raise GanzooError(f"{name!r} is both a registered model and a {what} here; say which you mean: "
                              f"./{name} for the {what}, or the model from another folder (or rename the {what}).")
        if name in regs.models:
            contenders.append(Contender(label=name, model=name))
        elif path.exists():
            _, config = load_generator(weights_file(path))
            contenders.append(Contender(label=path.stem if path.is_file() else path.name, model=config.model,
                                        path=path, config=config))
        elif name in regs.pretrained:                          # scored as it is, like a finished run
            weights = weights_file(name)
            _, config = load_generator(weights)
            contenders.append(Contender(label=name, model=config.model, path=weights, config=config))
        else:
            raise GanzooError(f"{regs.models.unknown_message(name)} (Or give a finished run folder, a "
                              f".safetensors file or a pretrained generator: see `ganzoo pretrained`.)")
    one_model_over_seeds = len(contenders) == 1 and contenders[0].path is None and seeds >= 2
    if len(contenders) < 2 and not one_model_over_seeds:
        raise GanzooError("Compare needs at least two models or runs, e.g. `ganzoo compare dcgan basicgan`, or "
                          "one model over several seeds, e.g. `ganzoo compare dcgan --seeds 3`.")
    seen: dict[str, int] = {}
    for c in contenders:
        seen[c.label] = seen.get(c.label, 0) + 1
        if seen[c.label] > 1:
            c.label = f"{c.label}-{seen[c.label]}"
    return contenders


def inputs(contenders: list[Contender]) -> list[str]:
    """What each contender is, as a comparison's identity holds it: a model's name, or the absolute path of a
    finished run or weights file (a run folder named dcgan is not the model dcgan)."""
    return [f"{c.label}: {os.path.abspath(c.path) if c.path is not None else c.model}" for c in contenders]


def folder_name(label: str) -> str:
    """A label (made of model names, paths, a dataset's name) as one folder name: letters, digits, '.', '_' and
    '-' kept, any other run of characters (a '/', '..', a newline, a byte not UTF-8) one '_', so a report
    folder is always a new folder under its parent, never somewhere a path in the label points."""
    import re

    name = re.sub(r"[^A-Za-z0-9._-]|\.{2,}", "_", label)
    name = re.sub(r"_+", "_", name).strip("._-")[:120]
    return name or "compare"


def default_folder(contenders: list[Contender], data: str) -> Path:
    """reports/compare-<labels>-<data>, and where a contender is a path, a short digest of the inputs, so
    comparisons of different inputs (`compare runs/dcgan basicgan` and `compare dcgan basicgan`) never share
    a folder."""
    import hashlib

    name = folder_name(f"compare-{'-'.join(c.label for c in contenders)}-{data}")
    if any(c.path is not None for c in contenders):
        name += "-" + hashlib.sha256("\n".join(inputs(contenders)).encode()).hexdigest()[:8]
    return Path("reports") / name


def environment(device: torch.device) -> dict[str, Any]:
    """The machine a comparison ran on, as its results record it."""
    return {"device": str(device), "torch": torch.__version__, "platform": platform.platform(),
            "cpus": os.cpu_count(), "cpu": cpu_model(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else what platform knows), for reports."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


class Comparison:
    """Trains (or loads) each contender under the same settings, scores them alike, keeps Results."""

    def __init__(self, contenders: list[Contender], settings: Settings, out: str | Path, *,
                 console: Console | None = None, resume: bool = False, overwrite: bool = False):
        self.contenders, self.settings, self.out = contenders, settings, Path(out)
        self.console = console or Console(stderr=True)
        self.device = select_device(settings.device)
        self.results_file = self.out / "results.json"
        self.resume = resume
        self.exhibits: dict[str, Any] = {}           # what the last scoring left to show (memorisation)
        if settings.epochs is not None and settings.budget is not None:
            raise GanzooError("Give --epochs or --budget, not both: models compare at equal epochs or equal time.")
        if settings.seeds < 1:
            raise GanzooError(f"--seeds must be a positive integer, got {settings.seeds}.")
        if settings.points < 1:
            raise GanzooError(f"--points must be a positive integer, got {settings.points}.")
        if settings.epochs is None and settings.budget is None:
            settings.epochs = 1
        self.results = Results(settings={**dataclasses.asdict(settings), "inputs": inputs(contenders)})
        if self.results_file.exists() and not overwrite:
            previous = json.loads(self.results_file.read_text())
            theirs = dict(previous.get("settings") or {})
            theirs.setdefault("inputs", self.results.settings["inputs"])   # a file from before inputs were kept
            if theirs != self.results.settings:
                raise GanzooError(f"{self.out} holds a comparison of other models, inputs or settings; choose another "
                                  f"--out, or pass --overwrite to replace it.")
            if not resume:
                raise GanzooError(f"{self.out} already holds a comparison of these models and settings; continue it "
                                  f"with --resume, choose another --out, or pass --overwrite.")
            ours = self.results.settings
            self.results = Results.from_dict(previous)
            self.results.settings = ours

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write(self.results_file, lambda tmp: tmp.write_text(json.dumps(self.results.to_dict(), indent=2)))

    # .. training ..

    def config_for(self, contender: Contender, seed: int) -> RunConfig:
        s = self.settings
        overrides = {**s.overrides, "data": s.data, "data_dir": s.data_dir, "seed": seed, "device": s.device,
                     "epochs": s.epochs or 1}
        config = make_config(contender.model, overrides)
        config.out = str(self.out / "runs" / f"{contender.label}-seed{seed}")
        return config

    def segments(self) -> Iterator[tuple[int, float]]:
        """(epochs, budget) at the end of each training segment: one per epoch, or --points equal slices of
        time (a run's budget counts its whole training time, so each slice ends at a larger budget)."""
        if self.settings.budget is not None:
            for k in range(1, self.settings.points + 1):
                yield UNLIMITED_EPOCHS, self.settings.budget * k / self.settings.points
        else:
            for epoch in range(1, self.settings.epochs + 1):
                yield epoch, 0.0

    def options(self) -> dict[str, Any]:
        return {"resize": self.settings.resize} if self.settings.resize else {}

    def score(self, weights: Path, n: int | None) -> Scores:
        s = self.settings
        scores = evaluate(weights, metrics=s.metrics, n=n, data_dir=s.data_dir, download=s.download,
                          device=self.device, console=self.console, options=self.options())
        self.exhibits = scores.exhibits
        return scores

    def train_one(self, contender: Contender, seed: int) -> RunResult:
        """Train one model with one seed, scoring it after each segment; a divergence is recorded, not raised."""
        config = self.config_for(contender, seed)
        files = RunFiles(config.out, config.model)
        run = RunResult(seed=seed, run_dir=config.out)
        wall_start = time.perf_counter()
        key = f"{contender.label}/seed{seed}"
        # --resume: a run stopped part way continues from its checkpoint, after the segments it had finished
        started = self.resume and files.checkpoint.is_file()
        run.curve = list(self.results.unfinished.get(key, [])) if started else []
        if started:
            self.console.print(f"{contender.label} seed {seed}: continuing from its checkpoint in {config.out} "
                               f"({len(run.curve)} of its evaluation points done)", highlight=False)
        with PeakMemory(self.device) as memory:
            for segment, (epochs, budget) in enumerate(self.segments()):
                if segment < len(run.curve):
                    continue                  # finished before the interruption: its point is kept
                if budget and run.curve and run.curve[-1].train_time_s >= budget:
                    continue                  # the last step ran past this slice's end too: nothing to train
                config.epochs, config.budget = epochs, budget
                try:
                    weights = train(config, resume=started, overwrite=not started, download=self.settings.download,
                                    console=self.console)
                except Interrupted:
                    raise
                except GanzooError as exc:                    # NaN/Inf (Diverged), or anything else that ends a run
                    run.status, run.message = "diverged" if isinstance(exc, Diverged) else "failed", str(exc)
                    self.console.print(f"[red]{contender.label} (seed {seed}) stopped[/red]: {exc}")
                    break
                started = True
                last = (loss_records(files.records()) or [{}])[-1]
                scores = self.score(weights, self.settings.curve_n)
                run.curve.append(CurvePoint(last.get("train_time", 0.0), last.get("step", 0), scores,
                                            scores.protocol))
                self.results.unfinished[key] = run.curve
                self.save()                   # an interruption later keeps this point
        run.peak_memory_mb = memory.peak / 2 ** 20
        run = self.finish_run(run, files, batch_size=config.batch_size)
        run.wall_time_s = time.perf_counter() - wall_start
        run.finished_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return run

    def finish_run(self, run: RunResult, files: RunFiles | None, weights: Path | None = None, *,
                   batch_size: int | None) -> RunResult:
        """Steps, training time and throughput from the run's log, the final scores at the full sample count."""
        records = files.records() if files else []
        losses = loss_records(records)
        run.train_time_s, run.images_per_s = throughput(losses, batch_size)
        run.steps = losses[-1]["step"] if losses else None
        run.epochs_done = losses[-1]["epoch"] if losses else None
        if run.status == "ok" and d_collapsed(records):
            run.status, run.message = "D collapsed", ("D separated real from fake almost perfectly for the "
                                                      "last quarter of training: G gets no useful gradient.")
        weights = weights or (files.generator if files else None)
        if run.status != "diverged" and weights is not None and weights.is_file():
            run.scores = self.score(weights, self.settings.n)
            run.protocol = run.scores.protocol
        return run

    def score_finished(self, contender: Contender) -> RunResult:
        run_dir = contender.path if contender.path.is_dir() else None
        run = RunResult(seed=None, run_dir=str(contender.path), train_time_s=None)
        return self.finish_run(run, RunFiles(run_dir) if run_dir else None, weights_file(contender.path),
                               batch_size=contender.config.batch_size)

    def parameters(self, contender: Contender) -> dict[str, int | None]:
        if contender.trained_here:
            config = self.config_for(contender, self.settings.seed)
            return {"G": count_parameters(build_generator(config)), "D": count_parameters(build_discriminator(config))}
        generator, _ = load_generator(weights_file(contender.path))
        return {"G": count_parameters(generator), "D": None}

    def check(self) -> None:
        """Before anything trains or any folder is made: every contender's metrics are usable here (FID's
        Inception weights on disk, say), as `ganzoo run --eval-every` checks before its first epoch."""
        for contender in self.contenders:
            config = self.config_of(contender)
            resolve_metrics(self.settings.metrics, self.settings.data or config.data, config.channels)

    def run(self) -> Results:
        self.check()
        self.out.mkdir(parents=True, exist_ok=True)
        shapes, conditional = set(), False
        for contender in self.contenders:
            entry = self.results.contenders.setdefault(contender.label, ContenderResult(
                model=contender.model, source=str(contender.path) if contender.path else "trained here"))
            entry.parameters = self.parameters(contender)
            seeds = [self.settings.seed + i for i in range(self.settings.seeds)] if contender.trained_here else [None]
            done = {r.seed for r in entry.runs}
            for seed in seeds:
                if seed in done:
                    self.console.print(f"{contender.label} seed {seed}: done earlier, kept")
                    continue
                self.console.rule(f"{contender.label}" + (f" · seed {seed}" if seed is not None else ""))
                self.exhibits = {}
                run = self.train_one(contender, seed) if contender.trained_here else self.score_finished(contender)
                self.results.unfinished.pop(f"{contender.label}/seed{seed}", None)
                entry.runs.append(run)
                self.save()                                   # nothing lost if a later model fails
                self.draw_exhibits(contender.label, seed)
                self.check_protocols()
            config = self.config_of(contender)
            shapes.add((config.data, config.image_size, config.channels, config.split))
            conditional = conditional or config.conditional
        if len(shapes) > 1:
            self.console.print(f"[yellow]warning[/yellow]: the contenders were trained on different data, splits or "
                               f"sizes {sorted(shapes)}; their scores are not comparable.")
        data, image_size, channels, split = sorted(shapes)[0]
        if self.results.real is None:
            # the images the models learned from (--split), with their labels beside a conditional model: its
            # samples carry the classes they were drawn as, so the floor has class_agreement too
            self.console.rule(f"real data ({split}, the floor)")
            s = self.settings
            real = evaluate_real(data=data, image_size=image_size, channels=channels, metrics=s.metrics,
                                 n=s.n, split=split, data_dir=s.data_dir, download=s.download, device=self.device,
                                 console=self.console, options=self.options(), labelled=conditional)
            self.results.real, self.results.real_protocol = real, real.protocol
            self.save()
        self.check_protocols()
        self.results.environment = environment(self.device)
        for entry in self.results.contenders.values():
            entry.summarise()
        self.save()
        return self.results

    def check_protocols(self) -> None:
        """Refuse to go on when scores of one column were made under different protocols; all is in results.json."""
        try:
            check_protocols(self.results)
        except GanzooError as exc:
            raise GanzooError(f"{exc} Every number so far is in {self.results_file}.") from None

    def draw_exhibits(self, label: str, seed: int | None) -> None:
        """The memorisation metric's closest pairs for a model's first seed, beside the report."""
        exhibit = self.exhibits.get("memorisation")
        path = self.out / memorisation_picture(label)
        if exhibit is not None and not path.exists():
            draw_closest(exhibit, path, title=f"{label}" + (f" (seed {seed})" if seed is not None else "")
                         + ": the 8 samples closest to a training image")

    def config_of(self, contender: Contender) -> RunConfig:
        if contender.trained_here:
            return self.config_for(contender, self.settings.seed)
        return contender.config
