"""What a comparison finds, as dataclasses: saved to results.json and read back by --resume and the report.

    Results
      settings                      the Settings every model was trained and scored under
      contenders[label]             ContenderResult: one model (or finished run)
        runs[i]                     RunResult: one seed: status, scores, curve of CurvePoints, throughput
        summary[name]               Stat: mean, std and 95% interval over the seeds of each score and resource
                                    number (derived from the runs; recomputed whenever results.json is read)
      real                          the real-data floor, scored the same way
      real_protocol                 how it was scored (each run keeps its own scores' protocol too)
      environment                   device, torch, platform
      unfinished["label/seedN"]     the curve of a run stopped part way (Ctrl-C): --resume continues that run from
                                    its checkpoint, keeping these points
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from ..training.guard import discriminator_won
from .statistics import t_interval

RESOURCES = ("images_per_s", "train_time_s", "peak_memory_mb")


@dataclass
class CurvePoint:
    """Scores after one training segment."""

    train_time_s: float
    step: int
    scores: dict[str, float]
    protocol: dict[str, dict[str, Any]] = field(default_factory=dict)   # per metric (ganzoo.protocol)


@dataclass
class RunResult:
    """One model trained with one seed (seed None: a finished run scored as given)."""

    seed: int | None
    run_dir: str
    status: str = "ok"                  # ok | diverged | failed | D collapsed
    message: str = ""
    curve: list[CurvePoint] = field(default_factory=list)
    train_time_s: float | None = 0.0
    peak_memory_mb: float | None = None
    images_per_s: float | None = None
    steps: int | None = None
    epochs_done: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    protocol: dict[str, dict[str, Any]] = field(default_factory=dict)   # how `scores` were made, per metric
    wall_time_s: float | None = None    # the whole run by the wall clock: training, scoring along the way and at
                                        # the end (None in results from before it was recorded)
    finished_at: str | None = None      # when it ended, UTC ISO 8601

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunResult":
        data = dict(data)
        data["curve"] = [CurvePoint(**point) for point in data.get("curve", [])]
        return cls(**data)


@dataclass
class Stat:
    """A number over seeds: its mean, its std, and the Student t 95% interval of the mean (low, high; None
    with fewer than two seeds), from n seeds."""

    mean: float
    std: float
    low: float | None = None
    high: float | None = None
    n: int | None = None


@dataclass
class ContenderResult:
    """One column of the comparison: its runs and their summary."""

    model: str
    source: str                          # "trained here", or the finished run's path
    runs: list[RunResult] = field(default_factory=list)
    parameters: dict[str, int | None] = field(default_factory=dict)
    summary: dict[str, Stat] = field(default_factory=dict)
    status: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ContenderResult":
        data = dict(data)
        data["runs"] = [RunResult.from_dict(r) for r in data.get("runs", [])]
        data["summary"] = {k: Stat(**v) for k, v in data.get("summary", {}).items()}
        entry = cls(**data)
        if entry.runs:
            entry.summarise()            # derived from the runs: a file from an older ganzoo gains its intervals
        return entry

    def summarise(self) -> None:
        """Mean, spread and 95% interval over seeds of every number in the table."""
        names = list(dict.fromkeys(k for r in self.runs for k in r.scores))
        values = {name: [r.scores.get(name) for r in self.runs] for name in names}
        values.update({key: [getattr(r, key) for r in self.runs] for key in RESOURCES})
        self.summary = {}
        for name, v in values.items():
            mean, std = mean_std(v)
            interval = t_interval(v)
            self.summary[name] = Stat(mean, std, interval.low, interval.high, interval.n)
        self.status = ", ".join(sorted({r.status for r in self.runs}))


@dataclass
class Results:
    settings: dict[str, Any]
    contenders: dict[str, ContenderResult] = field(default_factory=dict)
    real: dict[str, float] | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    real_protocol: dict[str, dict[str, Any]] | None = None    # how `real` was scored, per metric
    unfinished: dict[str, list[CurvePoint]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("real", "environment", "real_protocol", "unfinished"):
            if not data[key]:
                del data[key]                        # not there until the comparison has finished
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Results":
        return cls(settings=data["settings"],
                   contenders={k: ContenderResult.from_dict(v) for k, v in data.get("contenders", {}).items()},
                   real=data.get("real"), environment=data.get("environment", {}),
                   real_protocol=data.get("real_protocol"),
                   unfinished={k: [CurvePoint(**p) for p in v] for k, v in data.get("unfinished", {}).items()})

    def score_names(self) -> list[str]:
        """Every score any run (or the real data) has, in order of first appearance."""
        names = [k for e in self.contenders.values() for r in e.runs for k in r.scores]
        return list(dict.fromkeys(names + list(self.real or {})))


def loss_records(records: list[dict]) -> list[dict]:
    return [r for r in records if "loss_d" in r]


def throughput(losses: list[dict], batch_size: int | None) -> tuple[float | None, float | None]:
    """(training time, images trained ÷ that time), the time as the log's last record has it
    (config.TRAINING_TIME). None for both without a log."""
    last = losses[-1] if losses else {}
    seconds = last.get("train_time")
    if not seconds or not batch_size:
        return seconds or None, None
    return seconds, last["step"] * batch_size / seconds


def d_collapsed(records: list[dict]) -> bool:
    """D has won (see ganzoo.guard) over the last quarter of the logged steps (at least three logs)."""
    losses = loss_records(records)
    tail = losses[-max(3, len(losses) // 4):]
    return len(losses) >= 3 and all(discriminator_won(r) for r in tail)


def mean_std(values: list[float | None]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
