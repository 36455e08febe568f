"""The analysis subcommands of `ganzoo`: sheet, interpolate, arithmetic, filters, featuremaps, probe, dropout.

`add_commands(sub)` adds their parsers to the CLI; COMMANDS maps each name to its function.
Heavy imports wait until a command runs, so `ganzoo --help` stays quick.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..terminal import Console
from rich.table import Table

from ..config import ANALYSIS_FIELDS
from ..errors import GanzooError
from ..settings import add_flags

console = Console(stderr=True)   # progress and notes
out = Console()                  # what a command is asked to print

WEIGHTS_HELP = ("a weights file from `ganzoo run` (<run>/<model>.safetensors or <run>/checkpoint.safetensors), a run "
                "folder, or a pretrained generator's name (see `ganzoo pretrained`)")
CHECKPOINT_HELP = "the run's checkpoint.safetensors (it holds D as well as G), or the run folder"


def _common(parser: argparse.ArgumentParser, weights_help: str = WEIGHTS_HELP, seed: bool = True,
            class_flag: bool = True) -> None:
    """The weights file, then what every analysis shares (ganzoo.config.AnalysisSettings) that this one takes."""
    parser.add_argument("weights", help=weights_help)
    names = [n for n in ANALYSIS_FIELDS["common"] if (n != "cls" or class_flag) and (n != "seed" or seed)]
    add_flags(parser, ANALYSIS_FIELDS["common"], names, defaults=True)


def _own(parser: argparse.ArgumentParser, command: str) -> None:
    """The analysis's own flags (ganzoo.config: <Command>Settings)."""
    add_flags(parser, ANALYSIS_FIELDS[command], defaults=True)


def _labeller_flags(parser: argparse.ArgumentParser) -> None:
    add_flags(parser.add_argument_group("labeller (picks samples by class)"), ANALYSIS_FIELDS["labeller"],
              defaults=True)


def add_commands(sub) -> None:
    p = sub.add_parser("sheet", help="an indexed sheet of samples: pick z's by number for the other analyses",
                       description="Draw samples with their numbers on them. Number i of a seed is the same z in "
                                   "every command (interpolate --path, arithmetic, featuremaps --index).")
    _common(p)
    _own(p, "sheet")

    p = sub.add_parser("interpolate", help="latent walks (linear or spherical) as a PNG grid and an animated GIF",
                       description="Walk the latent space between sheet samples, one walk per row.")
    _common(p)
    _own(p, "interpolate")

    p = sub.add_parser("arithmetic", help="z-vector arithmetic on averaged exemplars, shown with its inputs",
                       description="Average the z's of each concept's exemplars and combine them. A term is "
                                   "sheet numbers (3,7,12) or class:N (exemplars a labeller calls class N). "
                                   "Example: ganzoo arithmetic runs/x/checkpoint.safetensors '3,7,12 - 5,9,20 + 1,2,4'")
    _common(p)
    p.add_argument("expression", help="e.g. '3,7,12 - 5,9,20 + 1,2,4' or 'class:7 - class:1 + 11,23,40'")
    _own(p, "arithmetic")
    _labeller_flags(p)

    p = sub.add_parser("filters", help="the discriminator's first-layer filters as an image",
                       description="Draw the weights of D's first learnable layer as small images, one per filter, "
                                   "each scaled to its own range (DCGAN section 6.2): a trained D shows strokes and "
                                   "edges where an untrained one shows noise. Needs the checkpoint (it holds D).")
    _common(p, CHECKPOINT_HELP, seed=False)
    _own(p, "filters")

    p = sub.add_parser("featuremaps", help="the generator's feature maps for one sample, layer by layer",
                       description="Draw the sample with its sheet number, then what every hidden layer of G "
                                   "computes for it: one row block per layer (numbered as `dropout --layer` numbers "
                                   "them), one cell per feature map, each scaled to its own range.")
    _common(p)
    _own(p, "featuremaps")

    p = sub.add_parser("probe", help="classify with D's features (DCGAN section 5.1) beside two baselines",
                       description="Train an L2-SVM on every D layer's features (max-pooled to 4x4) from a few "
                                   "labelled images per class; report test accuracy beside the same D with random "
                                   "weights and raw pixels, on the same labels.")
    _common(p, CHECKPOINT_HELP, seed=False)
    _own(p, "probe")

    p = sub.add_parser("dropout", help="drop generator feature maps (DCGAN section 6.1) and compare the samples",
                       description="Zero chosen feature maps of one G layer and draw the samples with all maps, "
                                   "without the chosen ones and (for --class) without as many random maps, the "
                                   "control. Name the maps with --maps, or let --class N pick the maps that draw "
                                   "class N (--select says how), measured with a labeller on --pool samples.")
    _common(p, class_flag=False)
    _own(p, "dropout")
    _labeller_flags(p)
    for name in COMMANDS:                                     # what _options compares the arguments with
        DEFAULTS[name] = {a.dest: a.default for a in sub.choices[name]._actions}


