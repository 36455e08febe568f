"""Which protocol each number of a comparison was scored under, and the refusal to rank numbers of different
protocols in one column (ganzoo.protocol). Used by `ganzoo compare` and the leaderboard."""

from __future__ import annotations

from typing import Any

from ..protocol import check_column, record_for
from .results import Results

REAL = "the real-data row"


def column_protocols(results: Results, column: str) -> dict[str, dict[str, Any] | None]:
    """{who scored a number in `column` (a model, a model's seed, the real-data row): that number's protocol}."""
    scored: dict[str, dict[str, Any] | None] = {}
    for label, entry in results.contenders.items():
        for run in entry.runs:
            if column in run.scores:
                who = label if run.seed is None or len(entry.runs) == 1 else f"{label} (seed {run.seed})"
                scored[who] = record_for(column, run.protocol)
    if results.real and column in results.real:
        scored[REAL] = record_for(column, results.real_protocol)
    return scored


def check_protocols(results: Results) -> None:
    """Refuse (a GanzooError naming what differs) when any column's numbers were scored under different protocols."""
    for column in results.score_names():
        check_column(column, column_protocols(results, column), real=REAL)
