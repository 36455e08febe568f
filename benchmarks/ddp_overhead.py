"""The cost of the distributed path itself: `ganzoo run` in one plain process against the same run under
`torchrun --nproc-per-node 1` (a process group of one: the gradient averaging, the statistics averaging,
the stop vote and rank 0's write verdicts all run; their all-reduces move nothing between processes).

    python benchmarks/ddp_overhead.py                       # dcgan 32x32 on fake data, this machine's device
    python benchmarks/ddp_overhead.py --repeats 5 --epochs 2 --threads 1
    python benchmarks/ddp_overhead.py --smoke               # a few tiny steps (what CI could run)

Both are the real command, in fresh processes, alternated (plain, torchrun, plain, ...) so load from other
processes hits both alike. Images/s is the training loop's own figure: from metrics.jsonl, the median of
its log windows after the first (time.perf_counter over each window, as the progress line shows). The
table shows the median over repeats and the overhead of torchrun's against the plain run's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ganzoo.train import read_metrics

console = Console(stderr=True)


def images_per_s(folder: Path) -> float:
    """The median images/s of the run's log windows, the first (warm-up) left out."""
    rates = [r["images_per_s"] for r in read_metrics(folder / "metrics.jsonl") if "images_per_s" in r]
    return statistics.median(rates[1:] or rates)


def run(kind: str, args: list[str], out: Path) -> float:
    launcher = [sys.executable, "-m", "ganzoo"] if kind == "plain" else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1", "-m", "ganzoo"]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    done = subprocess.run([*launcher, "run", *args, "--out", str(out)], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{kind} run failed:\n{done.stderr[-2000:]}")
    return images_per_s(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--data", default="fake")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="--threads of both runs (0: torch's choice)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="tiny networks, one repeat")
    a = parser.parse_args()
    args = [a.model, "--data", a.data, "--image-size", str(a.image_size), "--batch-size", str(a.batch_size),
            "--epochs", str(a.epochs), "--device", a.device, "--log-every", "5", "--checkpoint-every", "100000",
            "--samples", "16", "--threads", str(a.threads)]
    if a.smoke:
        args += ["--g-width", "8", "--d-width", "8", "--z-dim", "16"]
        a.repeats = 1
    rates: dict[str, list[float]] = {"plain": [], "torchrun": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(a.repeats):
            for kind in rates:
                rate = run(kind, args, Path(tmp) / f"{kind}-{repeat}")
                rates[kind].append(rate)
                console.print(f"repeat {repeat + 1}/{a.repeats} {kind}: {rate:,.0f} images/s")
    load = os.getloadavg()
    table = Table(title=f"{a.model} {a.image_size}x{a.image_size}, batch {a.batch_size}, {a.epochs} epoch(s) of "
                        f"{a.data}, device {a.device}; median of {a.repeats}; load {load[0]:.2f} {load[1]:.2f} "
                        f"{load[2]:.2f}")
    for column in ("launch", "images/s (median)", "each repeat", "vs plain"):
        table.add_column(column, justify="left" if column == "launch" else "right")
    plain = statistics.median(rates["plain"])
    for kind, values in rates.items():
        median = statistics.median(values)
        table.add_row("ganzoo run" if kind == "plain" else "torchrun --nproc-per-node 1 -m ganzoo run",
                      f"{median:,.0f}", " ".join(f"{v:,.0f}" for v in values), f"{(median / plain - 1) * 100:+.1f}%")
    Console().print(table)


if __name__ == "__main__":
    main()
