"""Training speed: ganzoo's training step next to a plain reference loop, in one run on this device.

    python benchmarks/train_speed.py --data-dir ../shared/data/mnist            # dcgan 32x32, dcgan 64x64, basicgan
    python benchmarks/train_speed.py --data-dir ../shared/data/mnist --profile  # and where the time goes
    python benchmarks/train_speed.py --smoke --data fake                        # a few tiny steps (what CI runs)

ganzoo's side is the real `ganzoo.train.Trainer`: its `train_step` on its device-resident batches,
reading the losses back once every --log-every steps, as `ganzoo run` does.

The reference is written like the PyTorch examples DCGAN (dcgan/main.py): fp32, a DataLoader decoding
PIL images with torchvision transforms (Resize, ToTensor, Normalize), D trained on real then on fake,
every number read back with `.item()` every step; same networks (built by ganzoo), same Adam settings.
The one change: ganzoo's discriminators return logits, so the example's Sigmoid + BCELoss becomes
BCEWithLogitsLoss (the same function, numerically safer, no slower).

Both are timed in the same process, on the same device, after warm-up steps, in interleaved repeats
(ganzoo, reference, ganzoo, ...) so that load from other processes hits both alike; the table shows
medians. FLOPs per image come from torch.utils.flop_counter over one ganzoo step (convolutions and
matrix products, forward and backward); utilisation is the achieved FLOP rate over the rate of a
large matrix product measured here in the dtype ganzoo computes in (bf16 on a GPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms
from torchvision.utils import _Image_fromarray

from ganzoo import GanzooError, ImageData, RunConfig
from ganzoo.data import prepare_images
from ganzoo.device import select_device
from ganzoo.models import build_discriminator, build_generator
from ganzoo.plugins import registries
from ganzoo.run import make_config
from ganzoo.train import Trainer

CASES = {  # name: (model, image size)
    "dcgan-32": ("dcgan", 32),
    "dcgan-64": ("dcgan", 64),
    "basicgan-32": ("basicgan", 32),
}

console = Console(stderr=True)


# -- the reference loop ---------------------------------------------------------------------------

class PILImages(Dataset):
    """Images served one by one as PIL images, exactly as torchvision.datasets.MNIST serves them."""

    def __init__(self, images: torch.Tensor, transform):
        self.images, self.transform = images, transform             # uint8 [N, C, H, W] as stored

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = self.images[index]
        pil = _Image_fromarray(image[0].numpy(), mode="L") if image.shape[0] == 1 else \
            _Image_fromarray(image.permute(1, 2, 0).numpy(), mode="RGB")
        return self.transform(pil), 0


class Reference:
    """The pytorch/examples dcgan/main.py loop around ganzoo's networks."""

    def __init__(self, config: RunConfig, raw_images: torch.Tensor, device: torch.device, workers: int):
        torch.manual_seed(config.seed)
        self.device, self.nz = device, config.z_dim
        mean = (0.5,) * config.channels
        dataset = PILImages(raw_images, transforms.Compose([
            transforms.Resize(config.image_size),
            transforms.ToTensor(),
            transforms.Normalize(mean, mean),
        ]))
        self.dataloader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, num_workers=workers)
        self.netG = build_generator(config).to(device)
        self.netD = build_discriminator(config).to(device)
        self.criterion = nn.BCEWithLogitsLoss()
        betas = (config.beta1, config.beta2)
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=config.lr, betas=betas)
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=config.lr, betas=betas)
        self.batches = self._epochs()

    def _epochs(self):
        while True:
            yield from self.dataloader

    def step(self) -> tuple[float, float, float, float, float]:
        data = next(self.batches)
        real_label, fake_label = 1.0, 0.0
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        self.netD.zero_grad()
        real_cpu = data[0].to(self.device)
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=self.device)
        output = self.netD(real_cpu)
        errD_real = self.criterion(output, label)
        errD_real.backward()
        D_x = output.sigmoid().mean().item()
        noise = torch.randn(batch_size, self.nz, device=self.device)
        fake = self.netG(noise)
        label.fill_(fake_label)
        output = self.netD(fake.detach())
        errD_fake = self.criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.sigmoid().mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        self.netG.zero_grad()
        label.fill_(real_label)
        output = self.netD(fake)
        errG = self.criterion(output, label)
        errG.backward()
        D_G_z2 = output.sigmoid().mean().item()
        self.optimizerG.step()
        return errD.item(), errG.item(), D_x, D_G_z1, D_G_z2

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()


