"""The MNIST evaluator: a small CNN classifier whose penultimate layer and class probabilities score GANs.

This is the approach TF-GAN takes for its MNIST score and MNIST Fréchet distance: a
network trained on MNIST alone sees digits the way Inception never does. ganzoo trains
it itself, reproducibly from a seed, and ships the weights as a small safetensors file
inside the package (weights/mnist_evaluator.safetensors):

    python -m ganzoo_plugins.mnist_evaluator --data-dir ../shared/data/mnist --seed 0

writes mnist_evaluator.safetensors in the current folder (the shipped file is replaced only by an
--out that names it).

Any image size or channel count goes in: images are brought to 28x28 grey with
ganzoo.data.prepare_images (the function every dataset goes through), so generated
samples and real digits reach the network by the same path.

The file stands alone (nanoGPT style): config, network, loading, training, command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ganzoo.api import GanzooError, prepare_images, progress, to_model_range

WEIGHTS = Path(__file__).resolve().parent / "weights" / "mnist_evaluator.safetensors"


@dataclass(frozen=True)
class EvaluatorConfig:
    image_size: int = 28              # MNIST's own resolution; inputs are resized to it
    # (width, stride) of each 3x3 convolution: 28x28 -> 14 -> 7 -> 4; about 7M multiply-adds per image
    convs: tuple[tuple[int, int], ...] = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2))
    features: int = 128               # the penultimate layer: what the Fréchet distance compares
    classes: int = 10
    dropout: float = 0.2

    @classmethod
    def from_json(cls, text: str) -> "EvaluatorConfig":
        values = json.loads(text)
        values["convs"] = tuple(tuple(c) for c in values["convs"])
        return cls(**values)


def _conv(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class MnistEvaluator(nn.Module):
    """All-convolutional classifier with BatchNorm: 28x28 -> 4x4, global average pool, 128-d features, 10 logits."""

    def __init__(self, config: EvaluatorConfig = EvaluatorConfig()):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = 1
        for width, stride in config.convs:       # [B, c_in, s, s] -> [B, width, s / stride, s / stride]
            layers += _conv(c_in, width, stride)
            c_in = width
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())      # [B, 128]
        self.embed = nn.Sequential(nn.Linear(c_in, config.features), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.features, config.classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 1, 28, 28] in [-1, 1] -> (features [B, 128], logits [B, 10])."""
        features = self.embed(self.body(x))
        return features, self.head(features)

    @torch.inference_mode()
    def score(self, images: torch.Tensor, batch_size: int = 1000, console=None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images [N, C, H, W] of any size -> (features [N, 128], class probabilities [N, 10]), float64 on CPU.

        Images are brought to 28x28 grey by ganzoo.data.prepare_images, the path
        training data takes, so real and generated images are treated alike.
        A rich console, if given, shows a progress bar.
        """
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise GanzooError(f"The MNIST evaluator scores uint8 images [N, C, H, W], got {images.dtype} "
                              f"{tuple(images.shape)}.")
        device = next(self.parameters()).device
        features, probs = [], []
        parts = images.split(batch_size)
        for part in progress(parts, "MNIST evaluator", len(parts), console):
            x = to_model_range(prepare_images(part, self.config.image_size, 1).to(device))
            f, logits = self(x)
            features.append(f.double().cpu())
            probs.append(logits.double().softmax(1).cpu())
        return torch.cat(features), torch.cat(probs)


@cache
def load_evaluator(path: str = str(WEIGHTS), device: str = "cpu") -> MnistEvaluator:
    """The shipped evaluator (or another weights file written by this module's trainer), in eval mode."""
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise GanzooError(f"The MNIST evaluator weights {path} are missing or unreadable ({exc}); reinstall "
                          f"ganzoo or retrain them: python -m ganzoo_plugins.mnist_evaluator --data-dir DIR.") from None
    model = MnistEvaluator(EvaluatorConfig.from_json(metadata["config"]))
    model.load_state_dict(tensors)
    return model.to(device).eval()


# -- training ------------------------------------------------------------------------------------

def random_affine(x: torch.Tensor, generator: torch.Generator, degrees: float = 10.0, scale: float = 0.1,
                  shift: float = 0.1) -> torch.Tensor:
    """A different small rotation, scaling and shift per image (torchvision's RandomAffine draws one per batch).

    x: [B, 1, H, W] in [0, 1] (black background, so out-of-image pixels are background).
    """
    B = x.shape[0]
    u = torch.rand(B, 4, generator=generator) * 2 - 1                     # [B, 4] in [-1, 1]
    angle = u[:, 0] * math.radians(degrees)
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * shift * 2], 1),
                         torch.stack([sin, cos, u[:, 3] * shift * 2], 1)], 1)   # [B, 2, 3]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.inference_mode()
