"""The `ganzoo` command line: run, compare, sample, eval, data, list, plugins, and the analyses
(ganzoo.analysis.commands)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from .terminal import Console
from rich.markup import escape
from rich.table import Table

from .analysis import commands as analysis
from .view import command as view
from .config import COMMAND_FIELDS, COMPARABLE, FIELDS, MAX_SAMPLE_N, UNLIMITED_EPOCHS, read_config_file, template
from .errors import GanzooError, Interrupted
from .kinds import KINDS
from .settings import add_flags, check_values

console = Console(stderr=True)   # progress, tables, errors
out = Console()                  # what a command is asked to print

WEIGHTS_HELP = ("a run folder, a weights file from `ganzoo run` (<run>/<model>.safetensors or "
                "<run>/checkpoint.safetensors), or a pretrained generator's name (see `ganzoo pretrained`)")


class UsageError(GanzooError):
    """A command line argparse cannot read: exit status 2, as argparse itself uses."""

    exit_code = 2


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line like every other ganzoo error, and exit 2
        raise UsageError(f"{message} (see: {self.prog} --help)")


def add_config_flags(parser: argparse.ArgumentParser, names, extra: str = "", shown=None) -> None:
    """The flags of these RunConfig fields; each defaults to None, "not given", so that model defaults and
    config files show through. `shown`: a named model's defaults, for the help to show."""
    add_flags(parser, FIELDS, names, extra, shown=shown)


def model_named_for_help(argv: list[str]) -> str | None:
    """The model of `ganzoo run MODEL ... --help`, whose own defaults the help then shows (None: no such model)."""
    if len(argv) < 2 or argv[0] != "run" or not {"-h", "--help"} & set(argv):
        return None
    from .plugins import registries

    models = registries().models
    return next((a for a in argv[1:] if not a.startswith("-") and a in models), None)


