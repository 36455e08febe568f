"""DCGAN section 5.1 as the labels grow: L2-SVM test accuracy on D's features vs random D vs raw pixels.

    python benchmarks/probe_labels.py runs/dcgan/checkpoint.safetensors --counts 10,100,1000 --test-size 10000

Features are computed once (for the largest labelled subset and the test images) and every count
takes its own per-class subset of them: the same subsets `ganzoo probe --per-class N --seed S`
uses, so a row here equals that command's result. Prints one table (rich) with the fitting time
of each row (time.perf_counter), and writes it as JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from rich.console import Console
from rich.table import Table

from ganzoo.checkpoint import load_networks
from ganzoo.runfiles import weights_file
from ganzoo.analysis.features import hidden_features, per_class_subset, pixel_features, train_probe
from ganzoo.analysis.labellers import LabellerContext, labelled_split
from ganzoo.models import build_discriminator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", help="a run's checkpoint.safetensors (it holds D)")
    parser.add_argument("--counts", default="10,100,1000", help="labelled images per class, comma-separated")
    parser.add_argument("--test-size", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args()
    console = Console(stderr=True)
    counts = sorted(int(c) for c in args.counts.split(","))

    nets = load_networks(weights_file(args.weights, prefer_checkpoint=True))
    D = nets.need_discriminator("The probe benchmark")
    torch.manual_seed(args.seed)                       # the random D of `ganzoo probe --seed S`
    D_random = build_discriminator(nets.config).eval()
    context = LabellerContext(nets, data=nets.config.data, data_dir=args.data_dir or nets.config.data_dir,
                              download=False)
    train, test = labelled_split(context, "train"), labelled_split(context, "test")
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))[:args.test_size]
    pool = per_class_subset(train.labels, counts[-1], args.seed)
    position = {int(i): p for p, i in enumerate(pool.tolist())}

    started = time.perf_counter()
    extract = {"trained D": lambda im: hidden_features(D, im, progress="trained D")[0],
               "random D": lambda im: hidden_features(D_random, im, progress="random D")[0],
               "raw pixels": pixel_features}
    features = {name: (f(train.images[pool]), f(test.images[order])) for name, f in extract.items()}
    console.print(f"features of {len(pool)} labelled and {len(order)} test images: "
                  f"{time.perf_counter() - started:.1f} s")

    rows = []
    for count in counts:
        idx = torch.tensor([position[int(i)] for i in per_class_subset(train.labels, count, args.seed).tolist()])
        labels = train.labels[pool[idx]]
        for name, (train_x, test_x) in features.items():
            t0 = time.perf_counter()
            probe = train_probe(train_x[idx], labels, seed=args.seed)
            accuracy = probe.accuracy(test_x, test.labels[order])
            rows.append({"per_class": count, "features": name, "dim": train_x.shape[1], "lambda": probe.lam,
                         "val_accuracy": probe.val_accuracy, "test_accuracy": accuracy,
                         "fit_seconds": round(time.perf_counter() - t0, 1)})
            console.print(f"{count} per class, {name}: {accuracy:.2%}")

    table = Table(title=f"{nets.config.data}: L2-SVM test accuracy on {len(order)} test images "
                        f"({args.weights})", title_justify="left")
    for column in ("labels/class", "features", "dim", "lambda", "held-out", "test acc", "test error", "fit s"):
        table.add_column(column, justify="left" if column == "features" else "right")
    for r in rows:
        table.add_row(str(r["per_class"]), r["features"], f"{r['dim']:,}", f"{r['lambda']:g}",
                      f"{r['val_accuracy']:.1%}", f"{r['test_accuracy']:.2%}", f"{1 - r['test_accuracy']:.2%}",
                      f"{r['fit_seconds']:.1f}")
    Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"weights": args.weights, "seed": args.seed, "test_images": len(order), "rows": rows}, f,
                      indent=2)


if __name__ == "__main__":
    main()
