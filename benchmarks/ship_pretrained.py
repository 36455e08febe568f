"""Turn a run's generator into a shipped pretrained generator: a half-precision weights file and its model card.

    ganzoo run dcgan --data mnist --data-dir ../shared/data/mnist --epochs 5 --out runs/dcgan-mnist
    ganzoo eval runs/dcgan-mnist -n 10000 --data-dir ../shared/data/mnist        # -> dcgan.eval.json
    python benchmarks/ship_pretrained.py runs/dcgan-mnist/dcgan.safetensors --name dcgan-mnist \
        --command "ganzoo run dcgan --data mnist --epochs 5" --data-dir ../shared/data/mnist \
        [--leaderboard reports/leaderboard/results.json]    # the recipe's interval over seeds, if there is one

writes plugins/weights/pretrained/<name>.safetensors and <name>.card.json (the built-in plugin registers every pair it
finds there; --out-dir writes elsewhere, e.g. a third-party package's folder). It takes the real-data floor, the
sample count, the seed and the metrics from the `ganzoo eval` report, then, on this machine, with the same
samples:

1. scores the generator as it is (float32) and as float16 and bfloat16 would store it, and prints the
   differences: whether half precision keeps the quality is measured, not assumed;
2. scores the stored precision on --draws latent seeds (the eval seed and the next ones) and writes their 95%
   prediction interval (Student t) into the card: the interval the test that samples every registered generator
   holds it to, so a change that breaks the networks fails;
3. writes the weights in --precision (default float16), the run's config inside with its local paths removed,
   and the card with the file's sha256, and checks that the pretrained weights ganzoo ships stay within 10 MB.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from scipy import stats

from ganzoo.cards import check_card
from ganzoo.checkpoint import PREFIX, load_generator, read_tensors, save_tensors, widened
from ganzoo.evaluate import evaluate, format_value
from ganzoo.pretrained import sha256_of

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "plugins" / "weights" / "pretrained"
LIMIT_BYTES = 10 * 2 ** 20
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
console = Console(stderr=True)


def stored(tensors: dict[str, torch.Tensor], precision: str) -> dict[str, torch.Tensor]:
    """The floating tensors in `precision` (integers, e.g. BatchNorm's step counter, stay as they are)."""
    dtype = DTYPES[precision]
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}


def generator_in(tensors: dict[str, torch.Tensor], precision: str, path: Path):
    """The generator the file describes with its weights rounded to `precision` and widened back, as a user loads
    it."""
    G, config = load_generator(path)
    prefix = PREFIX["generator"]
    state = {k[len(prefix):]: v for k, v in widened(stored(tensors, precision)).items() if k.startswith(prefix)}
    G.load_state_dict(state)
    return G.eval(), config