def build_parser(model: str | None = None) -> argparse.ArgumentParser:
    parser = Parser(prog="ganzoo", description="A plugin-based GAN zoo.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="train a model", description="Train a registered model on a dataset.")
    run.add_argument("model", nargs="?", help=FIELDS["model"].setting.help + "; default: the --config file's")
    run.add_argument("--config", default=None, metavar="FILE",
                     help="settings from a YAML, TOML or JSON file (a run's config.json repeats that run); flags "
                          "given here override it; `ganzoo config MODEL` writes a template")
    run.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN_DIR",
                     help="continue the run in RUN_DIR (or in --out) from its last checkpoint")
    run.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    run.add_argument("--no-download", action="store_true", help="never download; use --data-dir or the cache")
    shown = None
    if model:                                           # `ganzoo run wgangp --help`: wgangp's own defaults
        from .resolve import model_defaults

        shown = model_defaults(model).to_dict()
    add_config_flags(run, FIELDS, shown=shown)

    cmp = sub.add_parser("compare", help="train several models alike, score them alike, write a report",
                         description="Train every named model under the same data, seeds and budget (or score "
                                     "finished runs given as paths), evaluate all with the same metrics, and write "
                                     "a report folder: report.md, results.json, samples/losses/metrics plots.")
    cmp.add_argument("models", nargs="+", metavar="MODEL", help="registered model names, run folders or weights files")
    add_flags(cmp, COMMAND_FIELDS["compare"], defaults=True)
    add_config_flags(cmp, [name for name in FIELDS if name in COMPARABLE], extra=", the same for every model")

    conf = sub.add_parser("config", help="print a commented config file with every setting and its default",
                          description="Print a YAML file holding every run setting, each with its help and default "
                                      "(the model's own defaults applied). Edit it, then: ganzoo run --config FILE.")
    conf.add_argument("model", help=FIELDS["model"].setting.help)

    sample = sub.add_parser("sample", help="draw samples from a weights file or a pretrained generator into a PNG grid "
                                           "(or for other tools)",
                            description="Draw N samples of a trained generator into one PNG grid, or, with --format, "
                                        "into a folder of PNGs or an .npz that other evaluators read (torch-fidelity, "
                                        "clean-fid, StudioGAN, the ADM suite). Sample number i "
                                        "of a seed is the same z as number i on `ganzoo sheet` and in the analyses "
                                        "(for a conditional model, of class i modulo its classes unless --class "
                                        "asks for one).")
    sample.add_argument("weights", help=WEIGHTS_HELP)
    add_flags(sample, COMMAND_FIELDS["sample"], defaults=True)

    ev = sub.add_parser("eval", help="score a generator with registered metrics, beside real data",
                        description="Score a weights file with registered metrics (see `ganzoo list`). The table "
                                    "has a row for real training images scored the same way: the floor.")
    ev.add_argument("weights", help=WEIGHTS_HELP)
    add_flags(ev, COMMAND_FIELDS["eval"], defaults=True)

    data = sub.add_parser("data", help="look at a dataset before training: count, shape, labels, files, a grid",
                          description="Read a dataset (downloading it when allowed) and show how many images it has, "
                                      "their shape, its labels, where its files are, and a PNG grid of real images "
                                      "prepared as a run sees them.")
    data.add_argument("name", metavar="NAME", help="dataset name (see `ganzoo list`) or a folder of images")
    add_flags(data, COMMAND_FIELDS["data"], defaults=True)

    sub.add_parser("list", help="every registered model, generator, discriminator, loss, dataset and metric",
                   description="List every name a command accepts: models, generators, discriminators, losses, "
                               "datasets and metrics, each with its description and the plugin that registered it.")
    sub.add_parser("plugins", help="installed plugins, what each registered, and any that failed to load",
                   description="List the built-in and installed plugins: version, where each comes from, what it "
                               "registered, and the error of any that failed to load (the others keep working).")

    pre = sub.add_parser("pretrained", help="the pretrained generators, with their model cards",
                         description="List the pretrained generators the installed plugins register, each usable by "
                                     "name wherever a weights file goes (ganzoo sample dcgan-mnist) and from Python "
                                     "(ganzoo.load_pretrained). Name one to see its whole card.")
    pre.add_argument("name", nargs="?", default=None, help="show this one's whole model card")
    pre.add_argument("--json", action="store_true", help="print the card(s) as JSON")

    check = sub.add_parser("check-plugin", help="run the conformance kit on installed plugins",
                           description="Check everything a plugin registers of the kinds the conformance kit "
                                       "knows (" + ", ".join(k.plural for k in KINDS if k.checked) + ") against "
                                       "ganzoo's contracts (docs/plugins.md, \"The conformance kit\", says what is "
                                       "checked per kind); exit status 1 on a failure.")
    check.add_argument("names", nargs="*", metavar="NAME", help="plugin name as `ganzoo plugins` shows it, or its "
                                                                  "distribution's name")
    check.add_argument("--all", action="store_true", help="check every installed plugin, built-ins included")
    check.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    check.add_argument("--data-dir", default=None, help="local copy of the dataset a metric scores by default "
                       "(e.g. MNIST's four IDX files), for the metric checks")
    analysis.add_commands(sub)
    view.add_command(sub)
    return parser


# -- commands -------------------------------------------------------------------------------------

def cmd_run(args) -> int:
    from .resolve import make_config, resumed_config
    from .run import default_out, fresh_folder, resume_config, train
    from .runfiles import RunFiles

    overrides = {name: getattr(args, name) for name, info in FIELDS.items() if info.flag}   # None: not given
    if args.resume and args.config:
        raise GanzooError("--resume continues a run with its own config; --config starts a new one: give one of them.")
    if args.resume:
        run_dir = args.resume if isinstance(args.resume, str) else args.out
        if not run_dir:
            raise GanzooError("--resume needs the run folder: --resume RUN_DIR, or --out RUN_DIR --resume.")
        config = resume_config(run_dir)
        if args.model and args.model != config.model:
            raise GanzooError(f"{run_dir} holds a {config.model!r} run, not {args.model!r}.")
        config = resumed_config(config, overrides, run_dir, console)
        train(config, resume=True, download=not args.no_download, console=console)
        return 0
    settings = read_config_file(args.config) if args.config else {}    # the file, then the flags over it
    model = args.model or settings.pop("model", None)
    settings.pop("model", None)
    if not model:
        raise GanzooError("Name a model to train, e.g. `ganzoo run dcgan --data mnist` (see `ganzoo list`).")
    if overrides["budget"] and not overrides["epochs"] or settings.get("budget") and "epochs" not in settings:
        overrides["epochs"] = UNLIMITED_EPOCHS                 # the budget alone says when to stop
        if overrides["budget"] and settings.get("epochs") not in (None, UNLIMITED_EPOCHS):
            console.print(f"--budget {overrides['budget']:g}s replaces the config file's epochs "
                          f"({settings['epochs']}): the run trains until the budget ends (give --epochs N as well "
                          f"to stop at whichever comes first)", highlight=False)
    given = {k: v for k, v in overrides.items() if v is not None}
    config = make_config(model, {**settings, **given})
    if "out" in settings and "out" not in given and RunFiles(config.out).holds_run() and not args.overwrite:
        config.out = fresh_folder(config.out)                  # repeating a run: beside it, never over it
        console.print(f"{settings['out']} holds a run already; this one goes to {config.out}", highlight=False)
    config.out = config.out or default_out(config)
    train(config, download=not args.no_download, overwrite=args.overwrite, console=console,
          given={**settings, **given})
    return 0


