"""The conformance kit: checks everything a plugin registers (the kinds table says which kinds) against ganzoo's contracts.

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

What is checked, per kind, is docs/plugins.md's table ("Testing with the conformance kit"): shapes,
range, gradients, training steps in fp32 and bf16 autocast, determinism, round trips, and that networks
respond to their input beyond a floor (generators, discriminators); losses pointing the right way at
constant and random logits (losses); datasets loaded through load_dataset and validated (dtype, shape,
labels, an unknown split refused); metrics that score real images better than noise; regularisers whose
penalty trains D; augmentations that keep shape and gradient; labellers' contract.

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