def prediction_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Where one more draw falls with probability `level`: mean ± t * sd * sqrt(1 + 1/k) over k draws."""
    k = len(values)
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    half = float(stats.t.ppf((1 + level) / 2, k - 1)) * sd * math.sqrt(1 + 1 / k)
    return mean - half, mean + half


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty", "--tags"],
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def recipe_interval(path: Path | None, model: str, data: str) -> dict | None:
    """The leaderboard's interval over training seeds for this recipe and dataset (benchmarks/leaderboard.py's
    results.json), or None."""
    if path is None:
        return None
    record = json.loads(path.read_text()).get("models", {}).get(model, {}).get(data)
    if not record:
        raise SystemExit(f"error: {path} has no {model!r} on {data!r}; pass --recipe-model with its row's name.")
    keep = {}
    for name, value in record.items():
        if isinstance(value, dict) and {"mean", "low", "high", "n"} <= set(value) and name != "train_time_s":
            keep[name] = {k: value[k] for k in ("mean", "low", "high", "n")}
    return {"source": str(path), "model": model, "scores": keep}


def default_protocol(config) -> str:
    return (f"{config.model} on {config.data} at {config.image_size}x{config.image_size}x{config.channels}: "
            f"{config.epochs} epoch(s), batch {config.batch_size}, G width {config.g_width}, D width {config.d_width}, "
            f"seed {config.seed}, training precision {config.precision}")


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("generator", type=Path, help="the run's generator file (<run>/<model>.safetensors)")
    parser.add_argument("--name", required=True, help="the pretrained name, e.g. dcgan-mnist")
    parser.add_argument("--command", required=True, help="the command that trained it")
    parser.add_argument("--eval", type=Path, default=None,
                        help="its `ganzoo eval` report (default: <generator>.eval.json beside it)")
    parser.add_argument("--leaderboard", type=Path, default=None,
                        help="the leaderboard's results.json: the recipe's interval over seeds goes in the card")
    parser.add_argument("--recipe-model", default=None, help="the recipe's row there (default: the run's model)")
    parser.add_argument("--protocol", default=None, help="the training protocol in words (default: from the config)")
    parser.add_argument("--commit", default=None, help="the code it was trained with (default: this checkout's)")
    parser.add_argument("--date", default=None, help="when it was trained (default: the generator file's time)")
    parser.add_argument("--description", default=None, help="one line (default: '<model> on <data>, SxS')")
    parser.add_argument("--headline", default="mnist_fd,mnist_score,modes_covered,class_agreement",
                        help="the scores `ganzoo pretrained` shows first, of those it has (default %(default)s)")
    parser.add_argument("--precision", default="float16", choices=list(DTYPES),
                        help="how to store it (default float16)")
    parser.add_argument("--draws", type=int, default=5, help="latent seeds the interval rests on (default 5)")
    parser.add_argument("--data-dir", default=None, help="local copy of the dataset, for the real reference")
    parser.add_argument("--device", default="cpu", help="where to score (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out-dir", type=Path, default=SHIPPED, help=f"where to write (default {SHIPPED})")
    args = parser.parse_args(argv)
    if args.draws < 2:
        parser.error("--draws must be 2 or more: an interval needs two draws")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report_path = args.eval or args.generator.with_suffix(".eval.json")
    report = json.loads(report_path.read_text())
    n, seed, metrics = report["n"], report["seed"], report["metrics"]
    real = next(v for k, v in report["rows"].items() if k.startswith("real data"))
    reported = next(v for k, v in report["rows"].items() if not k.startswith("real data"))
    tensors, _ = read_tensors(args.generator)
    _, config = load_generator(args.generator)
    score = dict(metrics=metrics, n=n, data_dir=args.data_dir, download=False, device=args.device, console=console)

    # 1. the same samples through float32, float16 and bfloat16 weights
    by_precision = {}
    for precision in DTYPES:
        console.print(f"scoring {n} samples with the weights in {precision}")
        G, _ = generator_in(tensors, precision, args.generator)
        by_precision[precision] = evaluate(G, config=config, seed=seed, **score)
    names = list(by_precision["float32"])
    table = Table(title=f"{args.name}: the same {n} samples (seed {seed}) through weights stored in each precision")
    for column in ["score", "eval report", *DTYPES, "float16 − float32", "bfloat16 − float32"]:
        table.add_column(column, justify="right", no_wrap=True)
    for name in names:
        row = [by_precision[p][name] for p in DTYPES]
        table.add_row(name, format_value(reported.get(name, math.nan)), *map(format_value, row),
                      f"{row[1] - row[0]:+.3g}", f"{row[2] - row[0]:+.3g}")
    Console(width=max(Console().width, 120)).print(table)

    # 2. the stored precision on more latent seeds: the interval the weights are held to
    draws = {name: [by_precision[args.precision][name]] for name in names}
    G, _ = generator_in(tensors, args.precision, args.generator)
    for extra in range(1, args.draws):
        console.print(f"scoring {n} samples of latent seed {seed + extra} ({args.precision})")
        for name, value in evaluate(G, config=config, seed=seed + extra, **score).items():
            draws[name].append(value)
    scores = {}
    for name in names:
        value = by_precision[args.precision][name]
        low, high = prediction_interval(draws[name])
        scores[name] = {"value": value, "low": min(low, value), "high": max(high, value), "draws": draws[name]}

    # 3. the weights file and the card
    args.out_dir.mkdir(parents=True, exist_ok=True)
    weights = args.out_dir / f"{args.name}.safetensors"
    shipped_config = dataclasses.replace(config, data_dir=None, out="")      # no local paths in a shipped file
    save_tensors(weights, stored(tensors, args.precision), "generator", shipped_config)
    when = args.date or datetime.datetime.fromtimestamp(args.generator.stat().st_mtime,
                                                        datetime.timezone.utc).isoformat(timespec="seconds")
    card = {
        "description": args.description or f"{config.model} on {config.data}, {config.image_size}x{config.image_size}",
        "model": config.model, "data": config.data, "sha256": sha256_of(weights), "precision": args.precision,
        "size_bytes": weights.stat().st_size,
        "command": args.command, "commit": args.commit or git_commit() or "unknown", "date": when,
        "protocol": args.protocol or default_protocol(config),
        "evaluation": {"n": n, "seed": seed, "metrics": metrics,
                       "command": f"ganzoo eval {args.name} -n {n} --seed {seed}",
                       "interval": f"95% prediction interval (Student t) over latent seeds {seed}.."
                                   f"{seed + args.draws - 1}, {n} samples each, weights in {args.precision}"},
        "scores": scores,
        "headline": [name for name in args.headline.split(",") if name in scores][:2] or names[:2],
        "real": {name: real[name] for name in names if name in real},
        "precision_check": {"n": n, "seed": seed,
                            "scores": {p: by_precision[p] for p in DTYPES},
                            "difference_to_float32": {p: {name: by_precision[p][name] - by_precision["float32"][name]
                                                          for name in names} for p in DTYPES if p != "float32"}},
    }
    recipe = recipe_interval(args.leaderboard, args.recipe_model or config.model, config.data)
    if recipe:
        card["recipe"] = recipe
    check_card(card, f"the card of {args.name!r}", weights)
    card_path = args.out_dir / f"{args.name}.card.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    total = sum(p.stat().st_size for p in SHIPPED.glob("*.safetensors")) if SHIPPED.is_dir() else 0
    print(f"-> {weights} ({weights.stat().st_size / 2 ** 20:.2f} MiB, {args.precision}), {card_path}")
    print(f"pretrained weights shipped in {SHIPPED}: {total / 2 ** 20:.2f} MiB of the {LIMIT_BYTES / 2 ** 20:.0f} MiB "
          f"allowed")
    if total > LIMIT_BYTES:
        print("error: over the limit; store it in half precision, or publish it and give its card a url instead",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