# -- ganzoo's side ---------------------------------------------------------------------------------

class GanzooSteps:
    """The real Trainer's step on its own batches, with one read-back per log window as in Trainer.fit."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.batches = self._epochs()
        self.stats = torch.zeros(4, device=trainer.device)
        self.done = 0

    def _epochs(self):
        while True:
            yield from self.trainer.batches.epoch(self.trainer.data_rng)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.stats += self.trainer.train_step(next(self.batches))
            self.done += 1
            if self.done % self.trainer.config.log_every == 0:
                self.stats.tolist()
        self.stats.tolist()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(run, steps: int, batch_size: int, device: torch.device) -> float:
    """Time `run(steps)` from an idle device to an idle device."""
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run(steps)
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1000
    else:
        t0 = time.perf_counter()
        run(steps)
        seconds = time.perf_counter() - t0
    return steps * batch_size / seconds


# -- FLOPs and the hardware's rate ------------------------------------------------------------------

def flops_per_image(config: RunConfig, images: torch.Tensor) -> float:
    """Convolution and matmul FLOPs of one ganzoo training step (eager), per image."""
    eager = dataclasses.replace(config, compile=False)
    trainer = Trainer(eager, ImageData(images[:eager.batch_size]), Console(quiet=True))
    real = next(trainer.batches.epoch(trainer.data_rng))
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(real)
    return counter.get_total_flops() / eager.batch_size


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int) -> float:
    """FLOP/s of an n x n x n matrix product in dtype: the best of a few timed runs."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for i in range(6):
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        synchronize(device)
        if i:  # the first is warm-up
            best = min(best, (time.perf_counter() - t0) / 4)
    return 2 * n ** 3 / best


# -- where the time goes ----------------------------------------------------------------------------

