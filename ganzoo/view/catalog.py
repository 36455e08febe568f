"""What the viewer shows: an Entry per generator it can draw from, found by the sources.

`sources()` lists the functions that find entries; `discover(paths)` asks each of them. The built-in
source `find_runs` walks the paths the user named for run folders, lone weights files and compare
report folders; `find_pretrained` lists the pretrained generators the plugins register (`ganzoo
pretrained`), so a user with no runs yet still has something to draw. Another source of generators is
one more function in `sources()`: it takes the paths and yields Entries whose `loaders` rebuild G.

Everything here only reads. A file that cannot be read becomes an Entry with status "error" and the
file's one-sentence message; no exception leaves `discover`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import GanzooError
from ..runfiles import RunFiles

# A loader rebuilds one generator: () -> (G in eval mode on the CPU, its RunConfig).
Loader = Callable[[], tuple]
Source = Callable[[Sequence[Path]], Iterable["Entry"]]

RAW, EMA, PLAIN = "raw G", "EMA G", "G"          # the generators an entry may offer
REPORT = "results.json"                           # a compare report folder's record (ganzoo.compare)
MAX_DEPTH = 4                                     # folders below a given path that are searched for runs
SKIP = {RunFiles.SAMPLES, RunFiles.ANALYSIS, RunFiles.TENSORBOARD, "__pycache__"}


@dataclass
class Entry:
    """One thing the viewer can show: a run folder, a weights file, a compare report, or a file it could not read.

    `loaders` maps a generator's name (EMA G, raw G, or plain G) to a function rebuilding it; `signature`
    changes whenever a file behind them changes, so a cache keyed by it reloads a training run's new weights.
    """

    key: str                                       # unique, what the viewer's pickers show
    kind: str                                      # run | weights | compare | pretrained | error (or a source's own)
    path: Path | None = None
    model: str = ""
    data: str = ""
    resolution: str = ""
    progress: str = ""                             # "3 of 5 epochs", "41 s of 90 s"
    scores: dict[str, float] = field(default_factory=dict)
    status: str = ""                               # training | finished | stopped | diverged | error | ...
    message: str = ""                              # the error's sentence, or a note on the status
    conditional: int = 0                           # the model's number of classes (0: unconditional)
    loaders: dict[str, Loader] = field(default_factory=dict)
    signature: tuple = ()
    members: list[str] = field(default_factory=list)   # a compare report: the keys of its runs

    @property
    def folder(self) -> RunFiles | None:
        """The run folder (metrics.jsonl, epoch grids), for a run."""
        return RunFiles(self.path) if self.kind == "run" and self.path is not None else None

    def row(self) -> list[str]:
        """The Runs table's row."""
        scores = ", ".join(f"{k} {_short(v)}" for k, v in self.scores.items())
        said = self.status in ("error", "diverged", "stopped", "not downloaded")
        note = self.message if said or not scores else scores
        return [self.key, self.kind, self.model, self.data, self.resolution, self.progress, self.status, note]


ROW_HEADER = ["run", "kind", "model", "data", "size", "progress", "status", "last scores / message"]


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def error_entry(key: str, path: Path | None, message: str, kind: str = "error") -> Entry:
    return Entry(key=key, kind=kind, path=path, status="error", message=message)


# -- the sources ----------------------------------------------------------------------------------

def sources() -> list[Source]:
    """The functions that find what the viewer shows, in the order their entries are listed.

    Each takes the paths the user named and yields Entries. To show generators from elsewhere, add a
    function here that yields Entries with `loaders`, e.g. one per pretrained generator of a registry.
    """
    return [find_runs, find_pretrained]


def discover(paths: Sequence[str | Path]) -> list[Entry]:
    """Every entry every source finds under `paths`; a source that fails is an error row, never an exception."""
    paths = [Path(p) for p in paths]
    entries: list[Entry] = []
    for source in sources():
        try:
            entries.extend(source(paths))
        except Exception as exc:   # a source of generators is code we do not own: its failure is a row
            said = str(exc) if isinstance(exc, GanzooError) else f"{type(exc).__name__}: {exc}"
            entries.append(error_entry(getattr(source, "__name__", "source"), None, said))
    seen: dict[str, int] = {}
    for entry in entries:                          # keys must be unique in the pickers
        if entry.key in seen:
            seen[entry.key] += 1
            entry.key = f"{entry.key} ({seen[entry.key]})"
        else:
            seen[entry.key] = 1
    return entries


