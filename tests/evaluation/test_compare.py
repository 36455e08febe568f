"""`ganzoo compare` end to end on fake data: the table, results.json, the report files, a diverging model,
finished runs given as paths, --resume and --budget."""

import json
import shutil
import statistics

import pytest
import torch
from PIL import Image

from ganzoo.cli import main
from ganzoo.config import ModelSpec
from ganzoo.evaluate import evaluate, evaluate_real, file_sha256, format_value
from ganzoo.models import build_discriminator, build_generator, count_parameters
from ganzoo.plugins import registries
from ganzoo.registry import Entry
from ganzoo_plugins.losses import NonSaturatingLoss
from ganzoo.run import make_config, train

from helpers import tiny_config

TINY = ["--data", "fake", "--batch-size", "64", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
        "--log-every", "4", "--device", "cpu", "--metrics", "mnist_fd,mnist_classes,mnist_prdc", "-n", "200",
        "--curve-n", "100"]
SETTINGS = dict(batch_size=64, g_width=8, d_width=8, z_dim=16, log_every=4, device="cpu", data="fake")


def compare(capsys, *args):
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """dcgan and basicgan, one epoch each, seeds 0 and 1 (run once, checked by several tests)."""
    out = tmp_path_factory.mktemp("compare") / "report"
    code = main(["compare", "dcgan", "basicgan", *TINY, "--epochs", "1", "--seeds", "2", "--out", str(out)])
    assert code == 0
    return out, json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_every_number_in_results_json_is_what_it_says(two_seeds):
    out, results = two_seeds
    assert list(results["contenders"]) == ["dcgan", "basicgan"]
    for label, entry in results["contenders"].items():
        assert [r["seed"] for r in entry["runs"]] == [0, 1]
        config = make_config(label, {**SETTINGS, "epochs": 1})
        assert entry["parameters"] == {"G": count_parameters(build_generator(config)),
                                       "D": count_parameters(build_discriminator(config))}
        for run in entry["runs"]:
            assert run["status"] == "ok" and run["steps"] == 16 and run["epochs_done"] == 1.0   # 1024 / 64
            weights = f"{run['run_dir']}/{label}.safetensors"
            # the scores are the evaluation of that run's weights, as `ganzoo eval` would compute them
            ours = evaluate(weights, metrics="mnist_fd,mnist_classes,mnist_prdc", n=200, device="cpu")
            assert run["scores"] == pytest.approx(ours, rel=1e-6)
            # ... with the protocol they were made under, the run's own weights named by their sha256
            assert run["protocol"] == ours.protocol
            assert run["protocol"]["mnist_fd"]["generator_sha256"] == file_sha256(weights)
            assert run["protocol"]["mnist_fd"]["n"] == 200 and run["curve"][0]["protocol"]["mnist_fd"]["n"] == 100
            records = [json.loads(line) for line in open(f"{run['run_dir']}/metrics.jsonl")]
            # throughput is images trained / training time (the clock --budget counts), both from the log
            assert run["train_time_s"] == records[-1]["train_time"] > 0
            assert run["images_per_s"] == pytest.approx(16 * 64 / run["train_time_s"], rel=1e-12)
            assert [p["step"] for p in run["curve"]] == [16]                     # one point per epoch
            assert run["peak_memory_mb"] > 0 and run["train_time_s"] > 0
        # the two seeds trained different networks
        assert entry["runs"][0]["scores"]["mnist_fd"] != entry["runs"][1]["scores"]["mnist_fd"]
        fds = [r["scores"]["mnist_fd"] for r in entry["runs"]]
        assert entry["summary"]["mnist_fd"]["mean"] == pytest.approx(statistics.fmean(fds))
        assert entry["summary"]["mnist_fd"]["std"] == pytest.approx(statistics.stdev(fds))
    # the floor: 200 training images (the seeded subset), scored here with the evaluator itself
    floor = _floor_by_hand("fake", None, "train", 200)
    assert {k: results["real"][k] for k in ("mnist_fd", "classes_covered", "class_kl")} == pytest.approx(
        {k: floor[k] for k in ("mnist_fd", "classes_covered", "class_kl")}, rel=1e-6)
    real = evaluate_real(data="fake", image_size=32, channels=1, metrics="mnist_fd,mnist_classes,mnist_prdc", n=200,
                         device="cpu")
    assert results["real"] == pytest.approx(real) and results["real_protocol"] == real.protocol


