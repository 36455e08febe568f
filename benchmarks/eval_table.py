"""Train models for the same short run, then score them all beside real data in one table.

    python benchmarks/eval_table.py --data-dir ../shared/data/mnist --epochs 1 dcgan basicgan
    python benchmarks/eval_table.py --data stackedmnist --channels 3 --data-dir ../shared/data/mnist dcgan

Each model trains with `ganzoo run`'s defaults (32x32 for MNIST) into <out>/bench-<model>-<data>
(a finished run there is reused, a shorter one continued), then `ganzoo.evaluate` scores it; the last row
is real training images scored the same way. `--train-images N` trains every model on the
same seeded random N training images (an equal, shorter budget on a slow machine). Prints a table of the scores and of the
training and evaluation times (time.perf_counter; CPU or GPU as `--device` says).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

import torch

from ganzoo.data import load_dataset
from ganzoo.evaluate import default_n, evaluate, evaluate_real, metrics_table, resolve_metrics
from ganzoo.run import make_config, train
from ganzoo.train import RunFiles, Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("-n", type=int, default=None)
    parser.add_argument("--out", default="runs")
    parser.add_argument("--train-images", type=int, default=None,
                        help="train on this many seeded random training images (default: all)")
    args = parser.parse_args()
    console = Console(stderr=True)

    rows, times, config = {}, {}, None
    for model in args.models:
        config = make_config(model, {"data": args.data, "data_dir": args.data_dir, "channels": args.channels,
                                     "epochs": args.epochs, "device": args.device})
        config.out = str(Path(args.out) / f"bench-{model}-{args.data}")
        files = RunFiles(config.out, model)
        weights = files.generator
        done = json.loads(files.config.read_text())["epochs"] if files.config.is_file() and weights.is_file() else 0
        resume = files.checkpoint.is_file()        # a finished shorter run (or an interrupted one) continues
        start = time.perf_counter()
        if done < args.epochs and args.train_images:
            data = load_dataset(config.data, root=config.data_dir, split="train", image_size=config.image_size,
                                channels=config.channels)
            keep = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(0))[:args.train_images]
            data.images = data.images[keep]
            data.labels = None if data.labels is None else data.labels[keep]
            trainer = Trainer(config, data, console)
            if resume:
                trainer.load_checkpoint(files.checkpoint)
            files.root.mkdir(parents=True, exist_ok=True)
            files.config.write_text(config.to_json())
            trainer.fit()
        elif done < args.epochs:
            train(config, resume=resume, overwrite=True, console=console)
        trained = time.perf_counter() - start
        start = time.perf_counter()
        rows[model] = evaluate(weights, n=args.n, device=args.device, console=console)
        times[model] = {"train_s": round(trained, 1), "eval_s": round(time.perf_counter() - start, 1)}
    chosen = resolve_metrics(None, config.data, config.channels)
    n = args.n or default_n(chosen)
    start = time.perf_counter()
    rows["real data (train)"] = evaluate_real(data=config.data, image_size=config.image_size, channels=config.channels,
                                              n=n, data_dir=config.data_dir, device=args.device, console=console)
    times["real data (train)"] = {"eval_s": round(time.perf_counter() - start, 1)}
    budget = f"{args.epochs} epoch(s)" + (f" of {args.train_images} images" if args.train_images else "")
    title = f"{config.data} {config.image_size}x{config.image_size}x{config.channels}, {budget}, n={n}"
    Console().print(metrics_table(rows, title))
    Console().print(json.dumps({"rows": rows, "times": times}, indent=1))


if __name__ == "__main__":
    main()
