"""benchmarks/leaderboard.py: which models it runs, and how it merges one comparison per dataset into one table.
(The comparisons themselves are ganzoo compare's, tested in test_compare.py.)"""

import importlib.util
import json

import pytest

from ganzoo.compare import ContenderResult, Results, RunResult

from helpers import REPO

spec = importlib.util.spec_from_file_location("leaderboard", REPO / "benchmarks" / "leaderboard.py")
leaderboard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(leaderboard)


def comparison(data: str, scores: dict[str, list[dict[str, float]]], real: dict[str, float],
               status: dict[str, str] = {}) -> Results:
    """A finished comparison as results.json holds it: per model, one run per seed with its final scores."""
    results = Results(settings={"data": data, "epochs": 1, "budget": None, "seeds": 3, "seed": 0, "n": None,
                                "overrides": {"threads": 1}}, real=real,
                      environment={"device": "cpu", "cpus": 2, "torch": "2", "platform": "Linux", "gpu": None,
                                   "cpu": "Some CPU @ 2GHz"})
    for label, runs in scores.items():
        entry = results.contenders[label] = ContenderResult(model=label, source="trained here")
        entry.runs = [RunResult(seed=i, run_dir="", status=status.get(label, "ok") if i == 1 else "ok", scores=s,
                                train_time_s=100.0 + 10 * i, finished_at=f"2030-01-0{i + 1}T00:00:00+00:00")
                      for i, s in enumerate(runs)]
        entry.summarise()
    return Results.from_dict(json.loads(json.dumps(results.to_dict())))          # as read back from the file


def test_one_table_merges_the_datasets_comparisons(tmp_path):
    # dcgan beats pacdcgan2 on mnist_fd on every seed by 8-10 (bold); classes_covered differs within the noise
    mnist = comparison("mnist", {"dcgan": [{"mnist_fd": 10.0, "classes_covered": 10}, {"mnist_fd": 14.0,
                                                                                       "classes_covered": 9},
                                           {"mnist_fd": 12.0, "classes_covered": 10}],
                                 "pacdcgan2": [{"mnist_fd": 20.0, "classes_covered": 10},
                                               {"mnist_fd": 23.0, "classes_covered": 10},
                                               {"mnist_fd": 21.0, "classes_covered": 10}]},
                       real={"mnist_fd": 0.9, "classes_covered": 10})
    stacked = comparison("stackedmnist", {"pacdcgan2": [{"modes_covered": 990, "mode_kl": 0.1}] * 3,
                                          "dcgan": [{"modes_covered": 80, "mode_kl": 4.0},
                                                    {"modes_covered": 120, "mode_kl": 3.0},
                                                    {"modes_covered": 100, "mode_kl": 3.5}]},
                         real={"modes_covered": 1000, "mode_kl": 0.01}, status={"dcgan": "D collapsed"})
    text = leaderboard.write({"mnist": mnist, "stackedmnist": stacked}, tmp_path, "python benchmarks/leaderboard.py")
    table = [line for line in text.splitlines() if line.startswith("| model") or line.startswith("| dcgan |")
             or line.startswith("| pacdcgan2 |") or line.startswith("| real data")]
    assert table[0] == ("| model | mnist mnist_fd ↓ | mnist classes_covered ↑ | mnist train s/run | "
                        "stackedmnist modes_covered ↑ | stackedmnist mode_kl ↓ | stackedmnist train s/run | notes |")
    rows = {row[0]: row[1:] for row in ([c.strip() for c in line.strip("|").split("|")] for line in table[1:4])}
    assert list(rows) == ["dcgan", "pacdcgan2", "real data (floor)"]        # models in the order first met
    # mean [Student t 95% interval]: 12 ± 4.303 * 2 / sqrt(3) = 12 ± 4.968
    assert rows["dcgan"][0] == "**12 [7.032, 16.97]**" and rows["dcgan"][1] == "9.667 [8.232, 11.1]"
    assert rows["dcgan"][2] == "110 [85, 135]"                               # train s/run: 100, 110, 120
    assert rows["dcgan"][6] == "stackedmnist: D collapsed (seed 1)"
    assert rows["pacdcgan2"][:2] == ["21.33 [17.54, 25.13]", "10"]           # 10 on every seed: no interval
    assert rows["pacdcgan2"][3:5] == ["**990**", "**0.1**"]                   # beats dcgan on every seed
    assert rows["real data (floor)"] == ["0.9", "10", "", "1000", "0.01", "", ""]
    assert "1 epoch(s) per model and seed; seeds 0..2" in text and "2 CPUs (Some CPU @ 2GHz)" in text
    assert "over 3 seeds (Student t)" in text and "runs ended 2030-01-01 to 2030-01-03" in text
    assert "Made at commit `" in text                                         # this checkout's git describe
    assert "### mnist: against dcgan" in text and "| pacdcgan2 | **+9.333 [" in text and "** worse" in text
    assert (tmp_path / "leaderboard.md").read_text() == text
    saved = json.loads((tmp_path / "results.json").read_text())
    dcgan = saved["models"]["dcgan"]["stackedmnist"]
    assert dcgan["status"] == "D collapsed, ok" and dcgan["modes_covered"]["mean"] == 100 and dcgan["mode_kl"]["mean"] == 3.5
    assert dcgan["modes_covered"]["n"] == 3 and dcgan["modes_covered"]["low"] == pytest.approx(100 - 4.3027 * 20 / 3 ** 0.5, rel=1e-4)
    assert [r["scores"]["modes_covered"] for r in dcgan["runs"]] == [80, 120, 100]          # every seed, raw
    assert [r["status"] for r in dcgan["runs"]] == ["ok", "D collapsed", "ok"]
    assert saved["baseline"] == {"mnist": "dcgan", "stackedmnist": "pacdcgan2"}   # each dataset's first model
    assert saved["models"]["dcgan"]["stackedmnist"]["against_baseline"]["modes_covered"]["verdict"] == "worse"
    assert saved["models"]["pacdcgan2"]["mnist"]["against_baseline"]["mnist_fd"]["mean"] == pytest.approx(28 / 3)
    assert saved["datasets"]["stackedmnist"]["metrics"] == {"modes_covered": "higher", "mode_kl": "lower"}
    assert len(saved["commit"]["commit"]) == 40
    # the baseline asked for, where it ran
    leaderboard.write({"mnist": mnist, "stackedmnist": stacked}, tmp_path, "x", baseline="pacdcgan2")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["baseline"] == {"mnist": "pacdcgan2", "stackedmnist": "pacdcgan2"}
    assert saved["models"]["dcgan"]["mnist"]["against_baseline"]["mnist_fd"]["verdict"] == "better"


