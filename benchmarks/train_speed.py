"""Training speed: ganzoo's training step next to a plain reference loop, in one run on this device.

    python benchmarks/train_speed.py --data-dir ../shared/data/mnist            # dcgan 32x32, dcgan 64x64, basicgan
    python benchmarks/train_speed.py --data-dir ../shared/data/mnist --profile  # and where the time goes
    python benchmarks/train_speed.py --data-dir ../shared/data/mnist --compile  # compiled vs eager, compile time
    python benchmarks/train_speed.py --smoke --data fake                        # a few tiny steps (what CI runs)

ganzoo's side is the real `ganzoo.train.Trainer`: its `step` on its device-resident batches,
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

--profile sorts a few profiled steps' time (torch.profiler, each operator's own time) into categories: G's
and D's convolutions forward and backward, BatchNorm, the optimiser, elementwise ops, dtype casts (autocast's
bf16 copies of the weights), memory-format copies, and the Python and dispatch overhead (the wall time no
operator accounts for; the profiler's own cost lands there too). With --compile, the first step (which
compiles) is timed on its own, and an eager copy of the step is timed in the same repeats.
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
            self.stats += self.trainer.step(next(self.batches))
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
        trainer.step(real)
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

CATEGORIES = ("G conv forward", "G conv backward", "D conv forward", "D conv backward", "matmul (linear layers)",
              "BatchNorm forward", "BatchNorm backward", "optimiser", "elementwise and other ops",
              "dtype casts (autocast)", "memory-format copies", "Python and dispatch overhead")


def _conv_backward_of_g(event) -> bool:
    """A convolution's backward belongs to G when its gradient is larger than its input (transposed)."""
    shapes = event.input_shapes or []
    return len(shapes) > 1 and len(shapes[0]) == 4 and len(shapes[1]) == 4 and shapes[0][-1] > shapes[1][-1]


def categorise(event) -> str:
    """The category an operator's own (self) time goes to: copies by what they convert, anything else by the
    innermost enclosing operator that names a category (a conv's internal reorders stay copies)."""
    if event.name == "aten::copy_":
        dtypes = [d for d in (event.input_dtypes or []) if d]
        return "dtype casts (autocast)" if len(set(dtypes[:2])) > 1 else "memory-format copies"
    e = event
    while e is not None:
        name = e.name
        if name == "aten::convolution_backward":
            return "G conv backward" if _conv_backward_of_g(e) else "D conv backward"
        if name == "aten::conv_transpose2d":
            return "G conv forward"
        if name == "aten::conv2d":
            return "D conv forward"
        if "batch_norm" in name:
            return "BatchNorm backward" if "backward" in name.lower() else "BatchNorm forward"
        if name.startswith("Optimizer.") or "adam" in name.lower() or name == "aten::_foreach_zero_":
            return "optimiser"
        if name in ("aten::addmm", "aten::mm", "aten::bmm", "aten::linear", "aten::matmul"):
            return "matmul (linear layers)"
        e = e.cpu_parent
    return "elementwise and other ops"


