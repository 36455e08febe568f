"""The plugin authors' trial, re-done: packages written from the documented API alone (ganzoo.api; a test reads
this file's imports). Each is a module of hooks, installed by tests/plugins/test_trial_packages.py exactly as an
entry point is loaded.

- RaGAN (Jolicoeur-Martineau 2018): the relativistic average loss, from D's main-pass outputs in the context;
- bCR (Zhao et al. 2021): balanced consistency regularisation, D's main-pass outputs reused for x and G(z);
- SAGAN-style (Zhang et al. 2019): hinge loss, spectral norm on D, TTUR (1e-4 / 4e-4, betas (0, 0.9)), EMA;
- RMSprop + cosine: a plugin's schedule beside the built-in optimiser.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ganzoo.api import ModelSpec, hookimpl


# -- RaGAN ----------------------------------------------------------------------------------------------

class RelativisticAverageLoss:
    """RaSGAN: D(x) judged against the mean of D(G(z)) and vice versa; both losses read the main pass's outputs."""

    def d_loss(self, real_logits, fake_logits, context):
        return (F.softplus(-(real_logits - fake_logits.mean())).mean()
                + F.softplus(fake_logits - real_logits.mean()).mean())

    def g_loss(self, fake_logits, context):
        real_logits = context.d_real.logits.float()             # the Dmain pass's, detached: no extra D pass
        return (F.softplus(real_logits - fake_logits.mean()).mean()
                + F.softplus(-(fake_logits - real_logits.mean())).mean())


class ragan:
    @hookimpl
    def register_losses(register):
        register("trial-ragan", RelativisticAverageLoss)

    @hookimpl
    def register_models(register):
        register("trial-ragan", ModelSpec("dcgan", "dcgan", "trial-ragan"))


# -- bCR ------------------------------------------------------------------------------------------------

def flip_and_shift(x):
    """The consistency augmentation: a horizontal flip and a shift of up to 1/8 of the side, per batch."""
    shift = int(torch.randint(-(x.shape[-1] // 8), x.shape[-1] // 8 + 1, ()).item())
    return torch.roll(x.flip(-1), shifts=shift, dims=-1)


class BalancedConsistency:
    """bCR: lambda_real ||D(T(x)) - D(x)||^2 + lambda_fake ||D(T(G(z))) - D(G(z))||^2, with D(x) and D(G(z)) the
    step's main-pass outputs (two D passes, not four)."""

    def __init__(self, real: float = 1.0, fake: float = 1.0):
        self.real, self.fake = real, fake

    def __call__(self, context):
        on_real = context.discriminate(flip_and_shift(context.real)).float()
        on_fake = context.discriminate(flip_and_shift(context.fake)).float()
        return (self.real * (on_real - context.d_real.logits.float()).square().mean()
                + self.fake * (on_fake - context.d_fake.logits.float()).square().mean())


class bcr:
    @hookimpl
    def register_regularizers(register):
        register("trial-bcr", BalancedConsistency, weight=10.0)

    @hookimpl
    def register_models(register):
        register("trial-bcr", ModelSpec("dcgan", "dcgan", "nonsaturating", defaults={"regularizers": "trial-bcr"}))


# -- SAGAN-style ----------------------------------------------------------------------------------------

class HingeLoss:
    """Hinge loss (Lim & Ye 2017, SAGAN): D minimises relu(1 - D(x)) + relu(1 + D(G(z))), G minimises -D(G(z))."""

    def d_loss(self, real_logits, fake_logits):
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, fake_logits):
        return -fake_logits.mean()


class sagan:
    @hookimpl
    def register_losses(register):
        register("trial-hinge", HingeLoss)

    @hookimpl
    def register_models(register):
        register("trial-sagan", ModelSpec("dcgan", "dcgan-critic", "trial-hinge", defaults={
            "spectral_norm": True, "lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9, "ema": 0.999}))


# -- RMSprop + cosine -----------------------------------------------------------------------------------

def half_cosine(*, total_steps, floor: float = 0.1):
    """Cosine from 1 to `floor` over the run, no warm-up."""
    return lambda step: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total_steps)))


class rmsprop_cosine:
    @hookimpl
    def register_schedules(register):
        register("trial-half-cosine", half_cosine, needs_total_steps=True)

    @hookimpl
    def register_models(register):
        register("trial-rmsprop-cosine", ModelSpec("dcgan", "dcgan", "nonsaturating", defaults={
            "optimizer_g": "rmsprop", "optimizer_d": "rmsprop", "lr_schedule": "trial-half-cosine", "lr": 1e-3}))


PACKAGES = {"ragan": ragan, "bcr": bcr, "sagan": sagan, "rmsprop_cosine": rmsprop_cosine}