def test_report_folder(two_seeds):
    out, results = two_seeds
    for name in ("samples.png", "losses.png", "metrics.png", "precision_recall.png"):
        width, height = Image.open(out / name).size
        assert width > 300 and height > 200, name
    width, height = Image.open(out / "pareto.png").size
    assert width > 300 and height > 200
    report = (out / "report.md").read_text()
    summary = results["contenders"]["dcgan"]["summary"]["mnist_fd"]
    rows = {line.split("|")[1].strip(): line for line in report.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"dcgan (2 seeds)", "basicgan (2 seeds)", "real data (floor)"}
    cell = rows["dcgan (2 seeds)"].split("|")[4].strip().strip("*")          # the mnist_fd column: mean [interval]
    assert cell == f"{format_value(summary['mean'])} [{format_value(summary['low'])}, {format_value(summary['high'])}]"
    assert summary["n"] == 2 and "±" not in report and "over 2 seeds (Student t)" in report
    # the default baseline is the first model named; basicgan's difference to it, paired by seed
    dcgan = {r["seed"]: r["scores"]["mnist_fd"] for r in results["contenders"]["dcgan"]["runs"]}
    basic = {r["seed"]: r["scores"]["mnist_fd"] for r in results["contenders"]["basicgan"]["runs"]}
    mean_difference = statistics.fmean(basic[s] - dcgan[s] for s in (0, 1))
    assert "## Against the baseline, dcgan" in report
    assert f"{'+' if mean_difference > 0 else '−'}{format_value(abs(mean_difference))} [" in report
    assert "![samples](samples.png)" in report and "![pareto](pareto.png)" in report
    assert "`ganzoo compare dcgan basicgan" in report
    assert "![precision_recall](precision_recall.png)" in report and "precision ↑ | recall ↑" in report
    assert "## Protocol" in report and "| images scored | 200 |" in report


def test_table_resume_and_refusal(two_seeds, capsys, tmp_path):
    out, results = two_seeds
    code, stdout, err = compare(capsys, "dcgan", "basicgan", *TINY, "--epochs", "1", "--seeds", "2",
                                "--out", str(out))
    assert code == 1 and "already holds a comparison" in err
    code, stdout, err = compare(capsys, "dcgan", "basicgan", *TINY, "--epochs", "1", "--seeds", "2",
                                "--out", str(out), "--resume")
    assert code == 0 and err.count("done earlier, kept") == 4
    assert json.loads((out / "results.json").read_text())["contenders"] == results["contenders"]
    for label in ("dcgan (2 seeds)", "basicgan (2 seeds)", "real data (floor)", "mnist_fd ↓", "★"):
        assert label in stdout
    code, _, err = compare(capsys, "dcgan", "basicgan", *TINY, "--epochs", "2", "--seeds", "2",
                           "--out", str(out), "--resume")
    assert code == 1 and "other models, inputs or settings" in err and "--resume" not in err
    # another baseline is a report option, not a setting: the finished comparison is only read again (in a
    # copy: the module's comparison keeps its report for the other tests, whatever order they run in)
    out = shutil.copytree(out, tmp_path / "copy")
    code, stdout, err = compare(capsys, "dcgan", "basicgan", *TINY, "--epochs", "1", "--seeds", "2",
                                "--out", str(out), "--resume", "--baseline", "basicgan")
    assert code == 0 and err.count("done earlier, kept") == 4 and "against basicgan" in stdout
    assert "## Against the baseline, basicgan" in (out / "report.md").read_text()
    code, _, err = compare(capsys, "dcgan", "basicgan", *TINY, "--epochs", "1", "--seeds", "2",
                           "--out", str(out), "--resume", "--baseline", "wgangp")
    assert code == 1 and "--baseline 'wgangp' is not one of the models compared (dcgan, basicgan)" in err


