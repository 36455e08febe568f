"""Which CPU-side options pay: each candidate against the default training step, A/B in one process.

    python benchmarks/cpu_options.py --data-dir ../shared/data/mnist                 # dcgan-32, every candidate
    python benchmarks/cpu_options.py --data-dir ../shared/data/mnist --case basicgan-32 --candidates adam-foreach
    python benchmarks/cpu_options.py --smoke --data fake                             # checks the script, not speed

Every candidate is a real `ganzoo.train.Trainer` built like the default one and changed in one respect
(the optimiser's implementation, BatchNorm's dtype, the memory format, the thread count...). The default
and the candidates are timed in interleaved rounds (default, A, B, ...; then A, B, ..., default: each round
starts one further on, so none always follows the same one), so load from other processes hits all alike; each round gives each candidate its speed relative to that round's
default, and the table shows the median ratio over rounds (> 1: the candidate is faster) with its range.
The `control` candidate is the default itself: how far its ratio strays from 1 is the noise of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from ganzoo import GanzooError, ImageData
from ganzoo.data import prepare_images
from ganzoo.plugins import registries
from ganzoo.run import make_config
from ganzoo.train import Trainer

CASES = {"dcgan-32": ("dcgan", 32), "dcgan-64": ("dcgan", 64), "basicgan-32": ("basicgan", 32)}
console = Console(stderr=True)


# -- the candidates: each changes a built trainer (or its config) in one respect ----------------------

def _adam(trainer: Trainer, **kind) -> None:
    """Swap each optimiser for Adam with the same hyper-parameters, implemented as `kind` says."""
    for network, old in trainer.step.optimizers.items():
        group = old.param_groups[0]
        trainer.step.optimizers[network] = torch.optim.Adam(group["params"], lr=group["lr"], betas=group["betas"],
                                                            **kind)


def _fp32_batchnorm(trainer: Trainer) -> None:
    """BatchNorm computed in fp32 inside bf16 autocast (its input cast up, its output left in fp32)."""
    def forward(self, x):
        with torch.autocast("cpu", enabled=False):
            return nn.BatchNorm2d.forward(self, x.float())
    for network in (trainer.G, trainer.D):
        for m in network.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.forward = forward.__get__(m)


def _contiguous_weights(trainer: Trainer) -> None:
    """Convolution weights kept contiguous (NCHW) while activations stay channels-last."""
    for network in (trainer.G, trainer.D):
        for p in network.parameters():
            if p.dim() == 4:
                p.data = p.data.contiguous()


def _torch_dropout(trainer: Trainer) -> None:
    """torch's own dropout (a bernoulli_ mask) in place of basicgan's CPU dropout (a torch.rand mask)."""
    for network in (trainer.G, trainer.D):
        for m in network.modules():
            if isinstance(m, nn.Dropout) and type(m) is not nn.Dropout:
                m.forward = nn.Dropout.forward.__get__(m)


class Candidate:
    def __init__(self, name: str, what: str, config: dict | None = None, change=None, threads: int | None = None):
        self.name, self.what, self.config, self.change, self.threads = name, what, config or {}, change, threads


CANDIDATES = [
    Candidate("control", "nothing: the default again (an A/A check: its ratio is the noise)"),
    Candidate("adam-foreach", "Adam foreach=True (instead of fused=True)",
              change=lambda t: _adam(t, foreach=True)),
    Candidate("adam-for-loop", "Adam's for-loop implementation (foreach=False, fused=False)",
              change=lambda t: _adam(t, foreach=False)),
    Candidate("bn-fp32", "BatchNorm in fp32 inside bf16 autocast", change=_fp32_batchnorm),
    Candidate("nchw", "contiguous (NCHW) memory format instead of channels-last", config={"channels_last": False}),
    Candidate("weights-nchw", "convolution weights contiguous, activations channels-last",
              change=_contiguous_weights),
    Candidate("fp32", "fp32, no autocast (channels-last kept)", config={"precision": "fp32"}),
    Candidate("torch-dropout", "nn.Dropout's bernoulli_ mask instead of basicgan's torch.rand one (basicgan only)",
              change=_torch_dropout),
    Candidate("threads-1", "torch.set_num_threads(1) during the step", threads=1),
]


# -- timing -------------------------------------------------------------------------------------------

class Steps:
    """A trainer's step on its own batches, reading the statistics back once per log window (as the loop does)."""

    def __init__(self, trainer: Trainer, threads: int | None):
        self.trainer, self.threads = trainer, threads
        self.batches = self._epochs()
        self.stats = torch.zeros(len(trainer.step.stat_names))

    def _epochs(self):
        while True:
            yield from self.trainer.batches.epoch(self.trainer.data_rng)

    @contextlib.contextmanager
    def _threads(self):
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def seconds(self, steps: int) -> float:
        with self._threads():
            t0 = time.perf_counter()
            for i in range(steps):
                self.stats += self.trainer.step(next(self.batches))
                if (i + 1) % self.trainer.config.log_every == 0:
                    self.stats.tolist()
            self.stats.tolist()
            return time.perf_counter() - t0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist")
    p.add_argument("--data-dir", default=os.environ.get("GANZOO_MNIST_DIR"))
    p.add_argument("--case", default="dcgan-32", choices=list(CASES))
    p.add_argument("--candidates", default=",".join(c.name for c in CANDIDATES),
                   help=f"comma-separated, from {', '.join(c.name for c in CANDIDATES)}")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--steps", type=int, default=4, help="timed steps per candidate per round (default 4)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are shown (default 3)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--smoke", action="store_true", help="tiny networks, one round: checks the script, not speed")
    args = p.parse_args(argv)
    if args.smoke:
        args.width, args.batch_size, args.steps, args.rounds, args.warmup = 8, 16, 1, 1, 1
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    chosen = args.candidates.split(",")
    unknown = [c for c in chosen if c not in {k.name for k in CANDIDATES}]
    if unknown:
        raise GanzooError(f"Unknown candidate(s) {unknown}; choose from {', '.join(c.name for c in CANDIDATES)}.")
    candidates = [c for c in CANDIDATES if c.name in chosen]
    model, size = CASES[args.case]
    entry = registries().datasets.get(args.data)
    raw = entry.factory(root=args.data_dir, download=True, split="train", image_size=size,
                        channels=entry.info.get("channels", 1)).images[:max(4 * args.batch_size, 512)]
    runs: dict[str, Steps] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c in [Candidate("default", "the default path"), *candidates]:
            config = make_config(model, {"data": args.data, "data_dir": args.data_dir, "image_size": size,
                                         "batch_size": args.batch_size, "g_width": args.width,
                                         "d_width": args.width, "device": "cpu", **c.config})
            config.out = str(Path(tmp) / c.name)
            trainer = Trainer(config, ImageData(prepare_images(raw, size, config.channels)), Console(quiet=True))
            if c.change:
                c.change(trainer)
            runs[c.name] = Steps(trainer, c.threads)
            runs[c.name].seconds(args.warmup)
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:   # each round starts one further on
                seconds[name].append(runs[name].seconds(args.steps))
            console.print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                f"{name} {args.steps * args.batch_size / s[-1]:,.0f} img/s" for name, s in seconds.items()))
    rows = []
    for c in candidates:
        ratios = [d / s for d, s in zip(seconds["default"], seconds[c.name])]   # > 1: the candidate is faster
        rows.append({"candidate": c.name, "what": c.what, "ratio": statistics.median(ratios), "ratios": ratios,
                     "images_per_s": args.steps * args.batch_size / statistics.median(seconds[c.name])})
    result = {"case": args.case, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
              "rounds": args.rounds, "steps": args.steps, "load": os.getloadavg(), "torch": torch.__version__,
              "default_images_per_s": args.steps * args.batch_size / statistics.median(seconds["default"]),
              "rows": rows}
    show(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


def show(result: dict) -> None:
    out = Console() if Console().is_terminal else Console(width=150)
    table = Table(title=f"{result['case']} batch {result['batch_size']}, {result['threads']} threads: each candidate "
                        f"against the default ({result['default_images_per_s']:,.0f} img/s)", title_justify="left")
    for column in ("candidate", "what changes", "speed vs default", "range over rounds"):
        table.add_column(column, justify="right" if column.startswith(("speed", "range")) else "left")
    for r in result["rows"]:
        table.add_row(r["candidate"], r["what"], f"{r['ratio']:.2f}x",
                      f"{min(r['ratios']):.2f}-{max(r['ratios']):.2f}")
    out.print(table)
    out.print(f"median over {result['rounds']} interleaved rounds of {result['steps']} steps; > 1x: faster than "
              f"the default. Load average {result['load'][0]:.1f} on {os.cpu_count()} CPUs"
              + (" (other processes shared the machine: trust the ratios, not the img/s)."
                 if result["load"][0] > (os.cpu_count() or 1) + 0.5 else "."))


if __name__ == "__main__":
    try:
        main()
    except GanzooError as exc:
        console.print(f"[bold red]error[/bold red]: {exc}")
        sys.exit(1)
