"""Whether compare's differences are real: Student t intervals over seeds, paired-seed differences against a
baseline, bold only beyond noise, one seed said to give no interval, the Pareto plot. Numbers are checked
against closed forms (t quantiles typed in from tables), not against the code's own formulas."""

import json
import math

import pytest
from PIL import Image

from ganzoo.compare import Results, paired_difference, t_interval
from ganzoo.compare.report import (best_labels, difference_rows, markdown_differences, markdown_table, pareto_front,
                                   seeds_note, table_rows, write_report)
from ganzoo.errors import GanzooError

T_975 = {2: 4.3027, 4: 2.7764}      # Student t 97.5% quantiles for 2 and 4 degrees of freedom, from a printed table


def results_with(per_seed: dict[str, dict[int, dict[str, float]]], real=None, budget=None) -> Results:
    """A finished comparison as results.json holds it: per model, {seed: {score: value}} (runs in the order given)."""
    contenders = {label: {"model": label, "source": "trained here", "parameters": {},
                          "runs": [{"seed": seed, "run_dir": f"runs/{label}-seed{seed}", "scores": scores,
                                    "train_time_s": 100.0 + seed + i}
                                   for i, (seed, scores) in enumerate(runs.items())]}
                  for label, runs in per_seed.items()}
    return Results.from_dict(json.loads(json.dumps(
        {"settings": {"data": "mnist", "epochs": 5, "budget": None, "seed": 0, "seeds": 3, "n": None},
         "real": real or {"mnist_fd": 0.5}, "contenders": contenders})))


def test_interval_of_the_mean_is_student_t():
    interval = t_interval([1.0, 2.0, 3.0])
    half = T_975[2] * 1.0 / math.sqrt(3)                                  # sd 1, n 3
    assert interval.mean == 2.0 and interval.n == 3
    assert 2.0 - interval.low == pytest.approx(half, rel=1e-4) and interval.high - 2.0 == pytest.approx(half, rel=1e-4)
    five = t_interval([4.0, 6.0, 5.0, 7.0, 3.0])                           # sd sqrt(2.5)
    assert five.high - five.mean == pytest.approx(T_975[4] * math.sqrt(2.5) / math.sqrt(5), rel=1e-4)
    one = t_interval([7.0, math.nan, None])                                # non-finite values do not count
    assert (one.mean, one.low, one.high, one.n) == (7.0, None, None, 1) and not one.excludes_zero()


def test_differences_are_paired_by_seed_not_by_position():
    # The seeds differ a lot (seed noise 10..30) but dcgan-r1 is lower by about 1 on every seed: unpaired, the
    # intervals overlap; paired, the difference is clearly below zero. The runs are listed in another seed order.
    results = results_with({"dcgan": {0: {"mnist_fd": 10.0}, 1: {"mnist_fd": 20.0}, 2: {"mnist_fd": 30.0}},
                            "r1": {2: {"mnist_fd": 28.9}, 0: {"mnist_fd": 9.0}, 1: {"mnist_fd": 19.2}}})
    dcgan, r1 = results.contenders["dcgan"], results.contenders["r1"]
    assert r1.summary["mnist_fd"].low < dcgan.summary["mnist_fd"].high           # unpaired: overlapping
    difference = paired_difference(r1, dcgan, "mnist_fd")
    d = [-1.0, -0.8, -1.1]
    sd = math.sqrt(sum((x - sum(d) / 3) ** 2 for x in d) / 2)
    assert difference.n == 3 and difference.mean == pytest.approx(sum(d) / 3)
    assert difference.high - difference.mean == pytest.approx(T_975[2] * sd / math.sqrt(3), rel=1e-4)
    assert difference.high < 0
    header, rows = difference_rows(results, "dcgan")
    assert header == ["model", "Δ mnist_fd ↓"]
    (label, _), (text, mark) = rows[0]
    assert label == "r1" and mark == "better" and text.startswith("−0.9667 [")
    assert "**−0.9667 [" in markdown_differences(results) and "** better" in markdown_differences(results)
    # against r1 as the baseline, dcgan is worse by as much
    assert difference_rows(results, "r1")[1][0][1][1] == "worse"
    assert best_labels(results, "mnist_fd", "lower") == {"r1"}
    with pytest.raises(GanzooError, match="not one of this comparison's models"):
        difference_rows(results, "wgangp")


def test_a_difference_within_the_noise_is_not_marked_and_not_bold():
    results = results_with({"dcgan": {0: {"mnist_fd": 10.0}, 1: {"mnist_fd": 12.0}, 2: {"mnist_fd": 11.0}},
                            "lsgan": {0: {"mnist_fd": 9.0}, 1: {"mnist_fd": 12.8}, 2: {"mnist_fd": 10.5}}})
    (_, (text, mark)), = difference_rows(results)[1]
    assert mark == "" and "[" in text                        # an interval, spanning zero, unmarked
    assert best_labels(results, "mnist_fd", "lower") == set()  # lsgan's mean is lower, but not beyond noise
    assert "**" not in markdown_table(results)
    assert "over 3 seeds (Student t)" in seeds_note(results)