class NaNAfterFewSteps:
    """A loss that turns NaN on its fifth call: what a diverging model looks like to the trainer."""

    def __init__(self):
        self.calls = 0

    def d_loss(self, real_logits, fake_logits):
        self.calls += 1
        loss = torch.nn.functional.softplus(-real_logits).mean() + torch.nn.functional.softplus(fake_logits).mean()
        return loss * float("nan") if self.calls >= 5 else loss

    def g_loss(self, fake_logits):
        return torch.nn.functional.softplus(-fake_logits).mean()


class FrozenG(NonSaturatingLoss):
    """G gets no gradient: D is bound to win."""

    def g_loss(self, fake_logits):
        return fake_logits.sum() * 0.0


def test_diverging_and_collapsing_models_are_recorded_not_fatal(tmp_path, capsys, monkeypatch, one_thread):
    with registries().temporary(
            losses=[Entry("nan-after-5", NaNAfterFewSteps, "test loss", "test", {}),
                    Entry("frozen-g", FrozenG, "test loss", "test", {})],
            models=[Entry("divergent", ModelSpec("dcgan", "dcgan", "nan-after-5"), "test model", "test", {}),
                    Entry("collapsing", ModelSpec("dcgan", "dcgan", "frozen-g", defaults={"lr": 1e-2}),   # D wins
                          "test model", "test", {})]):          # within 8 steps
        out = tmp_path / "report"
        code, stdout, err = compare(capsys, "divergent", "collapsing", "basicgan", *TINY, "--epochs", "1",
                                    "--out", str(out))
        assert code == 0, err
        results = json.loads((out / "results.json").read_text())
        run = results["contenders"]["divergent"]["runs"][0]
        assert run["status"] == "diverged" and "NaN" in run["message"] and run["scores"] == {}
        collapsed = results["contenders"]["collapsing"]["runs"][0]
        assert collapsed["status"] == "D collapsed" and "G gets no useful gradient" in collapsed["message"]
        assert collapsed["scores"]["mnist_fd"] > 0                                # still scored
        records = [json.loads(line) for line in open(f"{collapsed['run_dir']}/metrics.jsonl")]
        assert all(r["loss_d"] < 0.05 and r["d_real"] > 0.95 and r["d_fake"] < 0.05 for r in records[-3:])
        assert results["contenders"]["basicgan"]["runs"][0]["status"] == "ok"
        assert "diverged" in stdout and "D collapsed" in stdout
        report = (out / "report.md").read_text()
        assert "| divergent | diverged |" in report and "| collapsing | D collapsed |" in report
        assert "**collapsing** (seed 0): D collapsed" in report                  # under "Runs that did not end well"
        assert (out / "samples.png").is_file()