def cmd_config(args) -> int:
    from .resolve import model_defaults

    from .plugins import registries

    config = model_defaults(args.model)
    fixed = registries().models.get(args.model).factory.defaults
    out.print(template(config, f"ganzoo run settings for {args.model!r}: every setting, its help and its default",
                       fixed=fixed),
              markup=False, highlight=False, soft_wrap=True, end="")
    return 0


def cmd_compare(args) -> int:
    import shlex

    from .compare import Comparison, Settings, parse_contenders, rich_differences, rich_table, write_report
    from .compare.comparison import default_folder
    from .resolve import absolute_path

    check_values(COMMAND_FIELDS["compare"], args)
    contenders = parse_contenders(args.models, seeds=args.seeds)
    data_dir = absolute_path(args.data_dir) if args.data_dir else args.data_dir    # usable from any folder later
    settings = Settings(data=args.data, data_dir=data_dir, epochs=args.epochs, budget=args.budget or None,
                        points=args.points, seeds=args.seeds, seed=args.seed, n=args.n, curve_n=args.curve_n,
                        metrics=args.metrics, device=args.device, download=not args.no_download, resize=args.resize,
                        overrides={name: getattr(args, name) for name in COMPARABLE
                                   if getattr(args, name) is not None})
    if args.baseline is not None and args.baseline not in [c.label for c in contenders]:
        raise GanzooError(f"--baseline {args.baseline!r} is not one of the models compared "
                          f"({', '.join(c.label for c in contenders)}).")
    folder = Path(args.out) if args.out else default_folder(contenders, args.data)
    comparison = Comparison(contenders, settings, folder, console=console, resume=args.resume,
                            overwrite=args.overwrite)
    try:
        results = comparison.run()
    except Interrupted as exc:
        raise Interrupted(f"{exc} The comparison so far is in {folder}/results.json; continue it with "
                          f"the same command and --resume.") from None
    report = write_report(results, folder, "ganzoo " + shlex.join(args.argv), baseline=args.baseline)
    out.print(rich_table(results))
    if len(results.contenders) > 1:
        out.print(rich_differences(results, args.baseline))
    console.print(f"[green]report[/green]: {report} (results.json, samples.png, losses.png, metrics.png, "
                  f"pareto.png beside it)")
    return 0