DEFAULTS: dict[str, dict[str, object]] = {}


# -- helpers --------------------------------------------------------------------------------------

def _positive(value, flag: str) -> None:
    if value is not None and not value > 0:
        raise GanzooError(f"{flag} must be positive, got {value}.")


def _load(args):
    """The weights' networks; a conditional G with its class fixed (--class, default 0), so z walks alone."""
    import dataclasses

    from ..device import select_device
    from ..sampling import ClassFixed
    from ..checkpoint import load_networks
    from ..runfiles import weights_file

    nets = load_networks(weights_file(args.weights, prefer_checkpoint=True), select_device(args.device))
    if not nets.config.num_classes:
        if getattr(args, "cls", None) is not None:
            raise GanzooError(f"--class is for conditional models; {nets.config.model!r} draws no class.")
        return nets
    cls = getattr(args, "cls", None)
    cls = cls if cls is not None else (getattr(args, "target", None) or 0)
    console.print(f"conditional model: every sample of class {cls} (of {nets.config.num_classes}; --class picks "
                  f"another)")
    return dataclasses.replace(nets, G=ClassFixed(nets.G, nets.config, cls).eval())


def _output(args, *parts: object, suffix: str = ".png") -> Path:
    """--out (given this suffix when it has none: `--out walks/interp` -> walks/interp.png), or
    <run>/analysis/<the parts that decide the content>: another run with other arguments writes beside
    this one, not over it."""
    from .common import default_output, output_name

    if not args.out:
        cls = getattr(args, "cls", None)             # a conditional model's class decides the content too
        return default_output(args.weights, output_name(*parts, f"class{cls}" if cls is not None else "",
                                                        suffix=suffix))
    path = Path(args.out)
    return path if path.suffix else path.with_name(path.name + suffix)


def _short(numbers: list[int], at_most: int = 16) -> str:
    """'3,17,40' for a picture's title; a long list ends in '... (N in all)'."""
    text = ",".join(map(str, numbers[:at_most]))
    return text if len(numbers) <= at_most else f"{text},... ({len(numbers)} in all)"


def _options(args, *names: str) -> list[str]:
    """'name<value>' for each of these options that differs from its default, for a file name."""
    defaults = DEFAULTS.get(args.command, {})
    return [f"{name.replace('_', '')}{getattr(args, name)}" for name in names
            if name in defaults and getattr(args, name) != defaults[name]]


def _labeller(args, nets):
    from .labellers import LabellerContext, make_labeller

    _positive(args.per_class, "--per-class")
    context = LabellerContext(nets, data=args.data or nets.config.data,
                              data_dir=args.data_dir if args.data or args.data_dir else nets.config.stored_data_dir(),
                              per_class=args.per_class, seed=args.seed, download=not args.no_download,
                              console=console)
    return make_labeller(args.labeller, context)


# -- commands -------------------------------------------------------------------------------------

def cmd_sheet(args) -> int:
    from ..sampling import generate, grid_columns, latents
    from .common import board, save_png, view_scale

    _positive(args.n, "-n")
    if args.start < 0:
        raise GanzooError(f"--start must be 0 or more, got {args.start}.")
    nets = _load(args)
    indices = list(range(args.start, args.start + args.n))
    images = generate(nets.G, latents(nets.config, args.seed, indices))
    per_row = grid_columns(args.n)
    rows = [list(images[i:i + per_row]) for i in range(0, len(images), per_row)]
    labels = [[str(i) for i in indices[r:r + per_row]] for r in range(0, len(indices), per_row)]
    title = (f"samples {indices[0]}..{indices[-1]} of seed {args.seed} ({nets.config.model}); each number names "
             f"the same z in every command")
    path = save_png(board(rows, cell_labels=labels, scale=view_scale(nets.config.image_size), title=title),
                    _output(args, "sheet", f"seed{args.seed}", f"{indices[0]}-{indices[-1]}"))
    out.print(f"samples {indices[0]}..{indices[-1]} of seed {args.seed} -> {path}")
    return 0