def profile_steps(run, steps: int, device: torch.device, top: int = 12) -> dict:
    """Top operators by self time over `steps` steps, and convolution time split into G's and D's."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        run(steps)
        synchronize(device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, attr) > 0]
    total = sum(getattr(e, attr) for e in events)
    events.sort(key=lambda e: getattr(e, attr), reverse=True)
    ops = [{"op": e.key, "ms_per_step": getattr(e, attr) / 1000 / steps, "share": getattr(e, attr) / total,
            "calls_per_step": e.count / steps} for e in events[:top]]
    # Convolutions by network: G's are transposed (the module calls conv_transpose2d; in the backward,
    # the gradient is larger than the input), D's are strided. Inclusive times: each kernel counted once.
    total_attr = "device_time_total" if device.type == "cuda" else "cpu_time_total"
    conv = {"G conv_transpose forward": 0.0, "G conv_transpose backward": 0.0,
            "D conv forward": 0.0, "D conv backward": 0.0}
    for e in prof.key_averages(group_by_input_shape=True):
        ms = getattr(e, total_attr) / 1000 / steps
        if e.key == "aten::conv_transpose2d":
            conv["G conv_transpose forward"] += ms
        elif e.key == "aten::conv2d":
            conv["D conv forward"] += ms
        elif e.key == "aten::convolution_backward" and e.input_shapes and len(e.input_shapes[0]) == 4:
            grad_output, inp = e.input_shapes[0], e.input_shapes[1]
            conv["G conv_transpose backward" if grad_output[-1] > inp[-1] else "D conv backward"] += ms
    return {"ops": ops, "total_ms_per_step": total / 1000 / steps, "convolutions_ms_per_step": conv}


def show_profile(title: str, result: dict, out: Console) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("operator")
    table.add_column("ms / step", justify="right")
    table.add_column("share", justify="right")
    table.add_column("calls / step", justify="right")
    for op in result["ops"]:
        table.add_row(op["op"], f"{op['ms_per_step']:.1f}", f"{op['share']:.0%}", f"{op['calls_per_step']:g}")
    out.print(table)
    total = result["total_ms_per_step"]
    conv = result["convolutions_ms_per_step"]
    parts = "; convolutions: " + ", ".join(f"{k} {v:.0f} ms ({v / total:.0%})" for k, v in conv.items()) \
        if any(conv.values()) else ""
    out.print(f"  per step: {total:.0f} ms profiled{parts}")


# -- the run ----------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist", help="registered dataset (default mnist)")
    p.add_argument("--data-dir", default=os.environ.get("GANZOO_MNIST_DIR"),
                   help="local copy of the dataset (default $GANZOO_MNIST_DIR)")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    p.add_argument("--batch-sizes", default=None, help="comma-separated (default 128; 128,512 on CUDA)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per repeat (default 10 CPU, 200 CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3 CPU, 30 CUDA)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timed repeats; medians are shown")
    p.add_argument("--width", type=int, default=64, help="g_width and d_width (default 64)")
    p.add_argument("--images", type=int, default=None, help="use only the first N images of the dataset")
    p.add_argument("--workers", type=int, default=2, help="reference DataLoader workers (the example's default, 2)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--precision", default=None, help="ganzoo's --precision (default auto)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="ganzoo's --compile")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="ganzoo's --channels-last")
    p.add_argument("--no-reference", action="store_true", help="time ganzoo only")
    p.add_argument("--profile", action="store_true", help="also profile a few steps of each and show the top ops")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--smoke", action="store_true",
                   help="a few steps of tiny networks on a few hundred images: checks the script, not speed")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.warmup, args.repeats = args.steps or 2, args.warmup or 1, 1
        args.width, args.images, args.workers = 8, args.images or 256, 0
        args.batch_sizes = args.batch_sizes or "16"
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Console() if Console().is_terminal else Console(width=150)  # a log file gets the whole table
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    cuda = device.type == "cuda"
    steps = args.steps or (200 if cuda else 10)
    warmup = args.warmup if args.warmup is not None else (30 if cuda else 3)
    batch_sizes = [int(b) for b in (args.batch_sizes or ("128,512" if cuda else "128")).split(",")]
    unknown = [c for c in args.cases.split(",") if c not in CASES]
    if unknown:
        raise GanzooError(f"Unknown case(s) {unknown}; choose from {', '.join(CASES)}.")
    cases = [CASES[c] + (c,) for c in args.cases.split(",")]

    machine = torch.cuda.get_device_name(device) if cuda else (platform.processor() or platform.machine())
    load_before = os.getloadavg()
    results = {"device": str(device), "machine": machine, "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "steps": steps, "warmup": warmup, "repeats": args.repeats,
               "load_before": load_before, "rows": [], "profiles": {}}

    entry = registries().datasets.get(args.data)
    raw_cache: dict[int, torch.Tensor] = {}
    peak_cache: dict[torch.dtype, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model, size, case in cases:
            if size not in raw_cache:
                raw = entry.factory(root=args.data_dir, download=True, split="train", image_size=size,
                                    channels=entry.info.get("channels", 1)).images
                raw_cache[size] = raw[:args.images] if args.images else raw
            raw = raw_cache[size]
            for batch_size in batch_sizes:
                config = make_config(model, dict(
                    data=args.data, data_dir=args.data_dir, image_size=size, batch_size=batch_size,
                    g_width=args.width, d_width=args.width, device=args.device, precision=args.precision,
                    compile=args.compile, channels_last=args.channels_last))
                config.out = str(Path(tmp) / case)
                prepared = prepare_images(raw, config.image_size, config.channels)
                label = f"{case} batch {batch_size}"
                console.print(f"[bold]{label}[/bold]: warming up")
                trainer = Trainer(config, ImageData(prepared), console)
                ours = GanzooSteps(trainer)
                ours.run(warmup)
                ref = None
                if not args.no_reference:
                    ref = Reference(config, raw, device, args.workers)
                    ref.run(warmup)
                ganzoo_rates, ref_rates = [], []
                for r in range(args.repeats):
                    ganzoo_rates.append(images_per_second(ours.run, steps, batch_size, device))
                    if ref:
                        ref_rates.append(images_per_second(ref.run, steps, batch_size, device))
                    console.print(f"  repeat {r + 1}/{args.repeats}: ganzoo {ganzoo_rates[-1]:,.1f} img/s"
                                  + (f", reference {ref_rates[-1]:,.1f} img/s" if ref else ""))
                flops = flops_per_image(config, prepared)
                dtype = trainer.precision.autocast_dtype or torch.float32
                if dtype not in peak_cache:
                    peak_cache[dtype] = matmul_rate(device, dtype, 8192 if cuda else (512 if args.smoke else 2048))
                g = statistics.median(ganzoo_rates)
                row = {"case": case, "model": model, "image_size": size, "batch_size": batch_size,
                       "precision": trainer.precision.name, "compile": config.compile,
                       "channels_last": config.channels_last,
                       "ganzoo_images_per_s": g, "ganzoo_all": ganzoo_rates,
                       "reference_images_per_s": statistics.median(ref_rates) if ref else None,
                       "reference_all": ref_rates,
                       "ratio": g / statistics.median(ref_rates) if ref else None,
                       "gflop_per_image": flops / 1e9, "achieved_tflop_per_s": g * flops / 1e12,
                       "matmul_tflop_per_s": peak_cache[dtype] / 1e12, "matmul_dtype": str(dtype).split(".")[-1],
                       "mfu": g * flops / peak_cache[dtype]}
                results["rows"].append(row)
                if args.profile:
                    n = 2 if not cuda else 20
                    results["profiles"][f"{label} ganzoo"] = profile_steps(ours.run, n, device)
                    if ref:
                        results["profiles"][f"{label} reference"] = profile_steps(ref.run, n, device)
                del trainer, ours, ref
    results["load_after"] = os.getloadavg()

    show(results, out)
    for title, result in results["profiles"].items():
        show_profile(title, result, out)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


def show(results: dict, out: Console) -> None:
    rows = results["rows"]
    table = Table(title=f"training speed on {results['device']} ({results['machine']}, {results['cpus']} CPUs, "
                        f"{results['threads']} threads, torch {results['torch']})", title_justify="left")
    unit, scale = ("TFLOP/s", 1.0) if results["device"].startswith("cuda") else ("GFLOP/s", 1e3)
    for column in ("case", "batch", "ganzoo img/s", "reference img/s", "ratio", "GFLOP/img", f"ganzoo {unit}",
                   f"matmul {unit}", "MFU"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for r in rows:
        spread = lambda xs: f" ({min(xs):,.0f}-{max(xs):,.0f})" if len(xs) > 1 else ""
        table.add_row(
            f"{r['case']} {r['precision']}" + (" compiled" if r["compile"] else "")
            + (" NHWC" if r["channels_last"] else ""),
            str(r["batch_size"]),
            f"{r['ganzoo_images_per_s']:,.1f}{spread(r['ganzoo_all'])}",
            f"{r['reference_images_per_s']:,.1f}{spread(r['reference_all'])}" if r["ratio"] else "-",
            f"{r['ratio']:.2f}x" if r["ratio"] else "-",
            f"{r['gflop_per_image']:.3f}", f"{r['achieved_tflop_per_s'] * scale:,.1f}",
            f"{r['matmul_tflop_per_s'] * scale:,.1f} {r['matmul_dtype']}", f"{r['mfu']:.1%}")
    out.print(table)
    lb, la = results["load_before"], results["load_after"]
    out.print(f"median of {results['repeats']} interleaved repeats of {results['steps']} steps, after "
              f"{results['warmup']} warm-up steps (range in brackets); reference: fp32, DataLoader + PIL, "
              f".item() every step. Load average {lb[0]:.1f} before, {la[0]:.1f} after "
              f"({results['cpus']} CPUs)" + (": above the CPU count, other processes shared the machine."
                                             if max(lb[0], la[0]) > results["cpus"] + 0.5 else
                                             ": the benchmark itself (the reference's loader workers "
                                             "included), no other load."))


if __name__ == "__main__":
    try:
        main()
    except GanzooError as exc:
        console.print(f"[bold red]error[/bold red]: {exc}")
        sys.exit(1)