def test_best_must_beat_every_other_model_the_runner_up_included():
    runs = {"a": [5.0, 6.0, 7.0], "b": [5.3, 6.2, 7.4], "c": [9.0, 10.0, 11.0]}       # a beats b and c beyond noise
    results = results_with({label: {s: {"mnist_fd": v} for s, v in enumerate(values)} for label, values in runs.items()})
    assert best_labels(results, "mnist_fd", "lower") == {"a"}
    runs["b"] = [5.3, 5.9, 7.4]                                                        # now a and b overlap
    results = results_with({label: {s: {"mnist_fd": v} for s, v in enumerate(values)} for label, values in runs.items()})
    assert best_labels(results, "mnist_fd", "lower") == set()                          # a still beats c: not enough
    # a beats the runner-up b on every seed, but not c, whose mean is worse and whose seeds swing around a's
    runs = {"a": [5.0, 6.0, 7.0], "b": [5.5, 6.5, 7.5], "c": [2.0, 10.0, 8.5]}
    results = results_with({label: {s: {"mnist_fd": v} for s, v in enumerate(values)} for label, values in runs.items()})
    assert best_labels(results, "mnist_fd", "lower") == set()


def test_one_seed_gives_no_interval_and_the_report_says_so(tmp_path):
    results = results_with({"dcgan": {0: {"mnist_fd": 10.0}}, "r1": {0: {"mnist_fd": 5.0}}})
    header, rows = table_rows(results)
    cells = {row[0][0]: row[3][0] for row in rows}
    assert cells["dcgan"] == "10" and cells["r1"] == "5"                     # no "± 0", no interval
    assert not any(best for row in rows for _, best in row)
    (_, (text, mark)), = difference_rows(results)[1]
    assert text == "−5 (1 seed, no interval)" and mark == ""
    write_report(results, tmp_path, "ganzoo compare dcgan r1")
    report = (tmp_path / "report.md").read_text()
    assert "One seed per model: no interval can be given" in report and "±" not in report
    assert "## Against the baseline, dcgan" in report and "## Every seed" in report


def test_report_names_the_baseline_and_lists_every_seed(tmp_path):
    results = results_with({"dcgan": {0: {"mnist_fd": 10.0}, 1: {"mnist_fd": 20.0}, 2: {"mnist_fd": 30.0}},
                            "r1": {0: {"mnist_fd": 9.0}, 1: {"mnist_fd": 19.2}, 2: {"mnist_fd": 28.9}}})
    results.contenders["r1"].runs[1].status = "D collapsed"
    write_report(results, tmp_path, "ganzoo compare dcgan r1 --baseline r1", baseline="r1")
    report = (tmp_path / "report.md").read_text()
    assert "## Against the baseline, r1" in report and "| dcgan | **+0.9667 [" in report
    assert "| r1 | 1 | D collapsed | 19.2 |" in report                       # every seed, the bad ones too
    width, height = Image.open(tmp_path / "pareto.png").size
    assert width > 300 and height > 200 and "![pareto](pareto.png)" in report


def test_pareto_front_keeps_what_nothing_beats_both_faster_and_better():
    points = [(10, 8.0), (12, 9.0), (20, 5.0), (25, 6.0), (30, 2.0), (30, 1.5)]
    assert pareto_front(points, "lower") == [(10, 8.0), (20, 5.0), (30, 1.5)]
    assert pareto_front([(10, 0.5), (20, 0.4), (30, 0.9)], "higher") == [(10, 0.5), (30, 0.9)]


def test_results_from_an_older_ganzoo_gain_their_intervals():
    old = {"settings": {"data": "mnist", "epochs": 1, "budget": None, "seed": 0, "seeds": 2, "n": None},
           "contenders": {"dcgan": {"model": "dcgan", "source": "trained here", "status": "ok", "parameters": {},
                                    "summary": {"mnist_fd": {"mean": 11.0, "std": 1.4142}},
                                    "runs": [{"seed": 0, "run_dir": "x", "scores": {"mnist_fd": 10.0}},
                                             {"seed": 1, "run_dir": "y", "scores": {"mnist_fd": 12.0}}]}}}
    stat = Results.from_dict(old).contenders["dcgan"].summary["mnist_fd"]
    half = 12.7062 * math.sqrt(2) / math.sqrt(2)                # t 97.5% at 1 degree of freedom
    assert stat.n == 2 and stat.low == pytest.approx(11.0 - half, rel=1e-4) and stat.high == pytest.approx(11.0 + half, rel=1e-4)