def cmd_interpolate(args) -> int:
    import torch

    from ..sampling import latents
    from .common import board, parse_indices, save_gif, save_png, view_scale
    from .interpolate import gif_frames, interpolate

    _positive(args.rows, "--rows")
    _positive(args.fps, "--fps")
    nets = _load(args)
    if args.path:
        paths = [parse_indices(p, "--path") for p in args.path]
        if any(len(p) < 2 for p in paths):
            raise GanzooError("Each --path needs at least two sheet numbers, e.g. --path 3,12.")
        if len({len(p) for p in paths}) > 1:
            raise GanzooError("Every --path must pass through the same number of samples, so the rows line up.")
    else:
        paths = [[2 * r, 2 * r + 1] for r in range(args.rows)]
    keys = torch.stack([latents(nets.config, args.seed, p) for p in paths])            # [rows, k, d]
    images, _ = interpolate(nets.G, keys, args.steps, args.mode)                      # [rows, cols, C, H, W]
    # one row per walk, captioned with its keyframes, each keyframe cell marked with its sheet number
    leg = args.steps - 1
    labels = [[f"#{p[col // leg]}" if col % leg == 0 else "" for col in range(images.shape[1])] for p in paths]
    scale = view_scale(nets.config.image_size)
    title = (f"{args.mode} walks between samples of seed {args.seed} ({nets.config.model}), {args.steps} images per "
             f"leg, sheet numbers marked")
    walks = "_".join(",".join(map(str, p)) for p in paths)
    png = save_png(board([list(row) for row in images], captions=["->".join(map(str, p)) for p in paths],
                         cell_labels=labels, scale=scale, title=title),
                   _output(args, "interpolate", args.mode, f"seed{args.seed}", walks, *_options(args, "steps")))
    written = [str(png)]
    if not args.no_gif:
        gif = Path(args.gif) if args.gif else png.with_suffix(".gif")
        save_gif(gif_frames(images, scale=scale, captions=["->".join(map(str, p)) for p in paths],
                            title=f"{args.mode} walks, seed {args.seed}"), gif, fps=args.fps)
        written.append(str(gif))
    rows = ", ".join("->".join(map(str, p)) for p in paths)
    out.print(f"{len(paths)} {args.mode} walk(s) ({rows}) of seed {args.seed}, {images.shape[1]} images each -> "
              f"{' and '.join(written)}")
    return 0


def cmd_arithmetic(args) -> int:
    from .arithmetic import arithmetic_board, arithmetic_title, parse_expression, vector_arithmetic
    from .common import save_png, view_scale

    for flag in ("exemplars", "pool", "variations"):
        _positive(getattr(args, flag), f"--{flag}")
    if args.noise < 0:
        raise GanzooError(f"--noise must be 0 or more, got {args.noise}.")
    terms = parse_expression(args.expression)
    nets = _load(args)
    labeller = _labeller(args, nets) if any(t.label is not None for t in terms) else None
    work = vector_arithmetic(terms, nets.config, nets.G, args.seed, exemplars=args.exemplars, pool=args.pool,
                             labeller=labeller, variations=args.variations, noise=args.noise)
    title = arithmetic_title(args.expression, args.seed, nets.config.model, len(work.variations), args.noise)
    path = save_png(arithmetic_board(nets.G, work, scale=view_scale(nets.config.image_size), title=title),
                    _output(args, "arithmetic", f"seed{args.seed}", args.expression,
                            *_options(args, "exemplars", "pool", "variations", "noise", "labeller", "data",
                                      "per_class")))
    used = " ".join(f"{'+' if t.sign > 0 else '-'} {','.join(map(str, t.indices))}" for t in work.terms)
    out.print(f"{used.lstrip('+ ')} (seed {args.seed}) -> {path}")
    return 0


