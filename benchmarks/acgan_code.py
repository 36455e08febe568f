"""Does an ACGAN generator draw its class, or only mark it for its own D? Reads a run's checkpoint (G and D) and
prints, on the MNIST test split and on G's samples of every class in turn:

- D's class head: its accuracy on real test images, and how often it reads the asked class off G's samples;
- the digit evaluator (the one behind class_agreement): how often it reads the asked class off the same samples;
- how far G's output moves when only the class changes, against when only z changes.

A head that reads the asked class far more often than the evaluator does, while the class barely moves G's output,
is the code the paper's objective allows: both networks lower the same fake-class term.

    python benchmarks/acgan_code.py runs/acgan/checkpoint.safetensors --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from ganzoo.checkpoint import load_networks
from ganzoo.data import load_dataset
from ganzoo_plugins.mnist_evaluator import load_evaluator


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@torch.no_grad()
def measure(checkpoint: str, data_dir: str | None, n: int = 2000, seed: int = 0) -> dict[str, float]:
    nets = load_networks(checkpoint)
    G, D, config = nets.G.eval(), nets.D.eval(), nets.config
    data = load_dataset(config.data, root=data_dir, split="test", image_size=config.image_size,
                        channels=config.channels, download=False)
    real, labels = data.images[:n].float() / 127.5 - 1, data.labels[:n].long()
    _, extras = D(real)
    head_real = (extras["class_logits"].argmax(1) == labels).float().mean().item()
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, config.z_dim, generator=g)
    asked = torch.arange(n) % config.num_classes
    fake = G(z, asked)
    _, extras = D(fake)
    head_fake = (extras["class_logits"].argmax(1) == asked).float().mean().item()
    _, probs = load_evaluator().score(to_uint8(fake))
    evaluator_fake = (probs.argmax(1) == asked).float().mean().item()
    other_class = G(z, (asked + 1 + torch.randint(config.num_classes - 1, (n,), generator=g)) % config.num_classes)
    other_z = G(torch.randn(n, config.z_dim, generator=g), asked)
    return {"D's head on real test images (its accuracy)": head_real,
            "D's head on G's samples (reads the asked class)": head_fake,
            "the evaluator on G's samples (class_agreement)": evaluator_fake,
            "G's output moved by another class (mean |Δ|)": (fake - other_class).abs().mean().item(),
            "G's output moved by another z (mean |Δ|)": (fake - other_z).abs().mean().item()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="acgan runs' checkpoint.safetensors")
    parser.add_argument("--data-dir", default=None, help="local copy of MNIST")
    parser.add_argument("-n", type=int, default=2000, help="test images and samples (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    table = Table(title=f"ACGAN: drawn or coded? ({args.n} test images and samples, seed {args.seed})")
    table.add_column("measure")
    results = {path: measure(path, args.data_dir, args.n, args.seed) for path in args.checkpoints}
    for path in results:
        table.add_column(Path(path).parent.name or path, justify="right")       # the run folder's name
    for name in next(iter(results.values())):
        table.add_row(name, *(f"{r[name]:.3f}" for r in results.values()))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
