"""Whether a difference is more than seed noise: Student t intervals over seeds, and paired-seed differences.

A comparison trains every model with the same seeds (seed s is the same initial weights' RNG stream and the
same data order for every model), so model A and a baseline B are compared **seed by seed**: the differences
d_s = A_s - B_s carry the model's effect without the part of the seed noise both share, and their Student t
95% interval says whether the effect is real. A difference is marked only when that interval excludes zero.

    interval = t_interval([12.1, 14.0, 10.9])        # mean and 95% interval over 3 seeds
    paired_difference(a, b, "mnist_fd")              # A - B over the seeds both ran, with its interval
    beats(a, b, "mnist_fd", "lower")                 # True only when A is lower beyond noise

With one value there is no interval (low and high are None), and nothing is ever said to beat anything.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable

from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean over n values and its Student t interval (low, high); no interval (None) for fewer than 2."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def excludes_zero(self) -> bool:
        return self.has_interval and (self.low > 0 or self.high < 0)

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def finite(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def t_interval(values: Iterable[float | None], level: float = LEVEL) -> Interval:
    """Mean of the finite values and its two-sided Student t interval at `level` (n - 1 degrees of freedom)."""
    values = finite(values)
    n = len(values)
    if n == 0:
        return Interval(math.nan, None, None, 0)
    mean = statistics.fmean(values)
    if n < 2:
        return Interval(mean, None, None, n)
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def run_value(run, key: str) -> float | None:
    """One run's number: a score by name, else a resource (train_time_s, images_per_s, peak_memory_mb)."""
    value = run.scores.get(key) if key in run.scores else getattr(run, key, None)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def paired_values(a, b, key: str) -> list[tuple[int, float, float]]:
    """(seed, A's value, B's value) for every seed both contenders ran and scored (runs without a seed, a finished
    run given as a path, pair with nothing)."""
    theirs = {r.seed: run_value(r, key) for r in b.runs if r.seed is not None}
    pairs = []
    for run in a.runs:
        mine = run_value(run, key)
        if run.seed is not None and mine is not None and theirs.get(run.seed) is not None:
            pairs.append((run.seed, mine, theirs[run.seed]))
    return sorted(pairs)


def paired_difference(a, b, key: str, level: float = LEVEL) -> Interval:
    """A - B over the seeds both ran, with its Student t interval over the per-seed differences."""
    return t_interval([x - y for _, x, y in paired_values(a, b, key)], level)


def beats(a, b, key: str, direction: str, level: float = LEVEL) -> bool:
    """Whether A is better than B in `key` beyond seed noise: the paired difference's interval excludes zero on
    A's side ("lower": entirely below zero)."""
    difference = paired_difference(a, b, key, level)
    if not difference.excludes_zero():
        return False
    return difference.high < 0 if direction == "lower" else difference.low > 0 if direction == "higher" else False


def verdict(difference: Interval, direction: str) -> str:
    """'better', 'worse' (beyond noise, for a column with a direction) or '' (not told apart, or no direction)."""
    if not difference.excludes_zero() or direction not in ("lower", "higher"):
        return ""
    lower = difference.high < 0
    return "better" if lower == (direction == "lower") else "worse"