def cmd_filters(args) -> int:
    from .common import save_png
    from .filters import filters_board, first_layer_filters

    _positive(args.limit, "--limit")
    nets = _load(args)
    D = nets.need_discriminator("Showing D's filters")
    filters = first_layer_filters(D, nets.config.channels, nets.config.image_size)
    path = save_png(filters_board(filters, args.limit, what=f"{nets.config.model} D"),
                    _output(args, "filters", *_options(args, "limit")))
    shown = min(len(filters), args.limit)
    out.print(f"{shown} of {len(filters)} first-layer filters ({filters.shape[-1]}x{filters.shape[-2]}) -> {path}")
    return 0


def cmd_featuremaps(args) -> int:
    from ..sampling import latents
    from .common import save_png
    from .filters import feature_maps_board

    _positive(args.limit, "--limit")
    nets = _load(args)
    z = latents(nets.config, args.seed, [args.index])[0]
    title = f"feature maps of sample {args.index} of seed {args.seed} ({nets.config.model})"
    path = save_png(feature_maps_board(nets.G, z, limit=args.limit, title=title),
                    _output(args, "featuremaps", f"seed{args.seed}", args.index, *_options(args, "limit")))
    out.print(f"feature maps of sample {args.index} (seed {args.seed}) -> {path}")
    return 0


def cmd_probe(args) -> int:
    import torch

    from ..files import atomic_write
    from ..models import build_discriminator
    from .features import compare_features, hidden_features, per_class_subset, pixel_features
    from .labellers import LabellerContext, labelled_split

    _positive(args.per_class, "--per-class")
    _positive(args.test_size, "--test-size")
    _positive(args.lam, "--lambda")
    started = time.perf_counter()
    nets = _load(args)
    D = nets.need_discriminator("The feature probe", features=True)
    torch.manual_seed(args.seed)
    D_random = build_discriminator(nets.config).to(next(D.parameters()).device).eval()   # same layers, fresh init
    context = LabellerContext(nets, data=args.data or nets.config.data,
                              data_dir=args.data_dir if args.data or args.data_dir else nets.config.stored_data_dir(),
                              download=not args.no_download)
    train, test = labelled_split(context, "train"), labelled_split(context, "test")
    idx = per_class_subset(train.labels, args.per_class, args.seed)
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed))[:args.test_size]
    extractors = {
        "trained D": lambda images, what: hidden_features(D, images, progress=what),
        "random D": lambda images, what: hidden_features(D_random, images, progress=what),
        "raw pixels": lambda images, what: (pixel_features(images), [images[0].numel()]),
    }
    results = compare_features(extractors, train.images[idx], train.labels[idx], test.images[order],
                               test.labels[order], lam=args.lam, seed=args.seed, per_layer=args.per_layer,
                               console=console)
    classes = len(train.labels.unique())
    table = Table(title=f"{context.data}: L2-SVM on {args.per_class} labelled images per class ({classes} classes), "
                        f"{len(order)} test images", title_justify="left")
    for column in ("features", "dim", "lambda", "held-out acc", "test acc", "test error"):
        table.add_column(column, justify="left" if column == "features" else "right")
    for r in results:
        table.add_row(r.features, f"{r.dim:,}", f"{r.lam:g}", "-" if r.val_accuracy is None else f"{r.val_accuracy:.1%}",
                      f"{r.test_accuracy:.2%}", f"{1 - r.test_accuracy:.2%}")
    out.print(table)
    report = {"weights": str(nets.path), "model": nets.config.model, "data": context.data,
              "per_class": args.per_class, "classes": classes, "test_images": len(order), "seed": args.seed,
              "lambda": "fixed" if args.lam is not None else "held-out fifth of the labelled images",
              "seconds": round(time.perf_counter() - started, 1),
              "results": [vars(r) for r in results]}
    path = atomic_write(_output(args, "probe", args.per_class, f"seed{args.seed}",
                                *_options(args, "data", "test_size", "lam", "per_layer"), suffix=".json"),
                        lambda tmp: tmp.write_text(json.dumps(report, indent=2)))
    out.print(f"-> {path}")
    return 0