def cmd_sample(args) -> int:
    from .checkpoint import load_generator
    from .device import select_device
    from .sampling import generate, grid_columns, per_class, sample, save_grid

    check_values(COMMAND_FIELDS["sample"], args)
    if args.fmt != "grid":
        return export_command(args)
    args.out = "samples.png" if args.out is None else args.out
    n = args.n if args.n is not None else (10 if args.by_class else 64)
    if n > MAX_SAMPLE_N:
        raise GanzooError(f"-n must lie between 1 and {MAX_SAMPLE_N}, got {n} (a grid; --format png-folder or npz "
                          f"writes more).")
    if args.by_class and args.cls is not None:
        raise GanzooError("--by-class draws every class; leave out --class (or --by-class).")
    if not Path(args.out).name or Path(args.out).is_dir():
        raise GanzooError(f"--out must name a file to write the PNG grid to, got {args.out!r}.")
    device = select_device(args.device)
    generator, config = load_generator(args.weights, device)
    if args.by_class:                                   # one row per class: n columns, the same z down each
        images = generate(generator, *per_class(config, n, seed=args.seed))
        path = save_grid(images, Path(args.out), nrow=n)
        out.print(f"{n} samples of each of the {config.num_classes} classes of {config.model}, one row per class "
                  f"-> {path}")
        return 0
    images = sample(generator, config, n, seed=args.seed, cls=args.cls)
    nrow = args.nrow or grid_columns(n)
    path = save_grid(images, Path(args.out), nrow=nrow)
    of_class = f" of class {args.cls}" if args.cls is not None else ""
    out.print(f"{n} samples{of_class} of {config.model} ({config.image_size}x{config.image_size}, "
              f"{config.channels} channel(s)) -> {path}")
    return 0


def export_command(args) -> int:
    """`ganzoo sample RUN --format npz|png-folder --out PATH`: samples for other evaluators (ganzoo.export)."""
    from .checkpoint import load_generator
    from .device import select_device
    from .export import export_samples
    from .runfiles import weights_file

    if args.by_class or args.cls is not None or args.nrow is not None:
        raise GanzooError("--by-class, --class and --nrow shape a PNG grid; --format npz|png-folder writes samples "
                          "0..N-1 as `ganzoo eval` draws them.")
    if not args.out:
        raise GanzooError(f"--format {args.fmt} needs --out: the " + ("folder" if args.fmt == "png-folder" else
                                                                       ".npz file") + " to write.")
    n = args.n if args.n is not None else 50_000
    weights = weights_file(args.weights)
    generator, config = load_generator(weights, select_device(args.device))
    path = export_samples(generator, config, weights, n, args.fmt, args.out, seed=args.seed, console=console)
    out.print(f"{n} samples of {config.model} ({config.image_size}x{config.image_size}, {config.channels} channel(s), "
              f"seed {args.seed}) -> {path} ({args.fmt})")
    return 0


def cmd_eval(args) -> int:
    import json
    import time

    from .checkpoint import load_generator
    from .files import atomic_write
    from .device import select_device
    from .evaluate import default_n, evaluate, evaluate_real, metrics_table, resolve_metrics
    from .neighbours import draw_closest
    from .protocol import protocol_table
    from .pretrained import is_pretrained_name
    from .runfiles import weights_file

    check_values(COMMAND_FIELDS["eval"], args)
    device = select_device(args.device)
    weights = weights_file(args.weights)                       # a run folder names its generator file
    generator, config = load_generator(weights, device)
    data = args.data or config.data
    data_dir = args.data_dir if args.data_dir is not None else (config.stored_data_dir() if data == config.data else None)
    options = {key: value for key, value in (("inception_weights", args.inception_weights),
                                              ("resize", args.resize)) if value}
    chosen = resolve_metrics(args.metrics, data, config.channels, options, conditional=config.conditional)
    names = [name for name, _ in chosen]
    n = args.n or default_n(chosen)
    common = dict(metrics=names, n=n, data_dir=data_dir, download=not args.no_download, device=device,
                  seed=args.seed, options=options, console=console)
    label = args.weights if is_pretrained_name(args.weights) else weights.name
    start = time.perf_counter()
    console.print(f"scoring {n} samples of {label} with {', '.join(names)}")
    rows = {label: evaluate(generator, config=config, data=data, weights=weights, **common)}
    split = config.split if data == config.data else "train"     # the images G learned from, where known
    console.print(f"scoring {n} real {data} images ({split}) the same way")
    rows[f"real data ({split})"] = evaluate_real(data=data, image_size=config.image_size, channels=config.channels,
                                                 split=split, labelled=config.conditional, **common)
    seconds = time.perf_counter() - start
    title = (f"{config.model} on {data}, {config.image_size}x{config.image_size}x{config.channels}, "
             f"n={n}, seed {args.seed}")
    out.print(metrics_table(rows, title))
    if args.json:
        path = Path(args.json)
    elif is_pretrained_name(args.weights):                     # installed in a package: the report goes here
        path = Path(f"{args.weights}.eval.json")
    else:
        path = weights.with_suffix(".eval.json")
    real_label = list(rows)[1]
    out.print(protocol_table(rows[label].protocol, title=f"protocol of {label}'s scores"))
    out.print(f"The {real_label} row: the same protocol, on {n} real {data} {split} images (a subset drawn with seed "
              f"{args.seed}) in place of generated ones.", highlight=False)
    report = {"weights": str(weights), "model": config.model, "data": data, "image_size": config.image_size,
              "channels": config.channels, "n": n, "seed": args.seed, "metrics": names, "rows": rows,
              "protocol": {row: scores.protocol for row, scores in rows.items()}, "seconds": round(seconds, 1)}
    if "memorisation" in rows[label].exhibits:
        picture = draw_closest(rows[label].exhibits["memorisation"], path.with_name(
            path.name.removesuffix(".json").removesuffix(".eval") + ".memorisation.png"))
        report["memorisation_pairs"] = str(picture)
        console.print(f"memorisation: the 8 samples closest to a training image -> {picture}")
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(report, indent=2) + "\n"))
    console.print(f"results -> {path} ({seconds:.0f} s)")
    return 0