@pytest.mark.slow
def test_finished_runs_are_scored_not_retrained(tmp_path, capsys):
    for name, model in (("first", "dcgan"), ("second", "basicgan")):
        config = tiny_config(tmp_path / name, model=model, batch_size=64)
        train(config)
    out = tmp_path / "report"
    code, stdout, err = compare(capsys, str(tmp_path / "first" / "run"), str(tmp_path / "second" / "run"),
                                "--data", "fake", "--metrics", "mnist_fd,mnist_memorisation", "-n", "200",
                                "--device", "cpu", "--out", str(out))
    assert code == 0, err
    # memorisation's closest pairs, one picture per model, shown in the report
    assert all((out / f"memorisation-{label}.png").is_file() for label in ("run", "run-2"))
    assert "![run-2: closest to training images](memorisation-run-2.png)" in (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert list(results["contenders"]) == ["run", "run-2"]                      # labels made unique
    assert not (out / "runs").exists()                                            # nothing was trained
    entry = results["contenders"]["run-2"]
    assert entry["model"] == "basicgan" and entry["source"].endswith("second/run")
    assert entry["runs"][0]["scores"]["mnist_fd"] == pytest.approx(
        evaluate(tmp_path / "second" / "run" / "basicgan.safetensors", metrics="mnist_fd", n=200, device="cpu")
        ["mnist_fd"], rel=1e-6)


def test_scores_of_different_protocols_are_refused_in_one_column(tmp_path, capsys):
    """Finished runs at 16x16 and 32x32: their mnist_fd compare with the test split at each one's own size, so
    the two numbers cannot share a column; compare says which settings differ, in one sentence."""
    from ganzoo.checkpoint import save_generator

    paths = []
    for size in (32, 16):
        config = tiny_config(tmp_path / str(size), image_size=size)
        paths.append(str(save_generator(tmp_path / f"g{size}.safetensors", build_generator(config), config)))
    out = tmp_path / "report"
    code, _, err = compare(capsys, *paths, "--data", "fake", "--metrics", "mnist_classes,mnist_fd", "-n", "100",
                           "--device", "cpu", "--out", str(out))
    error = err.strip().splitlines()[-1]
    assert code == 1 and error.startswith("error: Refusing to put mnist_fd of g32 and g16 in one column"), err
    assert "one column" not in "\n".join(err.strip().splitlines()[:-1])                  # classes_covered: alike
    assert "real images fake test split at 32x32x1 vs fake test split at 16x16x1" in err
    assert not (out / "report.md").exists()
    results = json.loads((out / "results.json").read_text())                            # nothing lost
    assert [len(e["runs"]) for e in results["contenders"].values()] == [1, 1]


@pytest.mark.slow
def test_equal_time_budget(tmp_path, capsys):
    out = tmp_path / "report"
    code, _, err = compare(capsys, "dcgan", "basicgan", *TINY, "--budget", "4s", "--points", "2", "--out", str(out))
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["budget"] == 4.0
    for entry in results["contenders"].values():
        run = entry["runs"][0]
        steps = [p["step"] for p in run["curve"]]
        assert len(steps) == 2 and 0 < steps[0] < steps[1]                     # trained on through both slices
        times = [p["train_time_s"] for p in run["curve"]]
        assert 2.0 <= times[0] < times[1] == run["train_time_s"] and times[1] >= 4.0  # each slice ends at its share
        assert run["images_per_s"] == pytest.approx(run["steps"] * 64 / run["train_time_s"])
        assert run["train_time_s"] >= 2.0                                       # the budget was spent training
        assert [line for line in open(f"{run['run_dir']}/config.json")]        # a normal run folder


def test_equal_time_budget_is_the_same_training_time_for_every_model(tmp_path, capsys, one_second_steps, one_thread):
    """The clock is simulated (each training step takes 'one second', nothing else takes time), so a budget
    of 10 s in 2 points is 5 steps, then 5 more, for every model whatever its speed (an epoch is 16 steps)."""
    out = tmp_path / "report"
    code, _, err = compare(capsys, "dcgan", "basicgan", *TINY, "--budget", "10s", "--points", "2", "--out", str(out))
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    for label, entry in results["contenders"].items():
        run = entry["runs"][0]
        assert [p["step"] for p in run["curve"]] == [5, 10], label
        assert [p["train_time_s"] for p in run["curve"]] == [5.0, 10.0], label
        assert run["steps"] == 10 and run["train_time_s"] == 10.0, label


@pytest.mark.slow
def test_an_interrupted_comparison_continues_its_run_from_the_last_checkpoint(tmp_path, capsys, monkeypatch,
                                                                               one_thread):
    """Ctrl-C part way through a model's 3 epochs, then the same command with --resume: that run goes on from
    its checkpoint (its log never starts again at step 1), the evaluation points it had are kept, and it ends
    where an uninterrupted run would (3 epochs, 48 steps)."""
    import ganzoo.train
    from ganzoo.training.step import Step

    trainers = []
    real_init, real_call = ganzoo.train.Trainer.__init__, Step.__call__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        trainers.append(self)

    def call(self, real, labels=None):                  # Ctrl-C in dcgan's 40th step (mid epoch 3 of 16 steps)
        stats = real_call(self, real, labels)
        trainer = trainers[-1]
        if trainer.config.model == "dcgan" and trainer.state.step + 1 == 40 and not stopped:
            stopped.append(trainer.state.step)
            trainer.loop.request_stop()
        return stats

    stopped = []
    monkeypatch.setattr(ganzoo.train.Trainer, "__init__", init)
    monkeypatch.setattr(Step, "__call__", call)
    out = tmp_path / "report"
    args = ["dcgan", "basicgan", *TINY, "--metrics", "mnist_fd", "--epochs", "3", "--out", str(out)]
    code, _, err = compare(capsys, *args)
    assert code == 130 and stopped and "--resume" in err, err
    saved = json.loads((out / "results.json").read_text())
    assert [p["step"] for p in saved["unfinished"]["dcgan/seed0"]] == [16, 32]     # epochs 1 and 2 scored

    code, _, err = compare(capsys, *args, "--resume")
    assert code == 0, err
    assert "continuing from its checkpoint" in err and "2 of its evaluation points done" in err
    results = json.loads((out / "results.json").read_text())
    run = results["contenders"]["dcgan"]["runs"][0]
    assert [p["step"] for p in run["curve"]] == [16, 32, 48] and run["steps"] == 48
    assert run["curve"][:2] == saved["unfinished"]["dcgan/seed0"]                  # kept, not retrained
    steps = [r["step"] for r in map(json.loads, open(f"{run['run_dir']}/metrics.jsonl")) if "loss_d" in r]
    assert steps == sorted(steps) and len(steps) == len(set(steps)), steps         # one pass, never restarted
    assert "unfinished" not in results


@pytest.mark.slow
def test_report_folders_of_different_inputs_do_not_collide(tmp_path, capsys, monkeypatch):
    """`compare runs/dcgan basicgan` and `compare dcgan basicgan` get different default folders; a folder
    holding another comparison is refused without suggesting a --resume that would be refused too."""
    from ganzoo.compare.comparison import Comparison, default_folder, parse_contenders

    config = tiny_config(tmp_path, model="dcgan", batch_size=64)
    config.out = str(tmp_path / "runs" / "dcgan")
    train(config)
    monkeypatch.chdir(tmp_path)
    named = parse_contenders(["dcgan", "basicgan"])
    as_run = parse_contenders(["runs/dcgan", "basicgan"])
    assert [c.label for c in named] == [c.label for c in as_run] == ["dcgan", "basicgan"]
    assert default_folder(named, "fake") != default_folder(as_run, "fake")
    assert default_folder(named, "fake") == default_folder(parse_contenders(["dcgan", "basicgan"]), "fake")

    from ganzoo.compare import Settings
    out = tmp_path / "shared"
    Comparison(as_run, Settings(data="fake", device="cpu"), out).save()
    with pytest.raises(Exception, match="other models, inputs or settings") as refused:
        Comparison(named, Settings(data="fake", device="cpu"), out)
    assert "--resume" not in str(refused.value)
    with pytest.raises(Exception, match="other models, inputs or settings"):
        Comparison(named, Settings(data="fake", device="cpu"), out, resume=True)
    with pytest.raises(Exception, match="continue it with --resume"):
        Comparison(as_run, Settings(data="fake", device="cpu"), out)
    Comparison(as_run, Settings(data="fake", device="cpu"), out, resume=True)    # the advice holds


def _floor_by_hand(data_name: str, root, split: str, n: int) -> dict[str, float]:
    """The real row's MNIST-evaluator numbers, computed here from the dataset's images and the evaluator
    directly: the seeded subset (seed 0) of `split`, its labels the images' own, its Fréchet distance to the
    whole test split."""
    from ganzoo.data import load_dataset
    from ganzoo.evaluate import class_histogram_kl, frechet_distance, gaussian_statistics
    from ganzoo_plugins.mnist_evaluator import load_evaluator

    def load(which):
        return load_dataset(data_name, root=root, split=which, image_size=32, channels=1)

    data, evaluator = load(split), load_evaluator()
    picked = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(0))[:n]
    features, probs = evaluator.score(data.images[picked])
    reference, _ = evaluator.score(load("test").images)
    covered, kl = class_histogram_kl(probs.argmax(1), 10)
    return {"mnist_fd": frechet_distance(*gaussian_statistics(features), *gaussian_statistics(reference)),
            "classes_covered": covered, "class_kl": kl,
            "class_agreement": (probs.argmax(1) == data.labels[picked]).double().mean().item()}