def cmd_dropout(args) -> int:
    import torch

    from ..sampling import generate, latents
    from .common import board, parse_indices, save_png, view_scale
    from .dropout import check_maps, generate_dropped, map_activations, maps_by_ablation, maps_for_class, pick_layer
    from .labellers import class_counts, class_scores, label, pick_by_class

    for flag in ("pool", "n"):
        _positive(getattr(args, flag), "-n" if flag == "n" else f"--{flag}")
    if args.top < 0:
        raise GanzooError(f"--top must be 0 (every positively weighted map) or more, got {args.top}.")
    nets = _load(args)
    layer = pick_layer(nets.G, nets.config.z_dim, args.layer)
    z = latents(nets.config, args.seed, range(args.pool if args.target is not None else args.n))
    note, random_maps = "", []
    if args.maps is not None:
        maps = check_maps(layer, parse_indices(args.maps, "--maps"))
        shown = z[:args.n]
    else:
        labeller = _labeller(args, nets)
        ids, confidence = label(labeller, generate(nets.G, z))
        positive = ids == args.target
        if positive.all() or not positive.any():
            raise GanzooError(f"The labeller put {int(positive.sum())} of {len(z)} samples in class {args.target} "
                              f"(its classes there: {class_counts(ids)}); the probe needs samples of the class and "
                              f"of others: raise --pool or pick another --class.")
        if args.select == "probe":
            maps = maps_for_class(map_activations(nets.G, z, layer), positive, args.top or None)
        else:   # at most 64 samples of the class and 64 of others: each map costs 128 more images
            maps = maps_by_ablation(nets.G, layer, lambda images: class_scores(labeller, images, args.target + 1),
                                    z[positive][:64], z[~positive][:64], args.target, args.top or layer.channels)
        if not maps:
            raise GanzooError(f"No map of layer {layer.describe()} {'predicts' if args.select == 'probe' else 'draws'} "
                              f"class {args.target} (--select {args.select}); try another --layer.")
        shown = z[pick_by_class(ids, confidence, args.target, args.n)]
        # how often the labeller still sees the class: after the drop, and after dropping as many random maps
        after = (label(labeller, generate_dropped(nets.G, z, layer, maps))[0] == args.target).float().mean().item()
        g = torch.Generator().manual_seed(args.seed)
        random_maps = sorted(torch.randperm(layer.channels, generator=g)[:len(maps)].tolist())
        control = (label(labeller, generate_dropped(nets.G, z, layer, random_maps))[0] == args.target)
        note = (f"class {args.target} in {positive.float().mean().item():.1%} of {len(z)} samples; after dropping "
                f"the maps {after:.1%}; after dropping {len(maps)} random maps {control.float().mean().item():.1%}")
    before, after_images = generate(nets.G, shown), generate_dropped(nets.G, shown, layer, maps)
    # the control: as many maps picked at random, so a reader sees what any drop of that size does
    control_images = generate_dropped(nets.G, shown, layer, random_maps) if random_maps else None
    per_row = min(len(shown), 8)
    rows, captions = [], []
    for start in range(0, len(shown), per_row):
        rows += [list(before[start:start + per_row]), list(after_images[start:start + per_row])]
        captions += ["all maps", f"{len(maps)} chosen dropped"]
        if control_images is not None:
            rows.append(list(control_images[start:start + per_row]))
            captions.append(f"{len(maps)} random dropped")
    title = [f"{nets.config.model}, layer {layer.index} ({layer.channels} maps"
             f"{' of ' + 'x'.join(map(str, layer.size)) if layer.size else ''}), seed {args.seed}: "
             + (f"maps {_short(maps)} dropped" if args.maps else
                f"the {len(maps)} maps that {'best predict' if args.select == 'probe' else 'most draw'} class "
                f"{args.target} dropped ({args.select})")]
    if note:
        title.append(note)
    if random_maps:
        title.append(f"chosen maps: {_short(maps)}; random maps: {_short(random_maps)}")
    path = save_png(board(rows, captions=captions, scale=view_scale(nets.config.image_size), title=title),
                    _output(args, "dropout", f"layer{layer.index}",
                            f"maps{','.join(map(str, maps))}" if args.maps else f"class{args.target}-top{args.top}",
                            f"seed{args.seed}", *_options(args, "select", "n", "pool", "labeller", "data",
                                                          "per_class")))
    out.print(f"layer {layer.describe()}: dropped maps {','.join(map(str, maps))}")
    if note:
        out.print(note)
    out.print(f"-> {path}")
    return 0


COMMANDS = {"sheet": cmd_sheet, "interpolate": cmd_interpolate, "arithmetic": cmd_arithmetic,
            "filters": cmd_filters, "featuremaps": cmd_featuremaps, "probe": cmd_probe, "dropout": cmd_dropout}