def accuracy(model: MnistEvaluator, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy on uint8 images of any size."""
    model.eval()
    _, probs = model.score(images)
    return (probs.argmax(1) == labels).double().mean().item()


def train(data_dir: str | None, *, seed: int = 0, epochs: int = 3, batch_size: int = 128, lr: float = 3e-3,
          out: str | Path = WEIGHTS.name, config: EvaluatorConfig = EvaluatorConfig(), limit: int | None = None,
          console=None) -> dict:
    """Train the evaluator on MNIST's train split from `seed`; write safetensors to `out`; return the report.

    AdamW with a one-cycle schedule and per-image random affine augmentation
    (which also teaches the network the slight blur of resampled digits).
    `limit` keeps only that many train and test images (for quick checks).
    """
    from rich.progress import Progress

    from ganzoo.api import atomic_write, load_dataset

    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    train_set = load_dataset("mnist", root=data_dir, split="train", image_size=config.image_size, channels=1)
    test_set = load_dataset("mnist", root=data_dir, split="test", image_size=config.image_size, channels=1)
    if limit:
        for part in (train_set, test_set):
            part.images, part.labels = part.images[:limit], part.labels[:limit]
    model = MnistEvaluator(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = len(train_set) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    start = time.perf_counter()
    with Progress(console=console) as progress:
        task = progress.add_task("training the MNIST evaluator", total=epochs * steps_per_epoch)
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(train_set), generator=rng)
            for step in range(steps_per_epoch):
                idx = order[step * batch_size:(step + 1) * batch_size]
                x = random_affine(train_set.images[idx].float() / 255, rng) * 2 - 1   # [B, 1, 28, 28] in [-1, 1]
                _, logits = model(x)
                loss = F.cross_entropy(logits, train_set.labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                progress.update(task, advance=1, description=f"epoch {epoch + 1}/{epochs} loss {loss.item():.3f}")
            progress.console.print(f"epoch {epoch + 1}/{epochs} done in {time.perf_counter() - start:.0f} s, "
                                   f"last loss {loss.item():.4f}")
    seconds = time.perf_counter() - start
    test_accuracy = accuracy(model, test_set.images, test_set.labels)
    report = {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr, "train_seconds": round(seconds, 1),
              "test_accuracy": test_accuracy, "torch": torch.__version__, "threads": torch.get_num_threads()}
    metadata = {"config": json.dumps(dataclasses.asdict(config)), "report": json.dumps(report)}
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write(out, lambda tmp: save_file(state, str(tmp), metadata=metadata))
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ganzoo_plugins.mnist_evaluator",
                                     description="Retrain ganzoo's MNIST evaluator network reproducibly from a seed.")
    parser.add_argument("--data-dir", default=None, help="folder with the four MNIST IDX files (default: cache/download)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights, order and augmentation "
                                                             "(default 0)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs over MNIST's training split (default 3)")
    parser.add_argument("--out", default=WEIGHTS.name,
                        help=f"weights file to write (default: {WEIGHTS.name} in the current folder; the metrics "
                             f"read {WEIGHTS}, which only an --out naming it replaces)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = train(args.data_dir, seed=args.seed, epochs=args.epochs, out=args.out)
    except GanzooError as exc:
        print(f"error: {exc}")
        return 1
    except KeyboardInterrupt:     # one sentence, no traceback: nothing was written (the file is written at the end)
        print(f"interrupted: training stopped, {args.out} was not written; run the same command again to train "
              f"the evaluator from the start.", file=sys.stderr)
        return 130
    print(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
