"""benchmarks/leaderboard.py: which models it runs, and how it merges one comparison per dataset into one table.
(The comparisons themselves are ganzoo compare's, tested in test_compare.py.)"""

import importlib.util
import json

from ganzoo.compare import ContenderResult, Results, RunResult

from helpers import REPO

spec = importlib.util.spec_from_file_location("leaderboard", REPO / "benchmarks" / "leaderboard.py")
leaderboard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(leaderboard)


def comparison(data: str, scores: dict[str, list[dict[str, float]]], real: dict[str, float],
               status: dict[str, str] = {}) -> Results:
    """A finished comparison as results.json holds it: per model, one run per seed with its final scores."""
    results = Results(settings={"data": data, "epochs": 1, "budget": None, "seeds": 2, "seed": 0, "n": None,
                                "overrides": {"threads": 1}}, real=real,
                      environment={"device": "cpu", "cpus": 2, "torch": "2", "platform": "Linux", "gpu": None})
    for label, runs in scores.items():
        entry = results.contenders[label] = ContenderResult(model=label, source="trained here")
        entry.runs = [RunResult(seed=i, run_dir="", status=status.get(label, "ok"), scores=s) for i, s in enumerate(runs)]
        entry.summarise()
    return Results.from_dict(json.loads(json.dumps(results.to_dict())))          # as read back from the file


def test_builtin_models_are_ganzoos_own_plugins_models():
    models = leaderboard.builtin_models()
    assert {"dcgan", "basicgan", "pacdcgan2", "wgangp"} <= set(models)
    assert "sndcgan" not in models                                     # the example plugin: a third party's


def test_one_table_merges_the_datasets_comparisons(tmp_path):
    mnist = comparison("mnist", {"dcgan": [{"mnist_fd": 10.0, "classes_covered": 10}, {"mnist_fd": 14.0,
                                                                                       "classes_covered": 9}],
                                 "pacdcgan2": [{"mnist_fd": 20.0, "classes_covered": 10}] * 2},
                       real={"mnist_fd": 0.9, "classes_covered": 10})
    stacked = comparison("stackedmnist", {"pacdcgan2": [{"modes_covered": 990, "mode_kl": 0.1}] * 2,
                                          "dcgan": [{"modes_covered": 80, "mode_kl": 4.0},
                                                    {"modes_covered": 120, "mode_kl": 3.0}]},
                         real={"modes_covered": 1000, "mode_kl": 0.01}, status={"dcgan": "D collapsed"})
    text = leaderboard.write({"mnist": mnist, "stackedmnist": stacked}, tmp_path, "python benchmarks/leaderboard.py")
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == ("| model | mnist mnist_fd ↓ | mnist classes_covered ↑ | stackedmnist modes_covered ↑ | "
                        "stackedmnist mode_kl ↓ | notes |")
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    rows = {row[0]: row[1:] for row in cells}
    assert list(rows) == ["dcgan", "pacdcgan2", "real data (floor)"]        # models in the order first met
    assert rows["dcgan"] == ["**12 ± 2.828**", "9.5 ± 0.7071", "100 ± 28.28", "3.5 ± 0.7071",
                             "stackedmnist: D collapsed"]
    assert rows["pacdcgan2"] == ["20", "**10**", "**990**", "**0.1**", ""]
    assert rows["real data (floor)"] == ["0.9", "10", "1000", "0.01", ""]
    assert "1 epoch(s) per model and seed; seeds 0..1" in text and "2 CPUs" in text
    assert (tmp_path / "leaderboard.md").read_text() == text
    saved = json.loads((tmp_path / "results.json").read_text())
    dcgan = saved["models"]["dcgan"]["stackedmnist"]
    assert dcgan["status"] == "D collapsed" and dcgan["modes_covered"]["mean"] == 100 and dcgan["mode_kl"]["mean"] == 3.5
    assert abs(dcgan["modes_covered"]["std"] - 28.28) < 0.01 and "mnist" not in saved["models"]["dcgan"]["stackedmnist"]
    assert saved["datasets"]["stackedmnist"]["metrics"] == {"modes_covered": "higher", "mode_kl": "lower"}


def test_a_model_missing_from_a_dataset_shows_a_dash(tmp_path):
    mnist = comparison("mnist", {"dcgan": [{"mnist_fd": 10.0}], "basicgan": [{"mnist_fd": 30.0}]}, {"mnist_fd": 1.0})
    stacked = comparison("stackedmnist", {"dcgan": [{"modes_covered": 80}], "lsgan": [{"modes_covered": 90}]},
                         {"modes_covered": 1000})
    text = leaderboard.leaderboard_table({"mnist": mnist, "stackedmnist": stacked})
    assert "| basicgan | 30 | - |  |" in text and "| lsgan | - | **90** |  |" in text


def test_compare_flags_pass_on_whole_and_conditional_models_sit_out_stacked_mnist():
    ours, passed_on = leaderboard.split_arguments(leaderboard.arguments(), [
        "dcgan", "--threads", "1", "--budget", "30s", "-n", "2000", "cdcgan", "--resume", "--g-width=32"])
    assert ours == ["dcgan", "--budget", "30s", "cdcgan", "--resume"]
    assert passed_on == ["--threads", "1", "-n", "2000", "--g-width=32"]
    assert leaderboard.is_conditional_model("cdcgan") and not leaderboard.is_conditional_model("dcgan")
    assert "stackedmnist" in leaderboard.LABELS_ARE_THE_MODES
