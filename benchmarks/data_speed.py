"""Where the images come from, and what it costs: a short `ganzoo run dcgan` on a folder of JPEGs, fed
from memory, from the memory-mapped image cache, and by decoding the files every epoch.

    python benchmarks/data_speed.py                       # 2,048 LSUN-like JPEGs (256 px), dcgan at 64x64
    python benchmarks/data_speed.py --folder DIR          # your own images instead
    python benchmarks/data_speed.py --n 256 --epochs 1    # a quick look
    python benchmarks/data_speed.py --threads 1           # on a machine other jobs load

Rows:
- decode into the cache: the first run's one-time cost, decoding every file into the cache
  (ganzoo.imagecache, worker threads), as images/s;
- memory: `ganzoo run dcgan --data FOLDER` once the cache exists and fits the memory budget: the
  images are held in memory, batches are index gathers;
- cache (streamed): the same with --memory-budget 1k, which forces what a set larger than memory
  gets: batches gathered from the memory-mapped cache a step ahead by a worker thread;
- decoding each epoch: what a DataLoader repository does (the reference DCGAN): every image opened,
  decoded, cropped and resized at every epoch by DataLoader workers (as many as CPU cores), feeding
  the same ganzoo Trainer.

Two rates per row: the data path alone (batches drawn, nothing trained: what the source can deliver)
and training (the median images/s of the run's log windows after the first, as `ganzoo run` reports).
Every figure is from this process on this machine; the load average is printed before and after,
since other jobs on a shared machine slow everything alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, Dataset

from ganzoo.cli import main as ganzoo
from ganzoo.device import select_device
from ganzoo.data import decode_image, load_dataset, make_batches, prepare_images, to_model_range
from ganzoo.run import make_config
from ganzoo.train import Trainer

console = Console(stderr=True)


def write_jpegs(folder: Path, n: int, seed: int = 0) -> None:
    """n JPEGs of LSUN-like sizes (256 on the short side) with smooth content and some noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        w, h = (256, int(rng.integers(256, 400))) if i % 2 else (int(rng.integers(256, 400)), 256)
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([np.sin(x / rng.uniform(8, 40) + c) * np.cos(y / rng.uniform(8, 40)) for c in range(3)], -1)
        pixels = ((base + 1) * 110 + rng.normal(0, 8, (h, w, 3))).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)


class DecodedFiles(Dataset):
    """Each item decoded from its file when asked, cropped and resized by ganzoo's prepare_images."""

    def __init__(self, paths: list[Path], size: int):
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = decode_image(self.paths[i], 3, lambda: str(self.paths[i]))
        return prepare_images(image[None], self.size, 3)[0]


class DecodingBatches:
    """DeviceBatches' interface over a DataLoader that decodes every image at every epoch."""

    streamed = True

    def __init__(self, paths: list[Path], size: int, batch_size: int, workers: int):
        self.images = paths
        self.batch_size = batch_size
        self.dataset = DecodedFiles(paths, size)
        self.workers = workers

    @property
    def steps_per_epoch(self) -> int:
        return len(self.images) // self.batch_size

    def epoch(self, generator: torch.Generator, start: int = 0):
        loader = DataLoader(self.dataset, self.batch_size, shuffle=True, drop_last=True, num_workers=self.workers,
                            persistent_workers=False, prefetch_factor=4 if self.workers else None)
        for step, batch in enumerate(loader):
            if step >= start:
                yield to_model_range(batch)


def data_rate(batches, epochs: int = 1) -> float:
    """Images/s of drawing batches alone (nothing trained)."""
    start, n = time.perf_counter(), 0
    for epoch in range(epochs):
        for batch in batches.epoch(torch.Generator().manual_seed(epoch)):
            n += len(batch)
    return n / (time.perf_counter() - start)


def training_rate(run: Path) -> float:
    """Median images/s over the log windows of a run, the first (warm-up) left out."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in records if "images_per_s" in r]
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default=None, help="a folder of images (default: JPEGs written for this)")
    parser.add_argument("--n", type=int, default=2048, help="images to write when no --folder (default 2048)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=16, help="G and D widths (default 16: a small DCGAN, so that "
                                                             "the data path shows on a CPU)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice); 1 on a loaded machine, where threads that wait "
                             "for a core make every small operation slow")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    work = Path(tempfile.mkdtemp(prefix="ganzoo-data-speed-"))
    os.environ["GANZOO_CACHE"] = str(work / "cache")                  # a cold cache of our own
    folder = Path(args.folder) if args.folder else work / "jpegs"
    if not args.folder:
        console.print(f"writing {args.n} JPEGs into {folder}")
        write_jpegs(folder, args.n)
    load_before = os.getloadavg()
    size, flags = args.image_size, ["--image-size", str(args.image_size), "--channels", "3", "--batch-size",
                                    str(args.batch_size), "--g-width", str(args.width), "--d-width", str(args.width),
                                    "--epochs", str(args.epochs), "--log-every", "5", "--device", args.device]
    rows = []

    start = time.perf_counter()
    data = load_dataset("folder", root=str(folder), split="train", image_size=size, channels=3, console=console)
    decode_seconds = time.perf_counter() - start
    rows.append(("decode into the cache (once)", len(data) / decode_seconds, None))
    config = make_config("dcgan", {"data": "folder", "data_dir": str(folder), "image_size": size, "channels": 3,
                                   "batch_size": args.batch_size, "g_width": args.width, "d_width": args.width,
                                   "epochs": args.epochs, "log_every": 5, "device": args.device})
    device = select_device(args.device)

    for label, budget in (("memory", []), ("cache (streamed)", ["--memory-budget", "1k"])):
        batches = make_batches(data, args.batch_size, device, 1024 if budget else 2 ** 62)
        alone = data_rate(batches)
        run = work / f"run-{label.split()[0]}"
        if ganzoo(["run", "dcgan", "--data", str(folder), *flags, *budget, "--out", str(run)]) != 0:
            return 1
        rows.append((label, alone, training_rate(run)))

    workers = os.cpu_count() or 1
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
    decoding = DecodingBatches(paths, size, args.batch_size, workers)
    alone = data_rate(decoding)
    config.out = str(work / "run-decoding")
    trainer = Trainer(config, data, Console(quiet=True))
    trainer.batches = decoding                                           # the same step, fed by decoding files
    trainer.fit()
    rows.append((f"decoding each epoch ({workers} DataLoader workers)", alone, training_rate(work / "run-decoding")))

    load_after = os.getloadavg()
    table = Table(title=f"dcgan {size}x{size}, width {args.width}, batch {args.batch_size}, {len(data):,} images, "
                        f"device {device}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads",
                  title_justify="left")
    table.add_column("images come from")
    table.add_column("data path alone (img/s)", justify="right")
    table.add_column("training (img/s)", justify="right")
    for label, alone, trained in rows:
        table.add_row(label, f"{alone:,.0f}", "-" if trained is None else f"{trained:,.0f}")
    Console(width=200).print(table)
    print(f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; python {sys.version.split()[0]}, "
          f"torch {torch.__version__}; work folder {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