def find_runs(paths: Sequence[Path]) -> Iterable[Entry]:
    """Run folders, compare report folders and weights files under each path (run folders are not entered)."""
    done: dict[Path, str] = {}                       # every folder and file looked at, with its entry's key
    for root in paths:
        if not root.exists():
            yield error_entry(str(root), root, f"{root} does not exist (yet): a run trained into it shows here "
                                               f"within seconds.")
            continue
        yield from _walk(root, str(root), 0, done)


WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth", ".pkl", ".ckpt", ".bin")


def find_pretrained(paths: Sequence[Path]) -> Iterable[Entry]:
    """The registered pretrained generators (whatever the paths): model, data and the card's headline scores.

    Only what is on this machine is drawn: a shipped file, or one a command has already downloaded. Listing never
    downloads (the viewer writes nothing outside the named folders); a file that is not here yet is a row saying
    which command fetches it, and a file whose sha256 is not its card's is an error row with that sentence.
    """
    from ..checkpoint import load_networks
    from ..plugins import registries
    from ..pretrained import cached_path, weights_path

    for registered in registries().pretrained:
        name, card = registered.name, registered.card
        entry = Entry(key=f"pretrained/{name}", kind="pretrained", model=str(card.get("model", "")),
                      data=str(card.get("data", "")), progress=str(card.get("description", "")))
        headline = card.get("headline") or list(card.get("scores", {}))[:2]
        entry.scores = {k: card["scores"][k]["value"] for k in headline if k in card.get("scores", {})}
        source = Path(registered.factory) if registered.factory is not None else cached_path(registered)
        if registered.factory is None and not source.is_file():
            entry.status = "not downloaded"
            entry.message = f"its weights are downloaded from {card.get('url')} by: ganzoo sample {name}"
            yield entry
            continue
        try:
            path = _memo.get(("pretrained", name), stat_signature(source),     # its sha256, once per version
                             lambda: weights_path(name, download=False))
            config, _ = check_weights(path)
        except GanzooError as exc:
            entry.status, entry.message = "error", str(exc)
            yield entry
            continue
        _describe(entry, config)
        entry.path, entry.status, entry.signature = path, "pretrained", stat_signature(path)
        entry.message = str(card.get("command", ""))                 # how it was trained (the Training tab says)
        entry.loaders = {PLAIN: lambda path=path: _networks(load_networks(path, discriminator=False))}
        yield entry


def _walk(path: Path, key: str, depth: int, done: dict[Path, str]) -> Iterable[Entry]:
    real = path.resolve()
    if real in done:
        return
    done[real] = key
    if path.is_file():
        if path.suffix in WEIGHTS_SUFFIXES:
            yield weights_entry(path, key)
        elif depth == 0:
            yield error_entry(key, path, f"{path} is neither a run folder nor a weights file (.safetensors).")
        return
    if (path / REPORT).is_file():
        yield from compare_entries(path, key, done)
        return
    files = RunFiles(path, model="")
    if files.config.is_file() or files.checkpoint.is_file():      # a run folder (a folder of loose weights files
        yield run_entry(path, key)                                 # is walked: each file is its own row)
        return
    if depth >= MAX_DEPTH:
        return
    try:
        children = sorted(path.iterdir())
    except OSError as exc:
        yield error_entry(key, path, f"Could not read the folder {path}: {exc.strerror or exc}.")
        return
    for child in children:
        if child.name.startswith(".") or child.name in SKIP:
            continue
        if child.is_dir() or child.suffix in WEIGHTS_SUFFIXES:
            yield from _walk(child, f"{key.rstrip('/')}/{child.name}", depth + 1, done)


# -- reading files, cached by their signature ----------------------------------------------------

