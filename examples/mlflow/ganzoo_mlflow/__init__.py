"""An MLflow logger for ganzoo: `ganzoo run dcgan --data mnist --loggers mlflow`.

Each ganzoo run is one MLflow run: its settings as parameters, every log window's losses and D outputs
as `train/<name>` metrics and every evaluation's scores as `eval/<name>` (both at the training step),
and the fixed-noise grid of every epoch as an artifact under `samples/`. A resumed run continues the
same MLflow run (found by its run folder, the tag `ganzoo.run_folder`).

Where: the tracking URI MLflow itself reads (`MLFLOW_TRACKING_URI`), else a local file store, `mlruns/`
in the current folder (what mlflow-skinny can write without a database; `mlflow ui` reads it); the
experiment `MLFLOW_EXPERIMENT_NAME`, else "ganzoo".
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ganzoo.api import GanzooError, GridRecord, RunConfig, RunFiles, RunInfo, ScoreRecord, WindowRecord, hookimpl

EXPERIMENT = "ganzoo"
RUN_FOLDER_TAG = "ganzoo.run_folder"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else a file store in ./mlruns (MLflow's own default place)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3 asks a file store's user to opt in: a local file store is what this logger is for
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return uri


class MLflowLogger:
    """A ganzoo run's records, as one MLflow run."""

    def __init__(self, *, config: RunConfig, files: RunFiles):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise GanzooError("--loggers mlflow needs MLflow: pip install mlflow-skinny.") from None
        self.client_class, self.config, self.files = MlflowClient, config, files
        self.client, self.run_id = None, None

    def start(self, run: RunInfo) -> None:
        """Open the run's MLflow run: the one of this run folder (a resumed run), else a new one."""
        self.client = self.client_class(tracking_uri=tracking_uri())
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
        folder = str(self.files.root.resolve())
        found = self.client.search_runs([experiment_id], f"tags.`{RUN_FOLDER_TAG}` = '{folder}'", max_results=1)
        if found:
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        self.run_id = self.client.create_run(experiment_id, run_name=self.files.root.name,
                                             tags={RUN_FOLDER_TAG: folder, "ganzoo.model": self.config.model}).info.run_id
        self._log_settings(self.config)

    def _log_settings(self, config: RunConfig) -> None:
        from mlflow.entities import Param

        params = [Param(key, json.dumps(value) if isinstance(value, dict) else str(value))
                  for key, value in config.to_dict().items()]
        for i in range(0, len(params), 100):                    # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def _metrics(self, group: str, values: dict[str, float], step: int, at: float) -> None:
        from mlflow.entities import Metric

        self.client.log_batch(self.run_id, metrics=[Metric(f"{group}/{key}", float(value), int(at * 1000), step)
                                                    for key, value in values.items()])

    def window(self, record: WindowRecord) -> None:
        self._metrics("train", {**record.stats, "d_won": record.d_won, "images_per_s": record.images_per_s,
                                "train_time": record.train_time}, record.step, record.time)

    def scores(self, record: ScoreRecord) -> None:
        self._metrics("eval", record.scores, record.step, record.time)

    def grid(self, record: GridRecord) -> None:
        from torchvision.utils import save_image

        with tempfile.TemporaryDirectory(prefix="ganzoo-mlflow-") as folder:
            path = Path(folder) / record.path.name                # epoch_001.png, as in the run folder
            save_image(record.images.float(), path, nrow=record.nrow, normalize=True, value_range=(-1, 1))
            self.client.log_artifact(self.run_id, str(path), "samples")

    def finish(self) -> None:
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id)
            self.client = None


@hookimpl
def register_loggers(register):
    register("mlflow", MLflowLogger, "MLflow tracking: settings, losses, scores and sample grids of every run")
