"""The built-in labeller: a linear probe on the discriminator's features (see ganzoo.analysis.labellers)."""

from __future__ import annotations

from ganzoo.api import build_probe_labeller, hookimpl


@hookimpl
def register_labellers(register):
    register("probe", build_probe_labeller,
             "L2-SVM on D's hidden features, fitted on labelled real images of the run's dataset (needs a checkpoint)")