def test_one_seed_says_there_is_no_interval(tmp_path):
    mnist = comparison("mnist", {"dcgan": [{"mnist_fd": 10.0}], "r1": [{"mnist_fd": 5.0}]}, {"mnist_fd": 1.0})
    text = leaderboard.write({"mnist": mnist}, tmp_path, "python benchmarks/leaderboard.py")
    assert "One seed per model: no interval can be given" in text
    assert "| dcgan | 10 | 100 |  |" in text and "| r1 | 5 | 100 |  |" in text and "±" not in text
    assert "| r1 | −5 (1 seed, no interval) |" in text


def test_a_model_missing_from_a_dataset_shows_a_dash(tmp_path):
    mnist = comparison("mnist", {"dcgan": [{"mnist_fd": 10.0}], "basicgan": [{"mnist_fd": 30.0}]}, {"mnist_fd": 1.0})
    stacked = comparison("stackedmnist", {"dcgan": [{"modes_covered": 80}], "lsgan": [{"modes_covered": 90}]},
                         {"modes_covered": 1000})
    text = leaderboard.leaderboard_table({"mnist": mnist, "stackedmnist": stacked})
    assert "| basicgan | 30 | 100 | - | - |  |" in text and "| lsgan | - | - | 90 | 100 |  |" in text


def test_compare_flags_pass_on_whole_and_conditional_models_sit_out_stacked_mnist():
    ours, passed_on = leaderboard.split_arguments(leaderboard.arguments(), [
        "dcgan", "--threads", "1", "--budget", "30s", "-n", "2000", "cdcgan", "--resume", "--g-width=32"])
    assert ours == ["dcgan", "--budget", "30s", "cdcgan", "--resume"]
    assert passed_on == ["--threads", "1", "-n", "2000", "--g-width=32"]
    assert leaderboard.is_conditional_model("cdcgan") and not leaderboard.is_conditional_model("dcgan")
    assert "stackedmnist" in leaderboard.LABELS_ARE_THE_MODES


def test_resume_rebuilds_the_table_from_finished_comparisons_without_training(tmp_path, capfd):
    """A finished leaderboard's compare folders are only read again: leaderboard.md and results.json come back,
    every run's weights untouched, nothing trained or scored twice."""
    flags = ["dcgan", "basicgan", "--data", "fake", "--seeds", "2", "--epochs", "1", "--out", str(tmp_path),
             "--batch-size", "64", "--g-width", "8", "--d-width", "8", "--z-dim", "16", "--device", "cpu",
             "--metrics", "mnist_fd", "-n", "200", "--curve-n", "100", "--threads", "1", "--baseline", "basicgan"]
    assert leaderboard.main(flags) == 0
    weights = sorted((tmp_path / "fake" / "runs").glob("*/*.safetensors"))
    stamps = {w: w.stat().st_mtime_ns for w in weights}
    first = json.loads((tmp_path / "results.json").read_text())
    assert len(weights) == 8 and first["baseline"] == {"fake": "basicgan"}
    assert [r["seed"] for r in first["models"]["dcgan"]["fake"]["runs"]] == [0, 1]
    assert all(r["wall_time_s"] >= r["train_time_s"] > 0 for r in first["models"]["dcgan"]["fake"]["runs"])
    (tmp_path / "leaderboard.md").unlink()
    (tmp_path / "results.json").unlink()
    capfd.readouterr()
    assert leaderboard.main(flags + ["--resume"]) == 0
    captured = capfd.readouterr()
    assert (captured.out + captured.err).count("done earlier, kept") == 4
    assert {w: w.stat().st_mtime_ns for w in weights} == stamps
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["models"] == first["models"]
    assert "### fake: against basicgan" in (tmp_path / "leaderboard.md").read_text()