def cmd_data(args) -> int:
    from .analysis.common import board, save_png, view_scale
    from .data import EncodedImages, peek, read_dataset, to_model_range
    from .imagecache import status
    from .sampling import grid_columns
    from .plugins import registries

    check_values(COMMAND_FIELDS["data"], args)
    regs = registries()
    name, root = args.name, args.data_dir
    if name not in regs.datasets and Path(name).is_dir():
        name, root = "folder", name
    entry = regs.datasets.get(name)
    size = args.image_size or entry.info.get("image_size", 32)
    channels = args.channels or entry.info.get("channels", 1)
    data = read_dataset(name, root=root, split=args.split, image_size=size, channels=channels,
                        download=not args.no_download)
    picked, images, sizes = peek(data, args.n, size, channels, seed=args.seed)
    label = Path(data.location).name if name == "folder" else name
    path = Path(args.out or f"{label}-{args.split}.png")
    names = [_label_name(data, int(data.labels[i])) for i in picked] if data.labels is not None else [""] * len(picked)
    ncol = grid_columns(len(picked))
    cells = list(to_model_range(images))
    rows = [cells[r:r + ncol] for r in range(0, len(cells), ncol)]
    labels = [names[r:r + ncol] for r in range(0, len(names), ncol)]
    save_png(board(rows, cell_labels=labels, scale=view_scale(size)), path)

    encoded = isinstance(data.images, EncodedImages)
    heights, widths = {h for h, _ in sizes}, {w for _, w in sizes}
    if not encoded:
        stored = f"{data.images.shape[1]} x {data.images.shape[2]} x {data.images.shape[3]} uint8"
    elif len(sizes) == 1:
        stored = f"image files of {widths.pop()}x{heights.pop()} (all {len(picked)} shown)"
    else:
        stored = (f"image files of various sizes, {min(widths)}-{max(widths)} wide and {min(heights)}-{max(heights)} "
                  f"high among the {len(picked)} shown")
    crop = (f" (centre crop {data.crop}x{data.crop}, then resized)" if data.crop else
            "" if sizes == {(size, size)} else " (centre square, then resized)")
    splits = entry.info.get("splits")
    table = Table(title=f"{name}: {escape(entry.description)}", title_justify="left", show_header=False, box=None)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")                                     # paths wrap, never cut short
    table.add_row("split", args.split + (f" (of {', '.join(splits)})" if splits else ""))
    table.add_row("images", f"{len(data):,}")
    table.add_row("stored as", stored)
    table.add_row("trained as", f"{channels} x {size} x {size} uint8{crop}; --image-size, --channels change it")
    table.add_row("labels", escape(_labels_summary(data)))
    table.add_row("files", escape(data.location or "(made in memory)"))
    if encoded:
        folder, state = status(data, image_size=size, channels=channels)
        table.add_row("image cache", f"{escape(str(folder))}: {state}")
    table.add_row("grid", f"{escape(str(path))} ({len(picked)} images picked at random, seed {args.seed})")
    out.print(table)
    return 0