@pytest.mark.parametrize("model,split", [("dcgan", None), ("cdcgan", "test")])
def test_the_real_row_scores_the_training_split_with_labels_beside_a_conditional_model(
        tmp_path, mnist_dir, capsys, model, split):
    """compare's floor is the split the models learned from (train unless --split says otherwise), and beside a
    conditional model it carries the images' labels, so class_agreement has a floor too."""
    from ganzoo.checkpoint import save_generator
    from ganzoo.data import load_dataset
    from ganzoo.resolve import settle

    config = tiny_config(tmp_path, model=model, data="mnist", data_dir=str(mnist_dir),
                         **({"split": split} if split else {}))
    settle(config, load_dataset("mnist", root=str(mnist_dir), split=config.split, image_size=32, channels=1))
    weights = [save_generator(tmp_path / f"{model}-{i}.safetensors", build_generator(config), config) for i in (1, 2)]
    out = tmp_path / "report"
    code, stdout, err = compare(capsys, *map(str, weights), "--data-dir", str(mnist_dir), "--metrics",
                                "mnist_classes,mnist_agreement", "-n", "200", "--device", "cpu", "--out", str(out))
    assert code == 0, err
    real = json.loads((out / "results.json").read_text())["real"]
    by_hand = {s: _floor_by_hand("mnist", str(mnist_dir), s, 200) for s in ("train", "test")}
    for row in by_hand.values():
        del row["mnist_fd"]                      # not asked for here
    assert by_hand["train"]["class_kl"] != by_hand["test"]["class_kl"]       # the two splits' floors differ
    expected = dict(by_hand[split or "train"])
    if model == "dcgan":
        del expected["class_agreement"]          # an unconditional model's samples carry no class: no floor
        # evaluate_real's own default split is the training split too
        assert evaluate_real(data="mnist", image_size=32, channels=1, metrics="mnist_classes", n=200,
                             data_dir=str(mnist_dir), device="cpu") == pytest.approx(
            {k: by_hand["train"][k] for k in ("classes_covered", "class_kl")}, rel=1e-9)
    assert real == pytest.approx(expected, rel=1e-9)
    if model == "cdcgan":
        assert real["class_agreement"] > 0.9     # real digits agree with their own labels


def test_a_name_that_is_both_a_model_and_a_folder_here_is_refused_asking_which(tmp_path, capsys, monkeypatch):
    """`compare basicgan dcgan` beside an old run folder named basicgan once scored that folder in silence."""
    from helpers import assert_one_line_error
    monkeypatch.chdir(tmp_path)
    (tmp_path / "basicgan").mkdir()
    code, _, err = compare(capsys, "basicgan", "dcgan", "--data", "fake", "--device", "cpu")
    line = assert_one_line_error(code, err)
    assert "'basicgan' is both a registered model and a folder here" in line and "./basicgan for the folder" in line
    assert not (tmp_path / "runs").exists() and not list(tmp_path.glob("compare*"))    # nothing trained or written
    code, _, err = compare(capsys, "./basicgan", "dcgan", "--data", "fake", "--device", "cpu")
    assert code != 0 and "both a registered model" not in err                # the folder, taken as meant
