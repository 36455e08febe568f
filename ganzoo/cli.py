"""The `ganzoo` command line: run, compare, sample, eval, list, plugins, and the analyses (ganzoo.analysis.commands)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .terminal import Console
from rich.markup import escape
from rich.table import Table

from .analysis import commands as analysis
from .config import UNLIMITED_EPOCHS, parse_budget, parse_duration
from .errors import GanzooError, Interrupted

console = Console(stderr=True)   # progress, tables, errors
out = Console()                  # what a command is asked to print

# Flags that map one-to-one onto RunConfig fields; default None means "not given".
RUN_FLAGS = [
    ("--epochs", int, "epochs to train (default 5)"),
    ("--budget", "duration", "stop cleanly after this much training time, e.g. 90s, 5m, 1h: time in the training "
                             "loop, loading and --eval-every scoring not counted, summed over resumes; none: no "
                             "budget (default: none)"),
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
    ("--threads", int, "CPU threads for torch (default 0: torch's choice, one per core; fewer run faster on a "
                       "machine other jobs share)"),
    ("--precision", str, "auto, fp32, bf16 or fp16 (default auto: bf16 on CUDA, fp32 on CPU)"),
    ("--log-every", int, "steps between reading losses back and logging (default 50)"),
    ("--checkpoint-every", int, "steps between checkpoints (default 500, and every epoch's end)"),
    ("--samples", int, "fixed-noise images in each epoch's grid (default 64)"),
    ("--on-divergence", str, "when losses or weights become NaN/Inf: stop (default), or rollback to the last "
                             "checkpoint with half the learning rate"),
    ("--eval-every", int, "evaluate with the dataset's metrics every K epochs (default 0: never)"),
    ("--eval-n", int, "samples per evaluation during training (default 10000)"),
    ("--metrics", str, "comma-separated metrics for --eval-every (default: the dataset's; see `ganzoo list`)"),
    ("--compile", bool, "torch.compile G and D; falls back to eager with a warning if compiling fails "
                        "(default off: no gain measured on a CPU)"),
    ("--channels-last", bool, "NHWC memory format for convolutional networks (default off)"),
]
RESUMABLE = {"epochs", "budget", "device", "threads", "precision", "log_every", "checkpoint_every", "on_divergence",
             "compile", "channels_last", "eval_every", "eval_n", "metrics"}
MAX_SAMPLE_N = 10_000
WEIGHTS_HELP = ("a run folder, or a weights file from `ganzoo run` (<run>/<model>.safetensors or "
                "<run>/checkpoint.safetensors)")


# Run flags `compare` passes to every model alike (the rest follow each model's own defaults).
COMPARE_FLAGS = ("--batch-size", "--image-size", "--channels", "--z-dim", "--g-width", "--d-width", "--precision",
                 "--log-every", "--threads")


def _flag_field(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


class UsageError(GanzooError):
    """A command line argparse cannot read: exit status 2, as argparse itself uses."""

    exit_code = 2


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line like every other ganzoo error, and exit 2
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _add_run_flag(parser: argparse.ArgumentParser, flag: str, type_, help_: str) -> None:
    """A RUN_FLAGS entry as an option whose default None means "not given"."""
    if type_ is bool:  # --flag / --no-flag
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_)
    else:
        parser.add_argument(flag, type=parse_budget if type_ == "duration" else type_, default=None, help=help_)


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
        _add_run_flag(run, flag, type_, help_)

    cmp = sub.add_parser("compare", help="train several models alike, score them alike, write a report",
                         description="Train every named model under the same data, seeds and budget (or score "
                                     "finished runs given as paths), evaluate all with the same metrics, and write "
                                     "a report folder: report.md, results.json, samples/losses/metrics plots.")
    cmp.add_argument("models", nargs="+", metavar="MODEL", help="registered model names, run folders or weights files")
    cmp.add_argument("--data", default="mnist", help="dataset name (default mnist)")
    cmp.add_argument("--data-dir", default=None, help="local copy of the dataset")
    cmp.add_argument("--epochs", type=int, default=None, help="equal epochs for every model (default 1)")
    cmp.add_argument("--budget", type=parse_duration, default=None,
                     help="equal training time for every model instead, e.g. 90s, 5m")
    cmp.add_argument("--points", type=int, default=4, help="evaluation points along a --budget run (default 4)")
    cmp.add_argument("--seeds", type=int, default=1, help="seeds per model; scores show mean ± std (default 1)")
    cmp.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    cmp.add_argument("-n", type=int, default=None, help="samples for the final scores (default: the metrics' own)")
    cmp.add_argument("--curve-n", type=int, default=2000, help="samples at intermediate points (default 2000)")
    cmp.add_argument("--metrics", default=None, help="comma-separated metric names (default: the dataset's)")
    for flag, type_, help_ in RUN_FLAGS:
        if flag in COMPARE_FLAGS:
            _add_run_flag(cmp, flag, type_, help_ + ", the same for every model")
    cmp.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    cmp.add_argument("--out", default=None, help="report folder (default reports/compare-<models>-<data>)")
    cmp.add_argument("--resume", action="store_true", help="continue an interrupted comparison in --out")
    cmp.add_argument("--overwrite", action="store_true", help="replace a comparison in --out")
    cmp.add_argument("--no-download", action="store_true", help="never download; use --data-dir or the cache")

    sample = sub.add_parser("sample", help="draw samples from a weights file into a PNG grid",
                            description="Draw N samples of a trained generator into one PNG grid. Sample number i "
                                        "of a seed is the same z as number i on `ganzoo sheet` and in the analyses.")
    sample.add_argument("weights", help=WEIGHTS_HELP)
    sample.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--out", default="samples.png", help="PNG file to write (default samples.png)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (default 0)")
    sample.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    sample.add_argument("--nrow", type=int, default=None, help="images per row (default: a square grid)")

    ev = sub.add_parser("eval", help="score a generator with registered metrics, beside real data",
                        description="Score a weights file with registered metrics (see `ganzoo list`). The table "
                                    "has a row for real training images scored the same way: the floor.")
    ev.add_argument("weights", help=WEIGHTS_HELP)
    ev.add_argument("--data", default=None, help="dataset whose test split is the reference (default: the run's)")
    ev.add_argument("--data-dir", default=None, help="local copy of that dataset (default: the run's)")
    ev.add_argument("--metrics", default=None, help="comma-separated metric names (default: the dataset's)")
    ev.add_argument("-n", type=int, default=None,
                    help="samples to score (default: what the metrics ask for, 10000; 25600 for stacked_modes)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the latents and of the real subset (default 0)")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    ev.add_argument("--json", default=None, help="where to write the results (default: WEIGHTS with .eval.json)")
    ev.add_argument("--inception-weights", default=None,
                    help="FID Inception weights (safetensors) for fid/kid (default: $GANZOO_INCEPTION_WEIGHTS)")
    ev.add_argument("--no-download", action="store_true", help="never download; use --data-dir or the cache")

    sub.add_parser("list", help="every registered model, generator, discriminator, loss, dataset and metric",
                   description="List every name a command accepts: models, generators, discriminators, losses, "
                               "datasets and metrics, each with its description and the plugin that registered it.")
    sub.add_parser("plugins", help="installed plugins, what each registered, and any that failed to load",
                   description="List the built-in and installed plugins: version, where each comes from, what it "
                               "registered, and the error of any that failed to load (the others keep working).")

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
        if overrides["epochs"] is not None and overrides["budget"] is None and config.budget:
            console.print(f"--epochs {overrides['epochs']}: the run's --budget of {config.budget:g}s is lifted "
                          f"(give --budget as well to keep one)")
            overrides["budget"] = 0.0
        for key in RESUMABLE:
            if overrides[key] is not None:
                setattr(config, key, overrides[key])
        if config.epochs >= UNLIMITED_EPOCHS and not config.budget:
            raise GanzooError(f"{run_dir} was started with --budget alone; without a budget it needs --epochs N "
                              f"to know when to stop.")
        config.out = run_dir
        config.validate()
        train(config, resume=True, download=not args.no_download, console=console)
        return 0
    if not args.model:
        raise GanzooError("Name a model to train, e.g. `ganzoo run dcgan --data mnist` (see `ganzoo list`).")
    if overrides["budget"] and not overrides["epochs"]:
        overrides["epochs"] = UNLIMITED_EPOCHS                 # the budget alone says when to stop
    overrides["data"] = args.data or "mnist"
    overrides["data_dir"] = args.data_dir
    config = make_config(args.model, overrides)
    config.out = args.out or default_out(config)
    train(config, download=not args.no_download, overwrite=args.overwrite, console=console)
    return 0


def cmd_compare(args) -> int:
    import shlex

    from .compare import Comparison, Settings, parse_contenders, rich_table, write_report
    from .run import absolute_path

    contenders = parse_contenders(args.models)
    data_dir = absolute_path(args.data_dir) if args.data_dir else args.data_dir    # usable from any folder later
    settings = Settings(data=args.data, data_dir=data_dir, epochs=args.epochs, budget=args.budget,
                        points=args.points, seeds=args.seeds, seed=args.seed, n=args.n, curve_n=args.curve_n,
                        metrics=args.metrics, device=args.device, download=not args.no_download,
                        overrides={_flag_field(f): getattr(args, _flag_field(f)) for f in COMPARE_FLAGS
                                   if getattr(args, _flag_field(f)) is not None})
    for flag, value in (("-n", args.n), ("--curve-n", args.curve_n), ("--epochs", args.epochs)):
        if value is not None and value < 2 - (flag == "--epochs"):
            raise GanzooError(f"{flag} is too small: {value}.")
    folder = Path(args.out or Path("reports") / f"compare-{'-'.join(c.label for c in contenders)}-{args.data}")
    comparison = Comparison(contenders, settings, folder, console=console, resume=args.resume,
                            overwrite=args.overwrite)
    try:
        results = comparison.run()
    except Interrupted as exc:
        raise Interrupted(f"{exc} The comparison so far is in {folder}/results.json; continue it with "
                          f"the same command and --resume.") from None
    report = write_report(results, folder, "ganzoo " + shlex.join(args.argv))
    out.print(rich_table(results))
    console.print(f"[green]report[/green]: {report} (results.json, samples.png, losses.png, metrics.png beside it)")
    return 0


def cmd_sample(args) -> int:
    import torch

    from .checkpoint import load_generator
    from .device import select_device
    from .models import latents
    from .train import save_grid

    if not 0 < args.n <= MAX_SAMPLE_N:
        raise GanzooError(f"-n must lie between 1 and {MAX_SAMPLE_N}, got {args.n}.")
    if not Path(args.out).name or Path(args.out).is_dir():
        raise GanzooError(f"--out must name a file to write the PNG grid to, got {args.out!r}.")
    if args.nrow is not None and args.nrow <= 0:
        raise GanzooError(f"--nrow must be a positive integer, got {args.nrow}.")
    if not 0 <= args.seed < 2 ** 63 - 1:
        raise GanzooError(f"--seed must lie in [0, 2**63 - 1), got {args.seed}.")
    device = select_device(args.device)
    generator, config = load_generator(args.weights, device)
    z = latents(config, args.seed, range(args.n))              # sample i: the z of number i on `ganzoo sheet`
    with torch.inference_mode():
        images = torch.cat([generator(part.to(device)) for part in z.split(256)])
    nrow = args.nrow or max(1, int(math.ceil(math.sqrt(args.n))))
    path = save_grid(images, Path(args.out), nrow=nrow)
    out.print(f"{args.n} samples of {config.model} ({config.image_size}x{config.image_size}, "
              f"{config.channels} channel(s)) -> {path}")
    return 0


def cmd_eval(args) -> int:
    import json
    import time

    from .checkpoint import atomic_write, generator_weights, load_generator
    from .device import select_device
    from .evaluate import default_n, evaluate, evaluate_real, metrics_table, resolve_metrics

    device = select_device(args.device)
    weights = generator_weights(args.weights)                  # a run folder names its generator file
    generator, config = load_generator(weights, device)
    data = args.data or config.data
    data_dir = args.data_dir if args.data_dir is not None else (config.stored_data_dir() if data == config.data else None)
    options = {"inception_weights": args.inception_weights} if args.inception_weights else {}
    chosen = resolve_metrics(args.metrics, data, config.channels, options)
    names = [name for name, _ in chosen]
    n = args.n or default_n(chosen)
    if n < 2:
        raise GanzooError(f"-n must be at least 2, got {n}.")
    common = dict(metrics=names, n=n, data_dir=data_dir, download=not args.no_download, device=device,
                  seed=args.seed, options=options, console=console)
    label = weights.name
    start = time.perf_counter()
    console.print(f"scoring {n} samples of {label} with {', '.join(names)}")
    rows = {label: evaluate(generator, config=config, data=data, **common)}
    console.print(f"scoring {n} real {data} training images the same way")
    rows["real data (train)"] = evaluate_real(data=data, image_size=config.image_size, channels=config.channels,
                                              **common)
    seconds = time.perf_counter() - start
    title = (f"{config.model} on {data}, {config.image_size}x{config.image_size}x{config.channels}, "
             f"n={n}, seed {args.seed}")
    out.print(metrics_table(rows, title))
    path = Path(args.json) if args.json else weights.with_suffix(".eval.json")
    report = {"weights": str(weights), "model": config.model, "data": data, "image_size": config.image_size,
              "channels": config.channels, "n": n, "seed": args.seed, "metrics": names, "rows": rows,
              "seconds": round(seconds, 1)}
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(report, indent=2) + "\n"))
    console.print(f"results -> {path} ({seconds:.0f} s)")
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


COMMANDS = {"run": cmd_run, "compare": cmd_compare, "sample": cmd_sample, "eval": cmd_eval, "list": cmd_list,
            "plugins": cmd_plugins, "check-plugin": cmd_check_plugin, **analysis.COMMANDS}


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        if any("\0" in str(a) for a in argv):  # a shell cannot pass one; a caller of main() can
            raise GanzooError("An argument holds a NUL character; no name, number or path can.")
        args = build_parser().parse_args(argv)
        args.argv = argv
        return COMMANDS[args.command](args)
    except GanzooError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/bold red]")
        return 130
    except OSError as exc:  # a file or folder that could not be read or written
        where = f" {exc.filename}" if exc.filename else ""
        _error(f"Could not access{where}: {exc.strerror or exc}.")
        return 1
    except Exception as exc:  # a bug (in ganzoo or a plugin): still one line, the traceback on request
        if os.environ.get("GANZOO_DEBUG"):
            raise
        if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or "can't allocate" in str(exc):
            _error("Out of memory; lower --batch-size, --image-size, --g-width or --d-width.")
            return 1
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        _error(f"internal error: {type(exc).__name__}: {first} (a bug in ganzoo or a plugin; rerun with "
               f"GANZOO_DEBUG=1 for the traceback, and please report it).")
        return 3


def _error(message: str) -> None:
    # Control characters quoted from user input (a newline, "\x1e") are shown escaped, so the error stays
    # one line; markup-like input such as "[/x]" is escaped too, so it prints as written.
    message = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message)
    console.print(f"[bold red]error[/bold red]: {escape(message)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
