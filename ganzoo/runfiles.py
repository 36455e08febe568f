"""A run folder's files: the one place their names are spelled.

    runs/dcgan-mnist/
      config.json               the whole run config (RunConfig.to_dict)
      metrics.jsonl             one JSON record per log window and per evaluation
      checkpoint.safetensors    G, D, optimisers, RNG states, counters: --resume continues from it
      <model>.safetensors       the generator alone, with its config: `ganzoo sample` needs nothing else
      samples/epoch_NNN.png     the fixed noise's samples after each epoch
      samples/step_NNNNNNN.png  ... and where a --budget ran out mid-epoch
      tensorboard/              TensorBoard event files (--tensorboard)
      <model>.eval.json         `ganzoo eval`'s report: the metrics table, n, seed (WEIGHTS with .eval.json)
      <model>.memorisation.png  `ganzoo eval` with a memorisation metric: the samples nearest training images
      analysis/                 what the analysis commands draw
      .lock                     held by the process training in the folder, removed when it ends
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from .errors import GanzooError


class RunFiles:
    """Where a run keeps its things. `model` names the generator file; left out, config.json says."""

    CONFIG = "config.json"
    CHECKPOINT = "checkpoint.safetensors"
    METRICS = "metrics.jsonl"
    SAMPLES = "samples"
    TENSORBOARD = "tensorboard"
    ANALYSIS = "analysis"
    LOCK = ".lock"
    MARKERS = (CONFIG, CHECKPOINT, METRICS)    # any of these: the folder holds (part of) a run

    def __init__(self, out: str | Path, model: str | None = None):
        self.root = Path(out)
        self.config = self.root / self.CONFIG
        self.checkpoint = self.root / self.CHECKPOINT
        self.metrics = self.root / self.METRICS
        self.samples = self.root / self.SAMPLES
        self.tensorboard = self.root / self.TENSORBOARD
        self.analysis = self.root / self.ANALYSIS
        self.lock = self.root / self.LOCK
        self.model = model if model is not None else self.saved_model()

    @property
    def generator(self) -> Path | None:
        """<model>.safetensors (None when the model is unknown: no config.json)."""
        return self.generator_of(self.model) if self.model else None

    def generator_of(self, model: str) -> Path:
        return self.root / f"{model}.safetensors"

    def epoch_grid(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:03d}.png"

    def step_grid(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def grids(self) -> list[Path]:
        """Every sample grid written: after epochs, and where a budget ran out."""
        return sorted([*self.samples.glob("epoch_*.png"), *self.samples.glob("step_*.png")])

    def holds_run(self) -> bool:
        """Whether the folder already holds (part of) a ganzoo run."""
        return any((self.root / name).exists() for name in self.MARKERS) or any(self.samples.glob("epoch_*.png"))

    def saved_model(self) -> str | None:
        """The model config.json names: a plain name, never a path (the file may be hand-edited)."""
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            model = json.loads(self.config.read_text()).get("model")
            if isinstance(model, str) and model and Path(model).name == model:
                return model
        return None

    def weights(self) -> Path:
        """The finished generator file, else the checkpoint (it holds G too)."""
        if self.generator is not None and self.generator.is_file():
            return self.generator
        if self.checkpoint.is_file():
            return self.checkpoint
        raise GanzooError(f"{self.root} holds no finished run (no <model>.safetensors or {self.CHECKPOINT}).")

    def records(self) -> list[dict]:
        """metrics.jsonl's records (none before the first log)."""
        return read_metrics(self.metrics) if self.metrics.is_file() else []


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl; a line torn by a crash (or not a JSON object) is skipped."""
    records = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def weights_file(path: str | Path, *, prefer_checkpoint: bool = False) -> Path:
    """A weights file as given, or a run folder's: its generator file (else its checkpoint), or with
    prefer_checkpoint its checkpoint, which holds D as well as G; or, for the name of a pretrained generator
    where no such file or folder exists, its verified weights file (see ganzoo.pretrained)."""
    path = Path(path)
    if not path.exists():
        from .pretrained import resolve, unknown_weights_message

        found = resolve(path)
        if found is not None:
            return found
        message = unknown_weights_message(path)
        if message:
            raise GanzooError(message)
    if not path.is_dir():
        return path
    files = RunFiles(path)
    if not prefer_checkpoint:
        return files.weights()
    if not files.checkpoint.is_file():
        raise GanzooError(f"{path} is a folder without {RunFiles.CHECKPOINT}; pass a weights file "
                          f"(<run>/<model>.safetensors or <run>/{RunFiles.CHECKPOINT}).")
    return files.checkpoint
