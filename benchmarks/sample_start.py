"""How long `ganzoo sample dcgan-mnist` takes from a cold process: what a newcomer waits for their first samples.

    python benchmarks/sample_start.py                       # 5 runs of `ganzoo sample dcgan-mnist`
    python benchmarks/sample_start.py --ganzoo /tmp/fresh/bin/ganzoo --runs 10 --name cdcgan-mnist

Each run is a new process (the interpreter, torch, the plugins, the weights, 64 samples, the PNG), with an empty
cache folder, on the CPU. The table gives the wall-clock time and the CPU time (user + system) of every run and
their median: on a machine other jobs share, the wall clock waits for them and the CPU time does not. The goal
is under 5 s of wall clock on a quiet CPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(command: list[str], folder: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one cold process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "GANZOO_CACHE": str(folder / "cache"), "CUDA_VISIBLE_DEVICES": ""})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ganzoo", default=shutil.which("ganzoo") or "ganzoo", help="the ganzoo command to time")
    parser.add_argument("--name", default="dcgan-mnist", help="the pretrained generator (default dcgan-mnist)")
    parser.add_argument("--runs", type=int, default=5, help="cold processes to time (default 5)")
    args = parser.parse_args(argv)
    command = [args.ganzoo, "sample", args.name, "--device", "cpu", "--out", "samples.png"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            rows.append(one_run(command, Path(tmp)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"`{' '.join(command)}`, {args.runs} cold processes, {os.cpu_count()} CPUs, load average {load:.1f}")
    print("| run | wall (s) | CPU (s) |\n|---:|---:|---:|")
    for i, (wall, cpu) in enumerate(rows):
        print(f"| {i + 1} | {wall:.2f} | {cpu:.2f} |")
    print(f"| median | {statistics.median(w for w, _ in rows):.2f} | {statistics.median(c for _, c in rows):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
