"""WGAN (Arjovsky et al. 2017, arXiv:1701.07875): a Wasserstein critic kept K-Lipschitz by clipping its weights
to [-c, c] after every critic update, with the paper's Algorithm 1 settings: RMSprop, lr 5e-5, c = 0.01,
5 critic steps per generator step, batch 64, on DCGAN's networks (the paper's code keeps BatchNorm in the
critic). The clipping is a step hook: it runs after each optimiser step of the D phases.
"""

from __future__ import annotations

import torch

from ganzoo.api import ModelSpec, hookimpl


class WeightClip:
    """After each update of D: every weight of D clamped to [-clip, clip] (Arjovsky et al. 2017, Algorithm 1)."""

    def __init__(self, clip: float = 0.01):
        self.clip = clip

    @torch.no_grad()
    def __call__(self, phase, network):
        if phase.startswith("D"):
            for p in network.parameters():
                p.clamp_(-self.clip, self.clip)


@hookimpl
def register_step_hooks(register):
    register("clip", WeightClip)


@hookimpl
def register_models(register):
    register("wgan", ModelSpec(generator="dcgan", discriminator="dcgan", loss="wasserstein",
                               defaults={"optimizer_g": "rmsprop", "optimizer_d": "rmsprop", "lr": 5e-5,
                                         "beta2": 0.99, "n_critic": 5, "batch_size": 64, "step_hooks": "clip"}),
             "WGAN (Arjovsky et al. 2017): Wasserstein critic with its weights clipped to 0.01 after every update, "
             "RMSprop 5e-5, 5 critic steps per G step; at equal epochs its G takes 937 steps to dcgan's 2,340 (batch "
             "64), and at CPU budgets (5 epochs) it trails dcgan (README, Leaderboard)")
