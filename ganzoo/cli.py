"""The `ganzoo` command line: run, sample, list, plugins, and the analyses (ganzoo.analysis.commands)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .analysis import commands as analysis
from .errors import GanzooError

console = Console(stderr=True)   # progress, tables, errors
out = Console()                  # what a command is asked to print

# Flags that map one-to-one onto RunConfig fields; default None means "not given".
RUN_FLAGS = [
    ("--epochs", int, "epochs to train (default 5)"),
    ("--batch-size", int, "images per step (default 128)"),
    ("--lr", float, "Adam learning rate (default 2e-4)"),
    ("--beta1", float, "Adam beta1 (default 0.5)"),
    ("--beta2", float, "Adam beta2 (default 0.999)"),
    ("--image-size", int, "side of the square training images (default: the dataset's, 32 for MNIST)"),
    ("--channels", int, "1 (grey) or 3 (colour) (default: the dataset's)"),
    ("--z-dim", int, "latent dimension (default 100)"),
    ("--latent", str, "latent prior: normal or uniform (default normal)"),
    ("--g-width", int, "generator's narrowest feature width (default 64)"),
    ("--d-width", int, "discriminator's narrowest feature width (default 64)"),
    ("--seed", int, "random seed (default 0)"),
    ("--device", str, "auto, cpu, cuda or cuda:N (default auto)"),
    ("--precision", str, "auto, fp32, bf16 or fp16 (default auto: bf16 on CUDA, fp32 on CPU)"),
    ("--log-every", int, "steps between reading losses back and logging (default 50)"),
    ("--checkpoint-every", int, "steps between checkpoints (default 500, and every epoch's end)"),
    ("--samples", int, "fixed-noise images in each epoch's grid (default 64)"),
    ("--compile", bool, "torch.compile G and D; falls back to eager with a warning if compiling fails "
                        "(default off: no gain measured on a CPU)"),
    ("--channels-last", bool, "NHWC memory format for convolutional networks (default off)"),
]
RESUMABLE = {"epochs", "device", "precision", "log_every", "checkpoint_every", "compile", "channels_last"}


def _flag_field(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, like every other ganzoo error
        raise GanzooError(f"{message} (see: {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ganzoo", description="A plugin-based GAN zoo.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="train a model", description="Train a registered model on a dataset.")
    run.add_argument("model", nargs="?", help="registered model name (see `ganzoo list`)")
    run.add_argument("--data", default=None, help="dataset name, or a folder of images (default mnist)")
    run.add_argument("--data-dir", default=None, help="local copy of the dataset (for mnist: the four IDX files)")
    run.add_argument("--out", default=None, help="run folder (default runs/<model>-<data>, numbered)")
    run.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_DIR",
                     help="continue the run in RUN_DIR (or in --out) from its last checkpoint")
    run.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    run.add_argument("--no-download", action="store_true", help="never download; use --data-dir or the cache")
    for flag, type_, help_ in RUN_FLAGS:
        if type_ is bool:  # --flag / --no-flag
            run.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            run.add_argument(flag, type=type_, default=None, help=help_)

    sample = sub.add_parser("sample", help="draw samples from a weights file into a PNG grid")
    sample.add_argument("weights", help="a .safetensors file written by ganzoo run")
    sample.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--out", default="samples.png", help="PNG file to write (default samples.png)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="auto")
    sample.add_argument("--nrow", type=int, default=None, help="images per row (default: a square grid)")

    sub.add_parser("list", help="every registered model, generator, discriminator, loss and dataset")
    sub.add_parser("plugins", help="installed plugins, what each registered, and any that failed to load")

    check = sub.add_parser("check-plugin", help="run the conformance kit on installed plugins",
                           description="Check every generator, discriminator, loss and model a plugin registers "
                                       "against ganzoo's contracts (see ganzoo.testing); exit status 1 on a failure.")
    check.add_argument("names", nargs="*", metavar="NAME", help="plugin name as `ganzoo plugins` shows it, or its "
                                                                  "distribution's name")
    check.add_argument("--all", action="store_true", help="check every installed plugin, built-ins included")
    check.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    analysis.add_commands(sub)
    return parser


# -- commands -------------------------------------------------------------------------------------

def cmd_run(args) -> int:
    from .run import default_out, make_config, train
    from .train import resume_config

    overrides = {_flag_field(flag): getattr(args, _flag_field(flag)) for flag, _, _ in RUN_FLAGS}
    if args.resume:
        run_dir = args.resume if isinstance(args.resume, str) else args.out
        if not run_dir:
            raise GanzooError("--resume needs the run folder: --resume RUN_DIR, or --out RUN_DIR --resume.")
        config = resume_config(run_dir)
        if args.model and args.model != config.model:
            raise GanzooError(f"{run_dir} holds a {config.model!r} run, not {args.model!r}.")
        fixed = sorted(k for k, v in overrides.items() if v is not None and k not in RESUMABLE)
        if fixed:
            raise GanzooError(f"A resumed run keeps its config; only {', '.join(sorted(RESUMABLE))} may change "
                              f"(got {', '.join(fixed)}).")
        for key in RESUMABLE:
            if overrides[key] is not None:
                setattr(config, key, overrides[key])
        config.out = run_dir
        config.validate()
        train(config, resume=True, download=not args.no_download, console=console)
        return 0
    if not args.model:
        raise GanzooError("Name a model to train, e.g. `ganzoo run dcgan --data mnist` (see `ganzoo list`).")
    overrides["data"] = args.data or "mnist"
    overrides["data_dir"] = args.data_dir
    config = make_config(args.model, overrides)
    config.out = args.out or default_out(config)
    train(config, download=not args.no_download, overwrite=args.overwrite, console=console)
    return 0


def cmd_sample(args) -> int:
    import torch

    from .checkpoint import load_generator
    from .device import select_device
    from .models import sample_latent
    from .train import save_grid

    if args.n <= 0:
        raise GanzooError(f"-n must be positive, got {args.n}.")
    device = select_device(args.device)
    generator, config = load_generator(args.weights, device)
    z = sample_latent(args.n, config, generator=torch.Generator().manual_seed(args.seed)).to(device)
    with torch.inference_mode():
        images = torch.cat([generator(part) for part in z.split(256)])
    nrow = args.nrow or max(1, int(math.ceil(math.sqrt(args.n))))
    path = save_grid(images, Path(args.out), nrow=nrow)
    out.print(f"{args.n} samples of {config.model} ({config.image_size}x{config.image_size}, "
              f"{config.channels} channel(s)) -> {path}")
    return 0


def cmd_list(args) -> int:
    from .plugins import registries

    regs = registries()
    for registry in regs.all():
        table = Table(title=registry.plural, title_justify="left")
        table.add_column("name", style="bold cyan")
        table.add_column("description")
        table.add_column("plugin", style="dim")
        for entry in registry:
            table.add_row(entry.name, escape(entry.description), entry.plugin)  # plugin text is not markup
        out.print(table)
    _warn_failed(regs)
    return 0


def cmd_plugins(args) -> int:
    from .plugins import registries

    regs = registries()
    table = Table(title="plugins", title_justify="left")
    table.add_column("name", no_wrap=True)  # what `ganzoo check-plugin NAME` takes: never cut short
    for column in ("version", "source", "registered", "status"):
        table.add_column(column)
    for info in regs.plugins:
        registered = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in info.registered.items())
        status = f"[red]failed: {escape(info.error)}[/red]" if info.error else "[green]ok[/green]"
        table.add_row(info.name, info.version, info.source, registered or "-", status)
    out.print(table)
    return 0


def _warn_failed(regs) -> None:
    for info in regs.failed:
        console.print(f"[yellow]warning[/yellow]: plugin {info.name!r} failed to load: {info.error}")


def cmd_check_plugin(args) -> int:
    from .testing import check_plugins_command

    return check_plugins_command(args.names, every=args.all, device=args.device, out=out, console=console)


COMMANDS = {"run": cmd_run, "sample": cmd_sample, "list": cmd_list, "plugins": cmd_plugins,
            "check-plugin": cmd_check_plugin, **analysis.COMMANDS}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except GanzooError as exc:
        console.print(f"[bold red]error[/bold red]: {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/bold red]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
