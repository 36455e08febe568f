"""The plugin API: everything a plugin may use from ganzoo, and nothing else.

    from ganzoo.api import ModelSpec, hookimpl

Built-in plugins (plugins/, installed as `ganzoo_plugins`) import ganzoo only from here; a test fails
if one reaches past it. Third-party plugins should too: whatever is named here stays put.

- registering: `hookimpl`, `ModelSpec`, `PowersOfTwo`, `build_component`, `GanzooError`;
- losses and regularisers: `StepContext` (what the step shows them besides D's logits: labels, D's main-pass
  `DOutputs` with their named extras);
- datasets: `ImageData`, `EncodedImages`, `prepare_images`, `to_model_range`, `load_dataset`, `cache_dir`;
- metrics: `Samples` and the statistics behind FID, KID and class counts (`frechet_distance`,
  `frechet_distance_of_features`, `gaussian_statistics`, `kernel_distance`, `class_histogram_kl`),
  `file_id` (a weights file's content hash, for cache keys), `file_sha256` (for a protocol);
- the evaluators' features, shared by every metric: `feature_space(name, samples)` gives a registered
  `FeatureSpace` ("mnist_evaluator": the MNIST evaluator's 128-d features; "inception": the FID Inception's
  2048-d pool features, resized as --resize says), then `samples.features(space)` and
  `samples.reference(space)`; the statistics on them: `prdc` (precision, recall, density, coverage),
  `memorisation`, `NEAREST_K`, and `real_images` (a split's uint8 images, as the reference sees them);
- labellers: `LabellerContext`, `build_probe_labeller`;
- loggers: the records a run publishes (`RunInfo`, `WindowRecord`, `ScoreRecord`, `GridRecord`,
  `Milestone`), with the run's `RunConfig` and `RunFiles`;
- trained generators: `load_pretrained` (a shipped generator, by name, verified against its card);
- files and progress: `atomic_write`, `write_json`, `progress` (a transient progress bar).
"""

from .analysis.labellers import LabellerContext, build_probe_labeller
from .config import ModelSpec, RunConfig
from .data import load_dataset
from .errors import GanzooError
from .evaluate import (FeatureSpace, Samples, class_histogram_kl, feature_space, file_id, file_sha256, frechet_distance,
                       frechet_distance_of_features, gaussian_statistics, kernel_distance, real_images)
from .files import atomic_write, cache_dir, write_json
from .hookspecs import hookimpl
from .images import EncodedImages, ImageData, prepare_images, to_model_range
from .models import build_component
from .neighbours import NEAREST_K, memorisation, prdc
from .pretrained import load_pretrained
from .recipe import DOutputs, StepContext
from .registry import PowersOfTwo
from .runfiles import RunFiles
from .sampling import progress
from .training.observers import GridRecord, Milestone, RunInfo, ScoreRecord, WindowRecord

__all__ = ["DOutputs", "EncodedImages", "FeatureSpace", "GanzooError", "GridRecord", "ImageData", "LabellerContext", "Milestone",
           "ModelSpec", "NEAREST_K", "PowersOfTwo", "RunConfig", "RunFiles", "RunInfo", "Samples", "ScoreRecord",
           "StepContext", "WindowRecord", "atomic_write", "build_component", "build_probe_labeller", "cache_dir",
           "class_histogram_kl", "feature_space", "file_id", "file_sha256", "frechet_distance",
           "frechet_distance_of_features", "gaussian_statistics", "hookimpl", "kernel_distance", "load_dataset",
           "load_pretrained", "memorisation", "prdc", "prepare_images", "progress", "real_images", "to_model_range",
           "write_json"]
