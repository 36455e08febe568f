"""The conformance kit: checks a plugin's generators, discriminators, losses and models against ganzoo's contracts.

Plugin authors run it from pytest with one import:

    from ganzoo.testing import check_plugin

    def test_my_plugin_conforms():
        check_plugin("myvariant")      # fails with every broken contract and what to fix

or as one test per check:

    import pytest
    from ganzoo.testing import plugin_checks

    @pytest.mark.parametrize("check", plugin_checks("myvariant"), ids=str)
    def test_conformance(check):
        check.run()

or from the shell: `ganzoo check-plugin myvariant` (a table; exit status 1 on any failure).

What is checked, for everything the plugin registers (small widths, a few images, CPU by default):
- generators: output shape [B, C, S, S] for every supported image size S (the sizes declared with
  ``register(..., image_sizes=...)`` up to 256, or 8, 16, 28, 32, 64, 128 that it supports) and
  C in 1 and 3; outputs in [-1, 1]; finite gradients to every parameter and to z; an optimizer
  step in fp32 and under bf16 autocast; the same weights and outputs under the same seed; a
  safetensors round trip in which the config embedded in the file rebuilds the same network;
- discriminators: the same, with [B] logits and a finite gradient with respect to the images;
- losses: scalar outputs; D's loss lower when D is right than when it is wrong and G's loss lower
  when D is fooled; finite values and gradients at extreme logits and under bf16 autocast;
  the same values under the same seed;
- models: the ModelSpec's generator, discriminator and loss exist and share an image size; real
  `ganzoo run` training steps (ganzoo.train.Trainer) on fake data in fp32 and bf16 autocast;
  identical steps under the same seed; a checkpoint that resumes bit for bit and a generator
  file that `ganzoo sample` can rebuild from its embedded config.

Each check runs on one CPU thread (its tensors are tiny) and restores the global RNG state it found,
so it leaves no trace on a test session.

The package: `kit` (what a check is, the shared helpers), `networks` (the checks of generators and
discriminators, one set for both), `losses`, `models`, and `suite` (collecting, running, the
`ganzoo check-plugin` report).
"""

from .data import dataset_checks, metric_checks
from .kit import CHECKED_KINDS, Check, CheckFailed, Result, sizes_to_check
from .losses import loss_checks
from .models import model_checks
from .networks import discriminator_checks, generator_checks, network_checks
from .pieces import augmentation_checks, labeller_checks, regularizer_checks
from .suite import (check_plugin, check_plugins_command, component_checks, find_plugin, plugin_checks,
                    registered_checks, run_checks)

__all__ = ["CHECKED_KINDS", "Check", "CheckFailed", "Result", "augmentation_checks", "check_plugin",
           "check_plugins_command", "labeller_checks", "regularizer_checks",
           "component_checks", "dataset_checks", "discriminator_checks", "find_plugin", "generator_checks", "loss_checks",
           "metric_checks", "model_checks", "network_checks", "plugin_checks", "registered_checks", "run_checks", "sizes_to_check"]
