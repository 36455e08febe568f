"""`ganzoo compare` end to end on fake data: the table, results.json, the report files, a diverging model,
finished runs given as paths, --resume and --budget."""

import json
import statistics

import pytest
import torch
from PIL import Image

from ganzoo.cli import main
from ganzoo.config import ModelSpec
from ganzoo.evaluate import evaluate, evaluate_real, format_value
from ganzoo.models import build_discriminator, build_generator, count_parameters
from ganzoo.plugins import registries
from ganzoo.registry import Entry
from ganzoo_plugins.losses import NonSaturatingLoss
from ganzoo.run import make_config, train

from helpers import tiny_config

TINY = ["--data", "fake", "--batch-size", "64", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
        "--log-every", "4", "--device", "cpu", "--metrics", "mnist_fd,mnist_classes", "-n", "200",
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
            assert run["scores"] == pytest.approx(evaluate(weights, metrics="mnist_fd,mnist_classes", n=200,
                                                           device="cpu"), rel=1e-6)
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
    assert results["real"] == pytest.approx(evaluate_real(data="fake", image_size=32, channels=1,
                                                          metrics="mnist_fd,mnist_classes", n=200, device="cpu"))


def test_report_folder(two_seeds):
    out, results = two_seeds
    for name in ("samples.png", "losses.png", "metrics.png"):
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


def test_table_resume_and_refusal(two_seeds, capsys):
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
    assert code == 1 and "other settings" in err
    # another baseline is a report option, not a setting: the finished comparison is only read again
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
                                "--data", "fake", "--metrics", "mnist_fd", "-n", "200", "--device", "cpu",
                                "--out", str(out))
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert list(results["contenders"]) == ["run", "run-2"]                      # labels made unique
    assert not (out / "runs").exists()                                            # nothing was trained
    entry = results["contenders"]["run-2"]
    assert entry["model"] == "basicgan" and entry["source"].endswith("second/run")
    assert entry["runs"][0]["scores"]["mnist_fd"] == pytest.approx(
        evaluate(tmp_path / "second" / "run" / "basicgan.safetensors", metrics="mnist_fd", n=200, device="cpu")
        ["mnist_fd"], rel=1e-6)


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