def stat_signature(*paths: Path) -> tuple:
    """(mtime, size) of each file, None where it is missing: changes whenever one of them is rewritten."""
    out = []
    for p in paths:
        try:
            s = p.stat()
            out.append((s.st_mtime_ns, s.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


class _Memo:
    """Results of reading a file, kept while the file is unchanged (the Runs table refreshes every few seconds)."""

    def __init__(self, limit: int = 256):
        self.limit, self.items, self.lock = limit, {}, threading.Lock()

    def get(self, key, signature, compute):
        with self.lock:
            hit = self.items.get(key)
        if hit is not None and hit[0] == signature:
            return hit[1]
        value = compute()
        with self.lock:
            if len(self.items) >= self.limit:
                self.items.pop(next(iter(self.items)))
            self.items[key] = (signature, value)
        return value


_memo = _Memo()


def check_weights(path: Path):
    """(config, metadata) of a ganzoo weights file, every tensor read and checked as a load would: a damaged,
    foreign or pickled file raises its one-sentence GanzooError here, once per version of the file."""
    from ..checkpoint import config_of, read_tensors

    def compute():
        try:
            tensors, metadata = read_tensors(path)
            return config_of(metadata, path), metadata, None
        except GanzooError as exc:
            return None, None, str(exc)

    config, metadata, error = _memo.get(("weights", str(path)), stat_signature(path), compute)
    if error:
        raise GanzooError(error)
    return config, metadata


def _records(files: RunFiles) -> list[dict]:
    return _memo.get(("metrics", str(files.metrics)), stat_signature(files.metrics), files.records)


# -- the three kinds of entry a folder holds ------------------------------------------------------

def _describe(entry: Entry, config) -> None:
    entry.model, entry.data = config.model, config.data
    entry.resolution = f"{config.image_size}x{config.image_size}x{config.channels}"
    entry.conditional = config.num_classes or 0


def weights_entry(path: Path, key: str) -> Entry:
    """A lone weights file (a generator file or a checkpoint outside a run folder)."""
    from ..checkpoint import load_networks

    try:
        config, metadata = check_weights(path)
    except GanzooError as exc:
        return error_entry(key, path, str(exc))
    entry = Entry(key=key, kind="weights", path=path, status="weights", signature=stat_signature(path))
    _describe(entry, config)
    entry.loaders = {PLAIN: lambda: _networks(load_networks(path, discriminator=False))}
    if metadata.get("ganzoo.kind") == "checkpoint" and config.ema:
        entry.loaders = {EMA: entry.loaders[PLAIN], RAW: lambda: raw_generator(path)}
    return entry


def run_entry(path: Path, key: str) -> Entry:
    """A run folder: its config, progress, last scores, status and the generators its files hold."""
    from ..checkpoint import load_networks
    from ..config import RunConfig, UNLIMITED_EPOCHS

    files = RunFiles(path)
    entry = Entry(key=key, kind="run", path=path)
    try:
        config = RunConfig.from_json(files.config.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        return error_entry(key, path, f"{files.config} could not be read: {getattr(exc, 'strerror', None) or exc}.")
    except GanzooError as exc:
        return error_entry(key, path, f"{files.config} is not a ganzoo run config: {exc}")
    _describe(entry, config)
    files = RunFiles(path, config.model)
    records = _records(files)
    losses = [r for r in records if "loss_d" in r]
    evals = [r for r in records if "eval_n" in r]
    training = lock_held(files.lock)
    state = checkpoint_state(files.checkpoint)
    entry.signature = stat_signature(files.generator, files.checkpoint, files.metrics)

    epochs = None if config.epochs >= UNLIMITED_EPOCHS else config.epochs
    done_epochs = float(losses[-1].get("epoch", 0)) if losses else float(state.get("epoch", 0))
    parts = [f"{done_epochs:.2f}".rstrip("0").rstrip(".") + (f" of {epochs} epochs" if epochs else " epochs")]
    trained = state.get("train_seconds") or (losses[-1].get("train_time") if losses else None)
    if config.budget:
        parts.append(f"{trained or 0:.0f} s of {config.budget:g} s")
    entry.progress = ", ".join(parts)
    if evals:
        entry.scores = {k: v for k, v in evals[-1].items() if k not in ("step", "epoch", "eval_n", "time")}
    else:
        entry.scores = _eval_json_scores(files)

    finished = bool(state) and ((epochs is not None and state.get("epoch", 0) >= epochs)
                                or (config.budget and (state.get("train_seconds") or 0) >= config.budget))
    if training:
        entry.status = "training"
    elif losses and not all(math.isfinite(losses[-1].get(k, 0.0)) for k in ("loss_d", "loss_g")):
        entry.status = "diverged"
        entry.message = (f"the losses became NaN/Inf by step {losses[-1].get('step')}; the samples are from the last "
                         f"good checkpoint" if state else "the losses became NaN/Inf before any checkpoint")
    elif finished:
        entry.status = "finished"
    elif state:
        entry.status = "stopped"
        entry.message = f"stopped at step {state.get('step')}; continue it with: ganzoo run --resume {path}"
    elif files.generator is not None and files.generator.is_file():
        entry.status = "weights only"
    else:
        entry.status = "no weights yet"
    if entry.status == "finished":
        from ..compare.results import d_collapsed
        if d_collapsed(records):
            entry.status = "finished (D collapsed)"

    have_generator = files.generator is not None and files.generator.is_file()
    have_checkpoint = files.checkpoint.is_file()
    broken = None
    for weights, present in ((files.generator, have_generator), (files.checkpoint, have_checkpoint)):
        if not present:
            continue
        try:
            check_weights(weights)
        except GanzooError as exc:
            broken = broken or str(exc)
    if broken and not training:
        entry.status, entry.message = "error", broken
        return entry
    if have_generator:
        plain = lambda: _networks(load_networks(files.generator, discriminator=False))   # noqa: E731
    elif have_checkpoint:
        plain = lambda: _networks(load_networks(files.checkpoint, discriminator=False))  # noqa: E731
    else:
        return entry
    if config.ema and have_checkpoint:
        entry.loaders = {EMA: plain, RAW: lambda: raw_generator(files.checkpoint)}
    else:
        entry.loaders = {PLAIN: plain}
    return entry


def compare_entries(path: Path, key: str, done: dict[Path, str]) -> Iterable[Entry]:
    """A compare report folder: one entry for the report (its table opens in Compare), then its runs."""
    from ..compare.results import Results

    try:
        results = Results.from_dict(json.loads((path / REPORT).read_text()))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        yield error_entry(key, path, f"{path / REPORT} is not a ganzoo compare report: {type(exc).__name__}: "
                                     f"{str(exc)[:160]}")
        return
    report = Entry(key=key, kind="compare", path=path, model=" vs ".join(results.contenders),
                   data=str(results.settings.get("data", "")),
                   status="finished" if results.real is not None else "partial",
                   signature=stat_signature(path / REPORT))
    runs = []
    for label, contender in results.contenders.items():
        for run in contender.runs:
            run_dir = Path(run.run_dir)
            if not run_dir.is_absolute() and not run_dir.exists():
                run_dir = path / "runs" / run_dir.name
            if run_dir.is_dir():
                runs.append(run_dir)
    children, members = [], []
    for run_dir in runs:
        inside = run_dir.resolve().is_relative_to(path.resolve())
        child_key = (f"{key.rstrip('/')}/{run_dir.resolve().relative_to(path.resolve())}" if inside
                     else str(run_dir))
        children.extend(_walk(run_dir, child_key, MAX_DEPTH, done))
        members.append(done.get(run_dir.resolve(), child_key))     # listed here, or already under its own key
    report.members = members
    report.progress = f"{len(results.contenders)} models, {sum(len(c.runs) for c in results.contenders.values())} runs"
    yield report
    yield from children
    other = path / "runs"                       # runs the report does not list (yet): still shown
    if other.is_dir():
        yield from _walk(other, f"{key.rstrip('/')}/runs", 1, done)


def _eval_json_scores(files: RunFiles) -> dict[str, float]:
    """The scores `ganzoo eval` wrote beside the generator file (<model>.eval.json), if any."""
    if files.generator is None:
        return {}
    path = files.generator.with_suffix(".eval.json")
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError, StopIteration):
        rows = json.loads(path.read_text())["rows"]
        first = next(iter(rows.values()))
        return {k: v for k, v in first.items() if isinstance(v, (int, float))}
    return {}


def checkpoint_state(path: Path) -> dict:
    """The counters a checkpoint records (step, epoch, step_in_epoch, train_seconds), from its header alone."""
    from safetensors import safe_open

    def compute():
        with contextlib.suppress(Exception):
            with safe_open(str(path), framework="pt", device="cpu") as f:
                state = json.loads((f.metadata() or {}).get("ganzoo.state", "{}"))
                return {k: state[k] for k in ("step", "epoch", "step_in_epoch", "train_seconds") if k in state}
        return {}

    return _memo.get(("state", str(path)), stat_signature(path), compute) if path.is_file() else {}


def lock_held(lock: Path) -> bool:
    """Whether a process holds the run folder's lock (ganzoo.preflight.run_lock's flock): a run is training there.

    Read from /proc/locks without touching the lock (taking it, even briefly, could refuse a run starting at that
    moment); elsewhere, whether the process whose id the lock file holds is alive.
    """
    try:
        stat = lock.stat()
    except OSError:
        return False
    with contextlib.suppress(OSError):
        wanted = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
        with open("/proc/locks") as f:
            for line in f:
                fields = line.split()
                if "FLOCK" in fields and any(part == wanted for part in fields):
                    return True
        return False
    with contextlib.suppress(OSError, ValueError):
        pid = int(lock.read_text().strip())
        os.kill(pid, 0)
        return True
    return False


# -- generators -----------------------------------------------------------------------------------

def _networks(nets) -> tuple:
    return nets.G, nets.config


def raw_generator(checkpoint: Path) -> tuple:
    """The trained (not averaged) G of a checkpoint that also holds an EMA copy: its `G.` tensors."""
    from ..checkpoint import config_of, read_tensors, rebuild

    tensors, metadata = read_tensors(checkpoint)
    config = config_of(metadata, checkpoint)
    try:
        return rebuild("generator", config, tensors).eval(), config
    except GanzooError as exc:
        raise GanzooError(f"{checkpoint}: {exc}") from None
