"""--budget: lifted on resume with epochs numbered alike, a final evaluation whose scoring is not charged,
and --threads honoured by every step."""

import pytest
import json
import re

import torch

import ganzoo.evaluate
from ganzoo.runfiles import read_metrics
from ganzoo.training.step import Step

from helpers import TINY as TINY_FLAGS, run_cli

TINY = [*TINY_FLAGS, "--log-every", "4"]


@pytest.mark.slow
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


@pytest.mark.slow
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
    real_step = Step.__call__
    monkeypatch.setattr(Step, "__call__", lambda self, real, labels=None: (
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