def test_a_leaderboard_of_one_model_ranks_its_seeds(tmp_path):
    """One model over several seeds is a comparison of its own (a leaderboard adding one model, or a dataset that
    leaves all but one out): it trains and reports its spread; one model with one seed is still refused."""
    flags = ["dcgan", "--data", "fake", "--seeds", "2", "--epochs", "1", "--out", str(tmp_path), "--batch-size", "64",
             "--g-width", "8", "--d-width", "8", "--z-dim", "16", "--device", "cpu", "--metrics", "mnist_fd",
             "-n", "200", "--curve-n", "100", "--threads", "1"]
    assert leaderboard.main(flags) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    runs = saved["models"]["dcgan"]["fake"]["runs"]
    assert [r["seed"] for r in runs] == [0, 1] and all(r["status"] == "ok" for r in runs)
    assert saved["models"]["dcgan"]["fake"]["mnist_fd"]["n"] == 2 and "against_baseline" not in saved["models"]["dcgan"]["fake"]
    assert "| dcgan | " in (tmp_path / "leaderboard.md").read_text()
    from ganzoo.compare import parse_contenders
    from ganzoo.errors import GanzooError
    with pytest.raises(GanzooError, match="at least two models or runs"):
        parse_contenders(["dcgan"], seeds=1)


def finished_folder(folder, data, results):
    (folder / data).mkdir(parents=True)
    (folder / data / "results.json").write_text(json.dumps(results.to_dict()))


def test_report_merges_leaderboards_run_side_by_side_and_refuses_what_does_not_belong_together(tmp_path, capsys):
    """--merge: the finished models of leaderboards run beside each other (one per process) in one table, the
    models found nowhere still named as to come; refused for other settings, another machine, or a model found
    twice."""
    a, b = tmp_path / "a", tmp_path / "b"
    finished_folder(a, "mnist", comparison("mnist", {"dcgan": [{"mnist_fd": v} for v in (10.0, 14.0, 12.0)]},
                                           {"mnist_fd": 0.9}))
    finished_folder(b, "mnist", comparison("mnist", {"r1": [{"mnist_fd": v} for v in (5.0, 8.0, 6.0)]},
                                           {"mnist_fd": 0.9}))
    common = ["dcgan", "r1", "wgan", "--data", "mnist", "--seeds", "3", "--epochs", "1", "--out", str(a), "--report"]
    assert leaderboard.main(common + ["--merge", str(b)]) == 0
    text = (a / "leaderboard.md").read_text()
    assert "| dcgan | 12 [7.032, 16.97] |" in text and "| r1 | **6.333 [2.539, 10.13]** |" in text
    assert "Still to come: mnist: wgan" in text and "| r1 | **−5.667 [" in text      # paired against dcgan
    assert "--merge" not in text and str(b) not in text.split("\n")[2]
    saved = json.loads((a / "results.json").read_text())
    assert [r["scores"]["mnist_fd"] for r in saved["models"]["r1"]["mnist"]["runs"]] == [5.0, 8.0, 6.0]
    # without b, r1 is to come
    assert leaderboard.main(common) == 0 and "Still to come: mnist: r1, wgan" in (a / "leaderboard.md").read_text()
    capsys.readouterr()
    # another budget
    other = comparison("mnist", {"wgan": [{"mnist_fd": 30.0}] * 3}, {"mnist_fd": 0.9})
    other.settings["epochs"] = 2
    finished_folder(tmp_path / "c", "mnist", other)
    assert leaderboard.main(common + ["--merge", str(b), "--merge", str(tmp_path / "c")]) == 1
    assert "different settings (epochs: 1 against 2)" in capsys.readouterr().err
    # another machine
    other = comparison("mnist", {"wgan": [{"mnist_fd": 30.0}] * 3}, {"mnist_fd": 0.9})
    other.environment["cpu"] = "Another CPU"
    finished_folder(tmp_path / "d", "mnist", other)
    assert leaderboard.main(common + ["--merge", str(tmp_path / "d")]) == 1
    assert "different machines" in capsys.readouterr().err
    # a model in two folders
    assert leaderboard.main(common + ["--merge", str(b), "--merge", str(b)]) == 1
    assert "r1 finished in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        leaderboard.main(["dcgan", "r1", "--merge", str(b)])
    assert "--merge goes with --report" in capsys.readouterr().err