def profile_steps(run, steps: int, device: torch.device, top: int = 12) -> dict:
    """Where a step's time goes: the top operators by self time, the time by category (convolutions of G and
    D, forward and backward; BatchNorm; the optimiser; elementwise; dtype casts; memory-format copies; and the
    Python and dispatch overhead, the step's wall time that no operator accounts for), over `steps` steps."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        synchronize(device)
        t0 = time.perf_counter()
        run(steps)
        synchronize(device)
        wall = time.perf_counter() - t0
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, attr) > 0]
    total = sum(getattr(e, attr) for e in events)
    events.sort(key=lambda e: getattr(e, attr), reverse=True)
    ops = [{"op": e.key, "ms_per_step": getattr(e, attr) / 1000 / steps, "share": getattr(e, attr) / total,
            "calls_per_step": e.count / steps} for e in events[:top]]
    wall_ms = wall * 1000 / steps
    categories = dict.fromkeys(CATEGORIES, 0.0)
    if device.type == "cpu":
        # Operators run on this thread (the autograd engine too, on a CPU): their self times add up to the
        # time spent in kernels; the rest of the wall time is Python and the dispatcher (and the profiler's
        # own cost, which this line carries).
        for e in prof.events():
            if e.self_cpu_time_total > 0 and not e.is_user_annotation:
                categories[categorise(e)] += e.self_cpu_time_total / 1000 / steps
            elif e.self_cpu_time_total > 0 and e.name.startswith("Optimizer."):
                categories["optimiser"] += e.self_cpu_time_total / 1000 / steps
        categories["Python and dispatch overhead"] = max(0.0, wall_ms - sum(categories.values()))
    conv = {"G conv_transpose forward": categories["G conv forward"],
            "G conv_transpose backward": categories["G conv backward"],
            "D conv forward": categories["D conv forward"], "D conv backward": categories["D conv backward"]}
    return {"ops": ops, "total_ms_per_step": total / 1000 / steps, "wall_ms_per_step": wall_ms,
            "categories_ms_per_step": categories, "convolutions_ms_per_step": conv}


def show_profile(title: str, result: dict, out: Console, flops_per_step: float | None = None,
                 matmul_rate_: float | None = None) -> None:
    """The time by category (with the step's utilisation of the matrix rate), then the top operators."""
    categories, wall = result["categories_ms_per_step"], result["wall_ms_per_step"]
    if any(categories.values()):
        table = Table(title=f"{title}: where a step goes ({wall:.0f} ms per step, profiled)", title_justify="left")
        for column in ("category", "ms / step", "share"):
            table.add_column(column, justify="left" if column == "category" else "right")
        for name, ms in categories.items():
            table.add_row(name, f"{ms:.1f}", f"{ms / wall:.0%}")
        out.print(table)
        if flops_per_step and matmul_rate_:
            conv_ms = sum(v for k, v in categories.items() if "conv" in k or "matmul" in k)
            out.print(f"  utilisation of the {matmul_rate_ / 1e9:,.0f} GFLOP/s matrix product: the whole step "
                      f"{flops_per_step / (wall / 1000) / matmul_rate_:.1%}, its convolutions and matmuls alone "
                      f"{flops_per_step / (conv_ms / 1000) / matmul_rate_:.1%}" if conv_ms else "")
    table = Table(title=f"{title}: top operators by own time", title_justify="left")
    table.add_column("operator")
    table.add_column("ms / step", justify="right")
    table.add_column("share", justify="right")
    table.add_column("calls / step", justify="right")
    for op in result["ops"]:
        table.add_row(op["op"], f"{op['ms_per_step']:.1f}", f"{op['share']:.0%}", f"{op['calls_per_step']:g}")
    out.print(table)


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
    p.add_argument("--profile", action="store_true", help="also profile a few steps of each: the time by category (convolutions, BatchNorm, "
                   "optimiser, casts, copies, Python overhead), utilisation, and the top ops")
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
                ours.run(warmup)                    # with --compile, the first step compiles (timed by the step)
                eager = None                        # with --compile: the same step uncompiled, in the same repeats
                if config.compile:
                    eager_config = dataclasses.replace(config, compile=False, out=str(Path(tmp) / f"{case}-eager"))
                    eager = GanzooSteps(Trainer(eager_config, ImageData(prepared), Console(quiet=True)))
                    eager.run(warmup)
                ref = None
                if not args.no_reference:
                    ref = Reference(config, raw, device, args.workers)
                    ref.run(warmup)
                ganzoo_rates, ref_rates, eager_rates = [], [], []
                for r in range(args.repeats):
                    ganzoo_rates.append(images_per_second(ours.run, steps, batch_size, device))
                    if eager:
                        eager_rates.append(images_per_second(eager.run, steps, batch_size, device))
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
                       "mfu": g * flops / peak_cache[dtype],
                       # --compile: the first step's time, compiling included (None: not compiled, or it failed),
                       # and the compiled step's speed over the eager one's, timed in the same repeats
                       "compile_seconds": trainer.step.compile_seconds,
                       "eager_images_per_s": statistics.median(eager_rates) if eager else None,
                       "compile_speedup": g / statistics.median(eager_rates) if eager else None}
                results["rows"].append(row)
                if args.profile:
                    n = 2 if not cuda else 20
                    runs = {"ganzoo": ours.run, **({"reference": ref.run} if ref else {})}
                    for side, run in runs.items():
                        result = profile_steps(run, n, device)
                        result |= {"flops_per_step": flops * batch_size, "matmul_flop_per_s": peak_cache[dtype]}
                        results["profiles"][f"{label} {side}"] = result
                del trainer, ours, ref, eager
    results["load_after"] = os.getloadavg()

    show(results, out)
    for title, result in results["profiles"].items():
        show_profile(title, result, out, result.get("flops_per_step"), result.get("matmul_flop_per_s"))
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
    for r in rows:
        if r["compile"]:
            compiled = (f"compiled in {r['compile_seconds']:.0f}s (its first step; not in the img/s above), then "
                        f"{r['compile_speedup']:.2f}x the eager step's {r['eager_images_per_s']:,.1f} img/s"
                        if r["compile_seconds"] is not None else "compiling failed: the rows are eager")
            out.print(f"{r['case']} {r['precision']} batch {r['batch_size']}: {compiled}")
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
