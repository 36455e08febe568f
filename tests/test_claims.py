"""What the README and the tools claim, each checked on a tiny run: numbers that mean what they say,
run folders wherever weights are read, data paths usable from any folder, budgets that can be
lifted, one z per sample number, help for every flag, logs that keep whole lines."""

import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo.evaluate
from ganzoo.checkpoint import load_generator
from ganzoo.cli import build_parser, main
from ganzoo.compare import Results, Stat, table_rows
from ganzoo.compare.report import best_labels, format_interval
from ganzoo.config import RunConfig
from ganzoo.errors import GanzooError
from ganzoo.evaluate import generate_images
from ganzoo.runfiles import read_metrics
from ganzoo.sampling import latents, save_grid, to_uint8
from ganzoo.train import Trainer

TINY = ["--data", "fake", "--batch-size", "32", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
        "--log-every", "4", "--device", "cpu"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One finished tiny run (1 epoch of 32 steps on fake data), shared by the read-only checks."""
    out = tmp_path_factory.mktemp("claims") / "run"
    before = torch.get_num_threads()
    try:
        assert main(["run", "dcgan", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    return out


# -- run folders, paths, samples -------------------------------------------------------------------

def test_sample_and_eval_take_a_run_folder(run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", run, "-n", "4", "--out", tmp_path / "grid.png")
    assert code == 0, err
    code, stdout, err = run_cli(capsys, "eval", run, "--metrics", "mnist_classes", "-n", "50")
    assert code == 0, err
    report = json.loads((run / "dcgan.eval.json").read_text())               # beside the generator file
    assert report["weights"] == str(run / "dcgan.safetensors") and report["n"] == 50
    assert "real data (train)" in stdout


def test_sample_number_i_is_the_same_z_in_every_command(run, tmp_path, capsys):
    generator, config = load_generator(run)
    with torch.inference_mode():
        expected = generator(latents(config, 3, range(6)))                   # what sheet, arithmetic... draw
    code, _, err = run_cli(capsys, "sample", run, "-n", "6", "--seed", "3", "--nrow", "6", "--out", tmp_path / "a.png")
    assert code == 0, err
    save_grid(expected, tmp_path / "b.png", nrow=6)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))
    # eval scores samples 0..n-1 of its seed: the first of 8 are the 4 of a 4-sample draw, and sample i of `sample`
    assert torch.equal(generate_images(generator, config, 8, seed=3)[:6], to_uint8(expected))
    # and a number does not depend on how many are drawn
    assert torch.equal(latents(config, 3, [4]), latents(config, 3, range(6))[4:5])


def test_a_sample_grid_is_what_torchvisions_save_image_writes(tmp_path):
    """save_grid writes PNGs with PIL alone (torchvision is slow to import): the same layout, padding and pixels
    as torchvision's save_image(normalize=True, value_range=(-1, 1)), up to a rounding tie."""
    from torchvision.utils import save_image

    for n, channels, nrow in ((64, 1, 8), (10, 3, 4), (7, 1, 3), (1, 3, 8), (5, 1, 10)):
        images = torch.rand(n, channels, 12, 12, generator=torch.Generator().manual_seed(n)) * 2.2 - 1.1
        save_image(images, tmp_path / "theirs.png", nrow=nrow, normalize=True, value_range=(-1, 1))
        save_grid(images, tmp_path / "ours.png", nrow=nrow)
        theirs = np.asarray(Image.open(tmp_path / "theirs.png")).astype(int)
        ours = np.asarray(Image.open(tmp_path / "ours.png")).astype(int)
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 1, (n, channels, nrow)
        assert (ours != theirs).mean() < 1e-3


def test_stored_data_path_is_absolute_and_used_from_anywhere(tmp_path, capsys, monkeypatch):
    """--data-dir typed relative to one folder; the run resumes, and its config reads, from another."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    (here / "pics").mkdir(parents=True)
    elsewhere.mkdir()
    for i in range(64):
        Image.new("L", (16, 16), i * 4).save(here / "pics" / f"{i}.png")
    monkeypatch.chdir(here)
    code, _, err = run_cli(capsys, "run", "dcgan", "--data", "folder", "--data-dir", "pics", "--image-size", "16",
                           "--batch-size", "32", "--g-width", "8", "--d-width", "8", "--epochs", "1",
                           "--device", "cpu", "--out", "run")
    assert code == 0, err
    saved = json.loads((here / "run" / "config.json").read_text())
    assert saved["data_dir"] == str(here / "pics")                          # absolute, and still the path typed
    monkeypatch.chdir(elsewhere)
    code, _, err = run_cli(capsys, "run", "--resume", here / "run", "--epochs", "2")
    assert code == 0, err
    assert read_metrics(here / "run" / "metrics.jsonl")[-1]["step"] == 4
    # a run of an older ganzoo stored the path as typed: a sentence, not "--data-dir ... is not a folder"
    with pytest.raises(GanzooError, match="relative to the folder the run trained in"):
        RunConfig(data_dir="pics").stored_data_dir()


# -- budgets ----------------------------------------------------------------------------------------

def test_budget_is_lifted_on_resume_and_epochs_are_numbered_alike(tmp_path, capsys, one_second_steps):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--budget", "40s", "--out", out)   # 32 steps per epoch
    assert code == 0, err
    stop = re.search(r"budget of 40s reached at step 40 \((epoch 2, 8/32 steps)\)", err)
    assert stop, err
    code, _, err = run_cli(capsys, "run", "--resume", out)                    # the budget is spent: say what to do
    assert code == 1 and "has used its --budget of 40s" in err and "--epochs N" in err
    code, _, err = run_cli(capsys, "run", "--resume", out, "--budget", "none")
    assert code == 1 and "needs --epochs N" in err
    code, _, err = run_cli(capsys, "run", "--resume", out, "--budget", "50s")  # the run's total: 10 s more
    assert code == 0, err
    assert f"resuming {out} at step 40 ({stop.group(1)})" in err               # the numbering the stop used
    assert "reached at step 50" in err
    code, _, err = run_cli(capsys, "run", "--resume", out, "--epochs", "3")   # --epochs alone lifts it
    assert code == 0, err
    assert "--budget of 50s is lifted" in err
    assert read_metrics(out / "metrics.jsonl")[-1]["step"] == 96
    assert json.loads((out / "config.json").read_text())["budget"] == 0.0


def test_budget_run_gets_its_final_evaluation_and_scoring_is_not_charged(tmp_path, capsys, one_second_steps, monkeypatch):
    real_evaluate = ganzoo.evaluate.evaluate

    def slow_evaluate(*args, **kwargs):                                       # scoring takes '100 seconds'
        one_second_steps["now"] += 100.0
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(ganzoo.evaluate, "evaluate", slow_evaluate)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--budget", "40s", "--eval-every", "1",
                           "--metrics", "mnist_classes", "--eval-n", "50", "--out", out)
    assert code == 0, err
    records = read_metrics(out / "metrics.jsonl")
    evals = [(r["step"], r["epoch"]) for r in records if "classes_covered" in r]
    assert evals == [(32, 1), (40, 1.25)]                 # after epoch 1, and at the stop mid-epoch 2
    losses = [r for r in records if "loss_d" in r]
    assert losses[-1]["step"] == 40 and losses[-1]["train_time"] == 40.0   # the 100 s of scoring not counted


def test_run_has_metrics_and_threads(tmp_path, capsys, monkeypatch):
    seen = []
    real_step = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", lambda self, real, labels=None: (
        seen.append(torch.get_num_threads()), real_step(self, real, labels))[1])
    before = torch.get_num_threads()
    try:
        code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--epochs", "1", "--threads", "1", "--eval-every", "1",
                               "--metrics", "mnist_fd", "--eval-n", "50", "--out", tmp_path / "run")
    finally:
        torch.set_num_threads(before)
    assert code == 0, err
    assert set(seen) == {1}
    assert "mnist_fd" in read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--epochs", "1", "--eval-every", "1",
                           "--out", tmp_path / "run2")
    assert code == 1 and "name some with --metrics" in err                  # and run has that flag


# -- compare's numbers -----------------------------------------------------------------------------

def results_with(per_seed: dict[str, dict[str, list[float]]], budget=None) -> Results:
    """A comparison as results.json holds it: per model, one run per seed with these numbers."""
    contenders = {}
    for label, values in per_seed.items():
        seeds = max((len(v) for v in values.values()), default=1)
        runs = [{"seed": i, "run_dir": label, "train_time_s": values.get("train_time_s", [None] * seeds)[i],
                 "scores": {k: v[i] for k, v in values.items() if k != "train_time_s"}} for i in range(seeds)]
        contenders[label] = {"model": label, "source": "trained here", "status": "ok", "runs": runs, "parameters": {}}
    return Results.from_dict({"settings": {"budget": budget}, "real": {}, "contenders": contenders})


def test_stars_only_on_a_best_beyond_noise_of_a_rankable_column():
    # a is lower than b on every seed by about 2: the paired interval excludes zero
    r = results_with({"a": {"mnist_fd": [3.0, 9.0, 6.0], "train_time_s": [10.0, 11.0, 10.5]},
                      "b": {"mnist_fd": [5.0, 11.2, 7.9], "train_time_s": [12.0, 13.1, 12.4]}})
    assert best_labels(r, "mnist_fd", "lower") == {"a"} and best_labels(r, "train_time_s", "lower") == {"a"}
    tie = results_with({"a": {"classes_covered": [1.0, 1.0]}, "b": {"classes_covered": [1.0, 1.0]}})
    assert best_labels(tie, "classes_covered", "higher") == set()            # two collapsed models: no winner
    budget = results_with({"a": {"train_time_s": [12.0, 12.1]}, "b": {"train_time_s": [12.4, 12.6]}}, budget=12.0)
    assert best_labels(budget, "train_time_s", "lower") == set()            # an equal budget fixed it
    alone = results_with({"a": {"mnist_fd": [3.0]}, "b": {}})
    assert best_labels(alone, "mnist_fd", "lower") == set()                 # nothing to beat
    one_seed = results_with({"a": {"mnist_fd": [3.0]}, "b": {"mnist_fd": [30.0]}})
    assert best_labels(one_seed, "mnist_fd", "lower") == set()              # one seed: no interval, no winner
    assert format_interval(Stat(1.0, 2.512e-15, 1.0 - 1e-15, 1.0 + 1e-15, 3)) == "1"   # round-off is no spread
    assert format_interval(Stat(1.0, 0.25, 0.5, 1.5, 3)) == "1 [0.5, 1.5]"
    assert format_interval(Stat(1.0, 0.0, None, None, 1)) == "1"            # one seed: never "± 0"
    header, rows = table_rows(budget)
    assert not any(best for row in rows for _, best in row)


# -- what commands print and say --------------------------------------------------------------------

def test_every_command_has_a_description_and_every_flag_help():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    missing = []
    for name, sub in commands.items():
        if not sub.description:
            missing.append(f"{name}: no description")
        for action in sub._actions:
            if action.dest != "help" and not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}: no help")
    assert not missing, missing
    assert "--seed" not in commands["filters"].format_help()                # filters draws no samples
    assert "random pairs" not in commands["interpolate"].format_help()


def test_progress_lines_are_whole_in_a_log(run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", "--resume", run, "--epochs", "2", "--log-every", "8")
    assert code == 0, err
    lines = [line for line in err.splitlines() if "img/s" in line]
    assert lines and all("…" not in line and re.search(r"loss_D [\d.]+ +loss_G [\d.]+ +D\(x\) [\d.]+ +D\(G\(z\)\) "
                                                     r"[\d.]+ +[\d,]+ img/s", line) for line in lines), lines


def test_analysis_outputs_are_named_by_their_arguments(run, capsys):
    for expression in ("0,1 - 2 + 3", "4 - 5 + 6"):
        code, _, err = run_cli(capsys, "arithmetic", run, expression, "--variations", "2")
        assert code == 0, err
    for maps in ("0,1", "2"):
        code, _, err = run_cli(capsys, "dropout", run, "--maps", maps, "-n", "4")
        assert code == 0, err
    names = sorted(p.name for p in (run / "analysis").iterdir())
    assert len([n for n in names if n.startswith("arithmetic")]) == 2, names
    assert len([n for n in names if n.startswith("dropout")]) == 2, names


def test_evaluator_retraining_does_not_write_over_the_shipped_weights(tmp_path, monkeypatch):
    from ganzoo_plugins.mnist_evaluator import WEIGHTS, build_parser as evaluator_parser

    monkeypatch.chdir(tmp_path)
    out = evaluator_parser().parse_args([]).out
    assert os.path.abspath(out) == str(tmp_path / WEIGHTS.name) != str(WEIGHTS)


def test_plugins_doc_lists_every_builtin_plugin():
    from pathlib import Path

    from ganzoo.plugins import registries

    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    table = doc[doc.index("$ ganzoo plugins"):]
    table = table[:table.index("```")]
    missing = [p.name for p in registries().plugins if p.source == "built-in" and f"│ {p.name} " not in table]
    assert not missing, f"docs/plugins.md's `ganzoo plugins` table lacks {missing}"