def _label_name(data, value: int) -> str:
    if value < 0:
        return ""
    return data.classes[value] if data.classes and value < len(data.classes) else str(value)


def _labels_summary(data) -> str:
    """'10 classes: airplane 5,000, ...' (the first ten), and how many images have none."""
    if data.labels is None:
        return "none"
    import torch

    labelled = data.labels[data.labels >= 0]
    parts = []
    if len(labelled):
        counts = torch.bincount(labelled, minlength=len(data.classes or ())).tolist()
        classes = len(data.classes) if data.classes else sum(1 for c in counts if c)
        shown = [(v, c) for v, c in enumerate(counts) if c or data.classes][:10]
        more = f", ... ({classes - len(shown)} more)" if classes > len(shown) else ""
        parts.append(f"{classes} classes: " + ", ".join(f"{_label_name(data, v)} {c:,}" for v, c in shown) + more)
    if len(labelled) < len(data.labels):
        parts.append(f"{len(data.labels) - len(labelled):,} unlabelled")
    return "; ".join(parts)


def cmd_list(args) -> int:
    from .plugins import registries

    from .contracts import describe_options
    from .models import ROLES

    regs = registries()
    for registry in regs.all():
        optioned = registry.kind in ROLES.values()          # what --options ROLE.NAME=VALUE may set
        table = Table(title=registry.plural, title_justify="left")
        table.add_column("name", style="bold cyan")
        table.add_column("description")
        if optioned:
            table.add_column("options")
        table.add_column("plugin", style="dim")
        for entry in registry:
            options = [escape(describe_options(registry.kind, entry.factory)) or "-"] if optioned else []
            table.add_row(entry.name, escape(entry.description), *options, entry.plugin)  # plugin text is not markup
        out.print(table)
    _warn_failed(regs)
    return 0


def plugins_table(infos) -> Table:
    """What `ganzoo plugins` shows: one row per plugin, what it registered, and whether it loaded."""
    table = Table(title="plugins", title_justify="left")
    table.add_column("name", no_wrap=True)  # what `ganzoo check-plugin NAME` takes: never cut short
    for column in ("version", "source", "registered", "status"):
        table.add_column(column)
    for info in infos:
        registered = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in info.registered.items())
        status = f"[red]failed: {escape(info.error)}[/red]" if info.error else "[green]ok[/green]"
        table.add_row(info.name, info.version, info.source, registered or "-", status)
    return table


def cmd_plugins(args) -> int:
    from .plugins import registries

    out.print(plugins_table(registries().plugins))
    return 0


def _warn_failed(regs) -> None:
    for info in regs.failed:
        console.print(f"[yellow]warning[/yellow]: plugin {info.name!r} failed to load: {info.error}")


def pretrained_table(registry) -> Table:
    """What `ganzoo pretrained` lists: one row per pretrained generator, its headline scores beside the floor."""
    from .cards import headline

    table = Table(title="pretrained generators (ganzoo sample NAME; ganzoo pretrained NAME shows the card)",
                  title_justify="left")
    table.add_column("name", style="bold cyan", no_wrap=True)
    for column in ("scores (real data)", "stored", "description", "plugin"):
        table.add_column(column, style="dim" if column == "plugin" else None)
    for entry in registry:
        card = entry.card
        where = card["precision"] + (f", {card['size_bytes'] / 2 ** 20:.1f} MB" if card.get("size_bytes") else "")
        if entry.factory is None:
            where += ", downloaded once"
        table.add_row(entry.name, escape(headline(card, sep="\n")), where, escape(entry.description), entry.plugin)
    return table


