"""`ganzoo compare`: train (or load) several models under the same data, seeds and budget; score them alike.

    ganzoo compare dcgan basicgan --data mnist --budget 5m --seeds 3
    ganzoo compare runs/dcgan-mnist runs/basicgan-mnist        # finished runs: evaluate only

Every trained model gets the same dataset, image size, channels, batch size and seeds, and either the
same number of epochs or the same training time (`--budget`, counted inside the training loop, so data
loading and evaluation do not eat into it). Training happens in segments (one per epoch, or `--points`
slices of the budget), each continuing the last from its checkpoint (bit for bit, see ganzoo.train), so
the models can be scored at several moments without the scoring being timed as training.

The report folder holds:
    report.md        the table (mean and 95% interval over seeds), every model against the baseline (paired-seed
                     differences with their intervals), every seed's numbers, the plots and the settings
    results.json     every number (per seed, per evaluation point), the settings, versions
    samples.png      each model's samples from the same fixed noise, side by side
    losses.png       D's and G's losses against steps
    metrics.png      each metric against training time
    pareto.png       quality against training time, one point per seed, with the Pareto front
    runs/            the training runs themselves (resumable; `ganzoo sample` works on them)

The package: `comparison` runs it (contenders, settings, segments, scoring), `results` holds what it
finds as dataclasses (results.json), `report` shows it (the table, report.md, the plots).
"""

from .comparison import Comparison, Contender, PeakMemory, Settings, parse_contenders
from .report import (difference_rows, markdown_differences, markdown_table, rich_differences, rich_table, table_rows,
                     write_report)
from .results import ContenderResult, CurvePoint, Results, RunResult, Stat, d_collapsed, mean_std
from .statistics import Interval, beats, paired_difference, t_interval

__all__ = ["Comparison", "Contender", "ContenderResult", "CurvePoint", "Interval", "PeakMemory", "Results",
           "RunResult", "Settings", "Stat", "beats", "d_collapsed", "difference_rows",
           "markdown_differences", "markdown_table", "mean_std", "paired_difference", "parse_contenders",
           "rich_differences", "rich_table", "t_interval", "table_rows", "write_report"]
