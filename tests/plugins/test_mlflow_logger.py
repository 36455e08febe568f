"""The example logger package examples/mlflow, installed by README's install command: a tiny run logs to a
local MLflow file store, and MLflow's own client reads back the same numbers metrics.jsonl holds and the
same grid the run folder holds; a resumed run continues the same MLflow run."""

import json

import numpy as np
import pytest
from PIL import Image

from ganzoo.cli import main
from ganzoo.runfiles import RunFiles

from helpers import TINY

mlflow = pytest.importorskip("mlflow", reason="the example package examples/mlflow is installed by README's command")
from mlflow.tracking import MlflowClient  # noqa: E402


def test_a_run_logs_its_metrics_settings_and_grids_to_mlflow(tmp_path, monkeypatch, capsys, one_thread):
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    out = tmp_path / "run"
    assert main(["run", "dcgan", *TINY, "--epochs", "1", "--log-every", "8", "--loggers", "mlflow",
                 "--out", str(out)]) == 0, capsys.readouterr().err

    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("ganzoo")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["ganzoo.run_folder"] == str(out.resolve()) and run.info.status == "FINISHED"
    settings = json.loads((out / "config.json").read_text())
    assert run.data.params["model"] == "dcgan" and run.data.params["batch_size"] == str(settings["batch_size"])

    logged = [r for r in RunFiles(out).records() if "loss_d" in r]
    assert [r["step"] for r in logged] == [8, 16, 24, 32]
    for name in ("loss_d", "loss_g", "d_real", "d_fake", "train_time"):
        history = sorted(client.get_metric_history(run.info.run_id, f"train/{name}"), key=lambda m: m.step)
        assert [m.step for m in history] == [8, 16, 24, 32]
        assert [m.value for m in history] == pytest.approx([r[name] for r in logged], rel=1e-6), name

    (artifact,) = client.list_artifacts(run.info.run_id, "samples")
    assert artifact.path == "samples/epoch_001.png"
    fetched = client.download_artifacts(run.info.run_id, artifact.path, str(tmp_path))
    assert np.array_equal(np.asarray(Image.open(fetched)), np.asarray(Image.open(out / "samples" / "epoch_001.png")))

    # resumed: the same MLflow run goes on, its curves continued
    assert main(["run", "--resume", str(out), "--epochs", "2"]) == 0, capsys.readouterr().err
    (again,) = client.search_runs([experiment.experiment_id])
    assert again.info.run_id == run.info.run_id
    history = client.get_metric_history(run.info.run_id, "train/loss_d")
    assert sorted(m.step for m in history) == [8, 16, 24, 32, 40, 48, 56, 64]
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id, "samples")) == [
        "samples/epoch_001.png", "samples/epoch_002.png"]


def test_an_unknown_logger_is_refused_before_any_data_loads(tmp_path, capsys):
    code = main(["run", "dcgan", *TINY, "--loggers", "mlflw", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "Unknown logger 'mlflw'. Did you mean 'mlflow'?" in err
    assert not (tmp_path / "run").exists()