def card_table(entry) -> Table:
    """One pretrained generator's whole card: provenance, then each score with its interval and the floor."""
    card = entry.card
    table = Table(title=f"{entry.name}: {escape(entry.description)}", title_justify="left", show_header=False,
                  box=None)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    source = str(entry.factory) if entry.factory is not None else f"{card['url']} (downloaded once, then cached)"
    for key, value in (("model", f"{card['model']} on {card['data']}"), ("weights", source),
                       ("sha256", card["sha256"]), ("stored as", card["precision"]), ("command", card["command"]),
                       ("commit", card["commit"]), ("date", card["date"]), ("protocol", card["protocol"]),
                       ("evaluation", card["evaluation"].get("command") or
                        f"n={card['evaluation']['n']}, seed {card['evaluation']['seed']}"),
                       ("plugin", entry.plugin)):
        table.add_row(key, escape(str(value)))
    recipe = (card.get("recipe") or {}).get("scores", {})
    for name, score in card["scores"].items():
        floor = card["real"].get(name)
        text = (f"{score['value']:.4g}  (this file; holds within [{score['low']:.4g}, {score['high']:.4g}])"
                + (f"; real data {floor:.4g}" if floor is not None else ""))
        if name in recipe and recipe[name].get("low") is not None:
            r = recipe[name]
            text += f"; the recipe over {r['n']} seeds: {r['mean']:.4g} [{r['low']:.4g}, {r['high']:.4g}]"
        table.add_row(name, escape(text))
    difference = (card.get("precision_check") or {}).get("difference_to_float32", {}).get(card["precision"])
    if difference:
        costs = ", ".join(f"{k} {v:+.3g}" for k, v in difference.items())
        table.add_row(f"{card['precision']} − float32", escape(costs))
    return table


def cmd_pretrained(args) -> int:
    import json

    from .plugins import registries

    regs = registries()
    if args.name is not None:
        entry = regs.pretrained.get(args.name)
        if args.json:
            out.print_json(json.dumps({"name": entry.name, "plugin": entry.plugin, **entry.card}))
        else:
            out.print(card_table(entry))
        return 0
    if args.json:
        out.print_json(json.dumps({e.name: {"plugin": e.plugin, **e.card} for e in regs.pretrained}))
    elif len(regs.pretrained):
        out.print(pretrained_table(regs.pretrained))
    else:
        out.print("No pretrained generators are registered (a plugin adds them with register_pretrained).")
    _warn_failed(regs)
    return 0


def cmd_check_plugin(args) -> int:
    from .testing import check_plugins_command

    return check_plugins_command(args.names, every=args.all, device=args.device, out=out, console=console,
                                 data_dir=args.data_dir)


COMMANDS = {"run": cmd_run, "config": cmd_config, "compare": cmd_compare, "sample": cmd_sample, "eval": cmd_eval,
            "data": cmd_data, "list": cmd_list,
            "plugins": cmd_plugins, "pretrained": cmd_pretrained, "check-plugin": cmd_check_plugin,
            **analysis.COMMANDS, "view": lambda args: view.cmd_view(args, out, console)}


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        if any("\0" in str(a) for a in argv):  # a shell cannot pass one; a caller of main() can
            raise GanzooError("An argument holds a NUL character; no name, number or path can.")
        args = build_parser(model_named_for_help(argv)).parse_args(argv)
        args.argv = argv
        return COMMANDS[args.command](args)
    except GanzooError as exc:
        if not getattr(exc, "quiet", False):  # under torchrun, an error every rank stopped on: rank 0 says it
            _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/bold red]")
        return 130
    except OSError as exc:  # a file or folder that could not be read or written
        if getattr(exc, "quiet", False):
            return 1
        where = f" {exc.filename}" if exc.filename else ""
        _error(f"Could not access{where}: {exc.strerror or exc}.")
        return 1
    except UnicodeEncodeError as exc:   # a path or name holding bytes that are not UTF-8, written into a file
        if os.environ.get("GANZOO_DEBUG"):
            raise
        bad = exc.object[exc.start:exc.end] if isinstance(exc.object, str) else ""
        _error(f"A path or name holds bytes that are not UTF-8 ({ascii(bad)}), which ganzoo cannot store in a "
               f"file; rename it.")
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
    # A value quoted from input (a path, a string from a file) may be any length: each long word is shortened,
    # so the sentence stays a sentence.
    message = re.sub(r"\S{300,}", lambda m: f"{m[0][:120]}...({len(m[0]) - 180} characters)...{m[0][-60:]}", message)
    if os.environ.get("RANK", "0") != "0" and "WORLD_SIZE" in os.environ:   # a torchrun worker's own error
        message = f"rank {os.environ['RANK']}: {message}"
    console.print(f"[bold red]error[/bold red]: {escape(message)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
