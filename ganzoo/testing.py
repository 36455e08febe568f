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
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelSpec, RunConfig
from .errors import GanzooError
from .plugins import PluginInfo, Registries, registries
from .registry import Entry, describe_sizes

CHECKED_KINDS = ("generator", "discriminator", "loss", "model")
PROBE_SIZES = (8, 16, 28, 32, 64, 128)   # tested for networks that accept open-ended sizes
MAX_TESTED_SIZE = 256
CHANNELS = (1, 3)
Z_DIM, WIDTH, BATCH, SEED = 16, 8, 4, 1234


class CheckFailed(AssertionError):
    """A contract a plugin breaks; the message says what to fix."""


@dataclass(frozen=True)
class Check:
    """One conformance check of one registered thing; `run()` raises CheckFailed when it fails."""

    kind: str                    # generator | discriminator | loss | model
    name: str                    # its registered name
    what: str                    # what is checked, e.g. "shapes and range"
    plugin: str                  # who registered it
    fn: Callable[[], None] = field(repr=False, compare=False)
    device: str = "cpu"

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}:{self.what.replace(' ', '-')}"

    def __str__(self) -> str:
        return self.id

    def run(self) -> None:
        device = torch.device(self.device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), _one_thread():
            try:
                self.fn()
            except CheckFailed:
                raise
            except GanzooError as exc:   # ganzoo's own one-line errors already say how to fix
                raise CheckFailed(f"{self.kind} {self.name!r}: {exc}") from exc
            except Exception as exc:
                raise CheckFailed(f"{self.kind} {self.name!r} ({self.what}) raised {_one_line(exc)} (its traceback "
                                  f"shows where).") from exc


@dataclass
class Result:
    check: Check
    seconds: float
    error: str | None = None     # None: passed
    details: str | None = None   # the traceback of an unexpected exception

    @property
    def passed(self) -> bool:
        return self.error is None


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """The checks' tensors are tiny: on a busy machine extra CPU threads only wait on each other (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _fail(message: str) -> None:
    raise CheckFailed(message)


@contextlib.contextmanager
def _blame(where: str, fix: str) -> Iterator[None]:
    """Turn an exception from plugin code into a CheckFailed that says where it happened and what to do."""
    try:
        yield
    except (CheckFailed, GanzooError):
        raise
    except Exception as exc:
        raise CheckFailed(f"{where} raised {_one_line(exc)}. {fix}") from exc


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise on the CPU; a hair of tolerance on CUDA, whose kernels may reorder sums."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.device.type == "cpu":
        return torch.equal(a, b)
    return torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item() if a.shape == b.shape else float("nan")


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()


# -- sizes ----------------------------------------------------------------------------------------

def sizes_to_check(entry: Entry) -> list[int]:
    """The image sizes the kit builds a network at: its declared sizes, or the probe sizes it supports."""
    declared = entry.image_sizes
    if isinstance(declared, (tuple, list, set, frozenset, range)):
        explicit = sorted(s for s in range(1, MAX_TESTED_SIZE + 1) if s in declared)
        if len(explicit) <= len(PROBE_SIZES):
            return explicit
        return sorted({s for s in PROBE_SIZES if s in declared} | {explicit[0], explicit[-1]})
    return [s for s in PROBE_SIZES if entry.supports_image_size(s)]


def _reference_size(sizes: list[int], what: str, entry_sizes: Any) -> int:
    """32 (MNIST's training size) where supported, else the smallest size >= 16, else the smallest."""
    if not sizes:
        _fail(f"{what} declares image_sizes {describe_sizes(entry_sizes)}, none of them at most "
              f"{MAX_TESTED_SIZE}: the kit has no size to test; declare the sizes it supports.")
    if 32 in sizes:
        return 32
    return next((s for s in sizes if s >= 16), sizes[0])


# -- building -------------------------------------------------------------------------------------

def _as_module(obj: Any, what: str) -> nn.Module:
    if not isinstance(obj, nn.Module):
        _fail(f"{what}: the factory returned {type(obj).__name__}; it must return a torch.nn.Module.")
    return obj


SIZE_HINT = "If this size is not supported, declare the supported ones with register(..., image_sizes=...)."


def _build(entry: Entry, kind: str, size: int, channels: int, device: torch.device, **kwargs) -> nn.Module:
    what = f"{kind} {entry.name!r} at {size}x{size}, {channels} channel(s)"
    signature = ", ".join(["*", "image_size", "channels", *kwargs])
    try:
        with _blame(f"Building the {what}", f"The factory is called as factory({signature}). {SIZE_HINT}"):
            net = entry.factory(image_size=size, channels=channels, **kwargs)
    except GanzooError as exc:   # a clear refusal, but of a size its registration claims
        raise CheckFailed(f"Building the {what} failed: {exc} {SIZE_HINT}") from exc
    return _as_module(net, f"{kind} {entry.name!r}").to(device)


def _build_generator(entry: Entry, size: int, channels: int, device: torch.device) -> nn.Module:
    return _build(entry, "generator", size, channels, device, z_dim=Z_DIM, width=WIDTH)


def _build_discriminator(entry: Entry, size: int, channels: int, device: torch.device) -> nn.Module:
    return _build(entry, "discriminator", size, channels, device, width=WIDTH)


def _generate(G: nn.Module, z: torch.Tensor, what: str) -> torch.Tensor:
    with _blame(f"{what}: forward(z) with z of shape {tuple(z.shape)}",
                "forward(z) takes a [B, z_dim] latent batch."):
        return G(z)


def _discriminate(D: nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    with _blame(f"{what}: forward(x) with x of shape {tuple(x.shape)}",
                "forward(x) takes [B, channels, image_size, image_size] images in [-1, 1]."):
        return D(x)


def _images(n: int, channels: int, size: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, channels, size, size, generator=g) * 2 - 1).to(device)


def _latent(n: int, device: torch.device, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(n, Z_DIM, generator=torch.Generator().manual_seed(seed)) * scale).to(device)


def _check_gradients(module: nn.Module, what: str) -> None:
    params = dict(module.named_parameters())
    if not params:
        _fail(f"{what} has no trainable parameters; register its weights as nn.Parameter (in submodules).")
    missing = [n for n, p in params.items() if p.requires_grad and p.grad is None]
    if missing:
        _fail(f"{what}: parameter(s) {missing[:3]} receive no gradient; use them in forward() or remove them "
              f"(or set requires_grad=False).")
    bad = [n for n, p in params.items() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        _fail(f"{what}: the gradient of {bad[:3]} is NaN/Inf; look for a division by zero, log/sqrt of zero or "
              f"an overflowing exp in forward().")
    if all(p.grad is None or not p.grad.any() for p in params.values()):
        _fail(f"{what}: every gradient is zero; the output does not depend on the weights (a detach() or "
              f"no_grad in forward()?).")


def _optimizer_step(module: nn.Module, loss_fn: Callable[[], torch.Tensor], what: str, amp: bool,
                    device: torch.device) -> None:
    """One Adam step as the trainer takes it; the loss must be finite and the weights must move and stay finite."""
    module.train()
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    if not before:
        _fail(f"{what} has no trainable parameters; register its weights as nn.Parameter (in submodules).")
    opt = torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999))
    precision = "bf16 autocast" if amp else "fp32"
    with _blame(f"{what}: a training step in {precision}",
                "Every op in forward() must accept the dtype autocast gives it; cast to float where an op "
                "needs float32." if amp else "Check forward() and its shapes."):
        with _autocast(device, amp):
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if not torch.isfinite(loss):
        _fail(f"{what}: the training loss is {loss.item()} in {precision}; keep numerically sensitive ops "
              f"(exp, log, normalisation) in float32.")
    moved = [n for n, p in module.named_parameters() if not torch.equal(before[n], p.detach())]
    if not moved:
        _fail(f"{what}: an optimizer step in {precision} changed no weight; the output must depend on the "
              f"parameters through differentiable ops.")
    bad = [n for n, p in module.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        _fail(f"{what}: after a training step in {precision}, {bad[:3]} hold NaN/Inf.")



def _check_deterministic(build: Callable[[], nn.Module], forward: Callable[[nn.Module], torch.Tensor], what: str,
                         inputs_give: str) -> None:
    """Two builds under the same seed have the same weights and give the same outputs."""
    outs, nets = [], []
    for _ in range(2):
        torch.manual_seed(SEED)
        net = build()
        with torch.no_grad():
            outs.append(forward(net))
        nets.append(net)
    fix = "Draw every random number from torch's global RNG (no numpy/random, no time-based seeds)."
    _compare_states(nets[0], nets[1], what, fix)
    if not _same(outs[0], outs[1]):
        _fail(f"{what}: the same seed and {inputs_give} differing by up to {_max_diff(*outs):.2e}. {fix}")

def _compare_states(a: nn.Module, b: nn.Module, what: str, fix: str) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    if list(sa) != list(sb):
        _fail(f"{what}: the two builds have different state_dict keys. {fix}")
    differ = [k for k in sa if isinstance(sa[k], torch.Tensor) and not _same(sa[k], sb[k])]
    if differ:
        _fail(f"{what}: {differ[:3]} differ between two builds under the same seed. {fix}")


# -- generators -----------------------------------------------------------------------------------

def generator_checks(entry: Entry, device: torch.device) -> list[tuple[str, Callable[[], None]]]:
    sizes = sizes_to_check(entry)

    def shapes_and_range():
        if not sizes:
            _reference_size(sizes, f"generator {entry.name!r}", entry.image_sizes)
        for size in sizes:
            for channels in CHANNELS:
                G = _build_generator(entry, size, channels, device)
                what = f"generator {entry.name!r} at {size}x{size}, {channels} channel(s)"
                z = _latent(BATCH, device, scale=3.0)       # wide z: saturating outputs must still stay in range
                for mode in ("train", "eval"):
                    G.train(mode == "train")
                    with torch.no_grad():
                        x = _generate(G, z, what)
                    expected = (BATCH, channels, size, size)
                    if not isinstance(x, torch.Tensor) or tuple(x.shape) != expected:
                        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                        _fail(f"{what}: forward(z) returned {got} in {mode} mode, expected {expected} "
                              f"([B, channels, image_size, image_size]). If this size is not supported, declare "
                              f"the supported ones with register(..., image_sizes=...).")
                    if not x.is_floating_point() or not torch.isfinite(x).all():
                        _fail(f"{what}: the output ({x.dtype}) holds NaN/Inf or is not floating point.")
                    if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6:
                        _fail(f"{what}: outputs span [{x.min().item():.3f}, {x.max().item():.3f}] in {mode} mode; "
                              f"images must lie in [-1, 1] (end forward() with tanh).")

    def gradients():
        size = _reference_size(sizes, f"generator {entry.name!r}", entry.image_sizes)
        G = _build_generator(entry, size, 3, device).train()
        what = f"generator {entry.name!r} at {size}x{size}"
        z = _latent(BATCH, device).requires_grad_(True)
        x = _generate(G, z, what)
        with _blame(f"{what}: backward()", "forward() must be differentiable."):
            (x.float() * _images(BATCH, 3, size, device, seed=1)).sum().backward()
        _check_gradients(G, what)
        if z.grad is None or not torch.isfinite(z.grad).all():
            _fail(f"{what}: no finite gradient reaches z; forward() must be differentiable in its input.")

    def step(amp: bool):
        def run():
            size = _reference_size(sizes, f"generator {entry.name!r}", entry.image_sizes)
            G = _build_generator(entry, size, 3, device)
            what = f"generator {entry.name!r} at {size}x{size}"
            z, target = _latent(2 * BATCH, device), _images(2 * BATCH, 3, size, device, seed=2)

            def loss():
                x = _generate(G, z, what)
                if not torch.isfinite(x).all() or x.float().abs().max() > 1 + 1e-2:
                    _fail(f"{what}: under {'bf16 autocast' if amp else 'fp32'} the output leaves [-1, 1] or "
                          f"holds NaN/Inf.")
                return F.mse_loss(x.float(), target)
            _optimizer_step(G, loss, what, amp, device)
        return run

    def deterministic():
        size = _reference_size(sizes, f"generator {entry.name!r}", entry.image_sizes)
        what = f"generator {entry.name!r} at {size}x{size}"
        z = _latent(BATCH, device)
        _check_deterministic(lambda: _build_generator(entry, size, 3, device).train(),
                             lambda G: _generate(G, z, what), what, "z give outputs")

    def round_trip():
        from .checkpoint import load_generator, save_generator

        size = _reference_size(sizes, f"generator {entry.name!r}", entry.image_sizes)
        what = f"generator {entry.name!r} at {size}x{size}"
        G = _build_generator(entry, size, 3, device).train()
        with torch.no_grad():
            _generate(G, _latent(2 * BATCH, device, seed=3), what)     # moves running statistics off their init
        config = RunConfig(model=f"check-{entry.name}", generator=entry.name, image_size=size, channels=3,
                           z_dim=Z_DIM, g_width=WIDTH, device=str(device))
        z = _latent(BATCH, device, seed=4)
        with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as tmp:
            path = Path(tmp) / "generator.safetensors"
            with _blame(f"{what}: saving the state_dict to safetensors",
                        "Keep all state in parameters and buffers (tensors); safetensors holds nothing else."):
                save_generator(path, G, config)
            with _blame(f"{what}: rebuilding from the weights file's embedded config",
                        "The factory must build the same network from (image_size, channels, z_dim, width) alone."):
                G2, _ = load_generator(path, device)
        with torch.no_grad():
            a, b = _generate(G.eval(), z, what), _generate(G2, z, what)
        if not _same(a, b):
            _fail(f"{what}: after a safetensors round trip (config embedded in the file -> rebuilt network -> "
                  f"weights loaded) the outputs differ by up to {_max_diff(a, b):.2e}; keep all state that "
                  f"forward() reads in registered parameters and buffers.")

    return [("shapes and range", shapes_and_range), ("gradients", gradients),
            ("training step fp32", step(False)), ("training step bf16 autocast", step(True)),
            ("deterministic under a seed", deterministic), ("safetensors round trip", round_trip)]


# -- discriminators -------------------------------------------------------------------------------

def discriminator_checks(entry: Entry, device: torch.device) -> list[tuple[str, Callable[[], None]]]:
    sizes = sizes_to_check(entry)

    def check_logits(logits: Any, what: str, mode: str) -> None:
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (BATCH,):
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            _fail(f"{what}: forward(x) returned {got} in {mode} mode, expected ({BATCH},): one raw logit per "
                  f"image (flatten the last layer's output; no sigmoid). If this size is not supported, declare "
                  f"the supported ones with register(..., image_sizes=...).")
        if not logits.is_floating_point() or not torch.isfinite(logits).all():
            _fail(f"{what}: the logits ({logits.dtype}) hold NaN/Inf or are not floating point.")

    def shapes():
        if not sizes:
            _reference_size(sizes, f"discriminator {entry.name!r}", entry.image_sizes)
        for size in sizes:
            for channels in CHANNELS:
                D = _build_discriminator(entry, size, channels, device)
                what = f"discriminator {entry.name!r} at {size}x{size}, {channels} channel(s)"
                x = _images(BATCH, channels, size, device)
                for mode in ("train", "eval"):
                    D.train(mode == "train")
                    with torch.no_grad():
                        check_logits(_discriminate(D, x, what), what, mode)

    def gradients():
        size = _reference_size(sizes, f"discriminator {entry.name!r}", entry.image_sizes)
        D = _build_discriminator(entry, size, 3, device).train()
        what = f"discriminator {entry.name!r} at {size}x{size}"
        x = _images(BATCH, 3, size, device).requires_grad_(True)
        logits = _discriminate(D, x, what)
        check_logits(logits, what, "train")
        with _blame(f"{what}: backward()", "forward() must be differentiable."):
            logits.float().sum().backward()
        _check_gradients(D, what)
        if x.grad is None or not torch.isfinite(x.grad).all() or not x.grad.any():
            _fail(f"{what}: no finite, non-zero gradient reaches the images; the generator learns only through "
                  f"it, so forward() must be differentiable in x.")

    def step(amp: bool):
        def run():
            size = _reference_size(sizes, f"discriminator {entry.name!r}", entry.image_sizes)
            D = _build_discriminator(entry, size, 3, device)
            what = f"discriminator {entry.name!r} at {size}x{size}"
            real, fake = _images(2 * BATCH, 3, size, device, 5), _images(2 * BATCH, 3, size, device, 6)

            def loss():
                r, f = _discriminate(D, real, what), _discriminate(D, fake, what)
                return F.softplus(-r.float()).mean() + F.softplus(f.float()).mean()
            _optimizer_step(D, loss, what, amp, device)
        return run

    def deterministic():
        size = _reference_size(sizes, f"discriminator {entry.name!r}", entry.image_sizes)
        what = f"discriminator {entry.name!r} at {size}x{size}"
        x = _images(BATCH, 3, size, device)
        _check_deterministic(lambda: _build_discriminator(entry, size, 3, device).train(),
                             lambda D: _discriminate(D, x, what), what, "images give logits")

    def round_trip():
        from .checkpoint import config_of, load_state, read_tensors, save_tensors
        from .models import build_discriminator

        size = _reference_size(sizes, f"discriminator {entry.name!r}", entry.image_sizes)
        what = f"discriminator {entry.name!r} at {size}x{size}"
        D = _build_discriminator(entry, size, 3, device).train()
        with torch.no_grad():
            _discriminate(D, _images(2 * BATCH, 3, size, device, 7), what)   # moves running state off its init
        config = RunConfig(model=f"check-{entry.name}", discriminator=entry.name, image_size=size, channels=3,
                           d_width=WIDTH, device=str(device))
        x = _images(BATCH, 3, size, device, 8)
        with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as tmp:
            path = Path(tmp) / "discriminator.safetensors"
            with _blame(f"{what}: saving the state_dict to safetensors",
                        "Keep all state in parameters and buffers (tensors); safetensors holds nothing else."):
                save_tensors(path, {f"D.{k}": v for k, v in D.state_dict().items()}, "discriminator", config)
            tensors, metadata = read_tensors(path)
            with _blame(f"{what}: rebuilding from the weights file's embedded config",
                        "The factory must build the same network from (image_size, channels, width) alone."):
                D2 = build_discriminator(config_of(metadata))
                load_state(D2, tensors, "D.", "discriminator")
        D2 = D2.to(device).eval()
        with torch.no_grad():
            a, b = _discriminate(D.eval(), x, what), _discriminate(D2, x, what)
        if not _same(a, b):
            _fail(f"{what}: after a safetensors round trip (config embedded in the file -> rebuilt network -> "
                  f"weights loaded) the logits differ by up to {_max_diff(a, b):.2e}; keep all state that "
                  f"forward() reads in registered parameters and buffers.")

    return [("shapes", shapes), ("gradients", gradients),
            ("training step fp32", step(False)), ("training step bf16 autocast", step(True)),
            ("deterministic under a seed", deterministic), ("safetensors round trip", round_trip)]


# -- losses ---------------------------------------------------------------------------------------

def loss_checks(entry: Entry, device: torch.device) -> list[tuple[str, Callable[[], None]]]:
    what = f"loss {entry.name!r}"

    def make():
        with _blame(f"Building the {what}", "The factory is called with no arguments: factory()."):
            loss = entry.factory()
        for method in ("d_loss", "g_loss"):
            if not callable(getattr(loss, method, None)):
                _fail(f"{what}: the factory returned {type(loss).__name__}, which has no {method}() method; a loss "
                      f"has d_loss(real_logits, fake_logits) and g_loss(fake_logits).")
        return loss

    def d_loss(loss, real, fake):
        with _blame(f"{what}: d_loss(real_logits, fake_logits) on logits of shape {tuple(real.shape)}",
                    "d_loss takes two [B] float logit tensors."):
            return loss.d_loss(real, fake)

    def g_loss(loss, fake):
        with _blame(f"{what}: g_loss(fake_logits) on logits of shape {tuple(fake.shape)}",
                    "g_loss takes one [B] float logit tensor."):
            return loss.g_loss(fake)

    def logits(seed: int, value: float | None = None, n: int = 64) -> torch.Tensor:
        if value is not None:
            return torch.full((n,), float(value), device=device)
        return torch.randn(n, generator=torch.Generator().manual_seed(seed)).to(device)

    def scalar(value: Any, method: str, context: str) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or value.ndim != 0 or not value.is_floating_point():
            got = (f"shape {tuple(value.shape)} ({value.dtype})" if isinstance(value, torch.Tensor)
                   else type(value).__name__)
            _fail(f"{what}: {method} returned {got}; it must return a scalar float tensor (reduce with .mean()).")
        if not torch.isfinite(value):
            _fail(f"{what}: {method} is {value.item()} {context}; compute it from logits with stable forms "
                  f"(softplus(-l) for -log sigmoid(l), never log(sigmoid(l))).")
        return value

    def interface():
        loss = make()
        scalar(d_loss(loss, logits(1), logits(2)), "d_loss", "on N(0, 1) logits")
        scalar(g_loss(loss, logits(3)), "g_loss", "on N(0, 1) logits")

    def direction():
        loss = make()
        right = scalar(d_loss(loss, logits(0, 1.0), logits(0, -1.0)), "d_loss", "at logits of +-1")
        wrong = scalar(d_loss(loss, logits(0, -1.0), logits(0, 1.0)), "d_loss", "at logits of +-1")
        if not right < wrong:
            _fail(f"{what}: d_loss is {right.item():.4f} when D is right (real logits +1, fake -1) and "
                  f"{wrong.item():.4f} when it is wrong (real -1, fake +1); D must minimise it, so the first must "
                  f"be lower. Are real and fake swapped, or is the sign flipped?")
        fooled = scalar(g_loss(loss, logits(0, 1.0)), "g_loss", "at logits of +1")
        caught = scalar(g_loss(loss, logits(0, -1.0)), "g_loss", "at logits of -1")
        if not fooled < caught:
            _fail(f"{what}: g_loss is {fooled.item():.4f} when D is fooled (fake logits +1) and {caught.item():.4f} "
                  f"when it is not (-1); G must minimise it, so the first must be lower. Is the sign flipped?")

    def extremes():
        loss = make()
        for v in (10.0, 1000.0):
            for sign in (1, -1):
                real = logits(0, sign * v).requires_grad_(True)
                fake = logits(0, -sign * v).requires_grad_(True)
                d = scalar(d_loss(loss, real, fake), "d_loss", f"at logits of +-{v:g}")
                g = scalar(g_loss(loss, fake), "g_loss", f"at logits of +-{v:g}")
                with _blame(f"{what}: backward() at logits of +-{v:g}", "d_loss and g_loss must be differentiable."):
                    (d + g).backward()
                if not (torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()):
                    _fail(f"{what}: the gradient is NaN/Inf at logits of +-{v:g}; use stable forms on logits "
                          f"(softplus, logsigmoid) instead of log(sigmoid(l)).")

    def gradients():
        loss = make()
        real, fake = logits(1).requires_grad_(True), logits(2).requires_grad_(True)
        with _blame(f"{what}: d_loss backward()", "d_loss must be differentiable in both logits."):
            d_loss(loss, real, fake).backward()
        for name, t in (("real", real), ("fake", fake)):
            if t.grad is None or not torch.isfinite(t.grad).all() or not t.grad.any():
                _fail(f"{what}: d_loss gives no finite, non-zero gradient to the {name} logits at N(0, 1) logits; "
                      f"D could not learn from it.")
        fake = logits(3).requires_grad_(True)
        with _blame(f"{what}: g_loss backward()", "g_loss must be differentiable in the fake logits."):
            g_loss(loss, fake).backward()
        if fake.grad is None or not torch.isfinite(fake.grad).all() or not fake.grad.any():
            _fail(f"{what}: g_loss gives no finite, non-zero gradient at N(0, 1) logits; G could not learn from it.")

    def amp():
        loss = make()
        real, fake = logits(1), logits(2)
        d32, g32 = d_loss(loss, real, fake), g_loss(loss, fake)
        with _autocast(device, True):          # the trainer calls the loss inside its autocast region
            d16, g16 = d_loss(loss, real, fake), g_loss(loss, fake)
        for method, a, b in (("d_loss", d32, d16), ("g_loss", g32, g16)):
            scalar(b, method, "under bf16 autocast")
            if not torch.isclose(a.float(), b.float(), rtol=2e-2, atol=2e-2):
                _fail(f"{what}: {method} is {a.item():.4f} in fp32 but {b.item():.4f} under bf16 autocast; compute "
                      f"it in float32 (cast the logits with .float()).")

    def deterministic():
        loss = make()
        values = []
        for _ in range(2):
            torch.manual_seed(SEED)
            values.append(torch.stack([d_loss(loss, logits(1), logits(2)), g_loss(loss, logits(3))]))
        if not _same(values[0].detach(), values[1].detach()):
            _fail(f"{what}: the same seed and logits give different values ({values[0].tolist()} vs "
                  f"{values[1].tolist()}); draw any randomness from torch's global RNG.")

    return [("interface", interface), ("direction", direction), ("extreme logits", extremes),
            ("gradients", gradients), ("bf16 autocast", amp), ("deterministic under a seed", deterministic)]


# -- models ---------------------------------------------------------------------------------------

def model_checks(entry: Entry, device: torch.device, regs: Registries) -> list[tuple[str, Callable[[], None]]]:
    what = f"model {entry.name!r}"

    def spec_and_size() -> tuple[ModelSpec, int]:
        spec = entry.factory
        if not isinstance(spec, ModelSpec):
            _fail(f"{what}: registered a {type(spec).__name__}; register a ganzoo.ModelSpec(generator=..., "
                  f"discriminator=..., loss=...).")
        found = {}
        for kind, registry, name in (("generator", regs.generators, spec.generator),
                                     ("discriminator", regs.discriminators, spec.discriminator),
                                     ("loss", regs.losses, spec.loss)):
            if name not in registry:
                _fail(f"{what}: its ModelSpec names the {kind} {name!r}, which no installed plugin registers "
                      f"({registry.unknown_message(name)}); register it in the same plugin or depend on the "
                      f"package that does.")
            found[kind] = registry.get(name)
        common = [s for s in sizes_to_check(found["generator"]) if found["discriminator"].supports_image_size(s)]
        if not common:
            _fail(f"{what}: its generator supports {describe_sizes(found['generator'].image_sizes)} and its "
                  f"discriminator {describe_sizes(found['discriminator'].image_sizes)}: no image size both "
                  f"support.")
        return spec, _reference_size(common, what, None)

    def config(precision: str, out: str = "") -> RunConfig:
        from .run import make_config

        _, size = spec_and_size()
        config = make_config(entry.name, dict(data="fake", image_size=size, channels=3, z_dim=Z_DIM, g_width=WIDTH,
                                              d_width=WIDTH, batch_size=2 * BATCH, epochs=1, samples=BATCH,
                                              seed=0, device=str(device), precision=precision), regs)
        config.out = out
        return config

    def trainer(cfg: RunConfig):
        from .data import ImageData
        from .train import Trainer

        images = torch.randint(0, 256, (4 * BATCH, cfg.channels, cfg.image_size, cfg.image_size),
                               dtype=torch.uint8, generator=torch.Generator().manual_seed(9))
        with _blame(f"{what}: building its trainer", "Check the ModelSpec's components and defaults."):
            return Trainer(cfg, ImageData(images, name="check"))

    def batches(t) -> list[torch.Tensor]:
        return list(t.batches.epoch(torch.Generator(device=t.device).manual_seed(0)))

    def train_steps(t, reals: list[torch.Tensor], precision: str) -> list[torch.Tensor]:
        stats = []
        for real in reals:
            with _blame(f"{what}: a `ganzoo run` training step ({precision})",
                        "Every component must accept the dtype autocast gives it." if precision == "bf16"
                        else "Check the components' shapes."):
                stats.append(t.train_step(real))
        return stats

    def components():
        with _blame(f"{what}: its ModelSpec defaults", "Use RunConfig field names in defaults."):
            config("fp32")

    def step(precision: str):
        def run():
            t = trainer(config(precision))
            g_before = [p.detach().clone() for p in t.G.parameters()]
            d_before = [p.detach().clone() for p in t.D.parameters()]
            for stats in train_steps(t, batches(t), precision):
                if not torch.isfinite(stats).all():
                    _fail(f"{what}: a training step in {precision} gave losses {stats[:2].tolist()}; keep "
                          f"numerically sensitive ops in float32.")
            for net, before in (("generator", g_before), ("discriminator", d_before)):
                params = list((t.G if net == "generator" else t.D).parameters())
                if all(torch.equal(b, p.detach()) for b, p in zip(before, params)):
                    _fail(f"{what}: two training steps in {precision} left the {net}'s weights unchanged; its loss "
                          f"must depend on its parameters.")
                if not all(torch.isfinite(p).all() for p in params):
                    _fail(f"{what}: the {net}'s weights hold NaN/Inf after two training steps in {precision}.")
        return run

    def deterministic():
        runs = []
        for _ in range(2):
            t = trainer(config("fp32"))
            runs.append((torch.stack(train_steps(t, batches(t), "fp32")), t.G.state_dict()))
        (s1, g1), (s2, g2) = runs
        if not _same(s1, s2) or not all(_same(g1[k], g2[k]) for k in g1):
            _fail(f"{what}: two runs with the same seed differ after two steps (losses {s1[:, :2].tolist()} vs "
                  f"{s2[:, :2].tolist()}); draw every random number from torch's global RNG.")

    def round_trip():
        from .checkpoint import load_generator

        with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as tmp:
            cfg = config("fp32", out=str(Path(tmp) / "run"))
            t1 = trainer(cfg)
            reals = batches(t1)
            train_steps(t1, reals[:1], "fp32")
            with _blame(f"{what}: saving a checkpoint", "Keep all state in parameters and buffers."):
                t1.save_checkpoint()
            after = train_steps(t1, reals[1:2], "fp32")[0]
            t2 = trainer(cfg)
            with _blame(f"{what}: rebuilding the generator from {t1.files.generator.name} (as `ganzoo sample` "
                        f"does)", "The factory must build the same network from the run config alone."):
                G, _ = load_generator(t1.files.generator, t2.device)
            with _blame(f"{what}: resuming from its checkpoint", "Keep all state in parameters and buffers."):
                t2.load_checkpoint(t1.files.checkpoint)       # restores the RNG too: nothing may draw after it
            z = _latent(BATCH, t2.device, seed=10)
            with torch.no_grad():
                a, b = t2.generate(z), G(z).float()
            if not _same(a, b):
                _fail(f"{what}: the generator file rebuilt from its embedded config gives samples differing by "
                      f"up to {_max_diff(a, b):.2e} from the checkpoint's generator.")
            resumed = train_steps(t2, reals[1:2], "fp32")[0]
            if not _same(after, resumed) or not all(_same(p, q) for p, q in zip(t1.G.parameters(),
                                                                                t2.G.parameters())):
                _fail(f"{what}: a run resumed from its checkpoint took a different step (losses "
                      f"{resumed[:2].tolist()} vs {after[:2].tolist()}); every piece of state the networks and "
                      f"loss use must live in parameters and buffers.")

    try:
        spec_and_size()
    except CheckFailed:          # nothing can train: report the broken spec once, not five times
        return [("components", components)]
    return [("components", components), ("training step fp32", step("fp32")),
            ("training step bf16 autocast", step("bf16")), ("deterministic under a seed", deterministic),
            ("checkpoint round trip", round_trip)]


# -- collecting and running -------------------------------------------------------------------------

def component_checks(kind: str, name: str, *, device: str = "cpu", regs: Registries | None = None) -> list[Check]:
    """Every check of one registered generator, discriminator, loss or model."""
    if kind not in CHECKED_KINDS:
        raise GanzooError(f"The kit checks {', '.join(CHECKED_KINDS)}; not {kind!r}.")
    regs = regs or registries()
    entry = regs.by_kind(kind).get(name)
    dev = torch.device(device)
    if kind == "generator":
        found = generator_checks(entry, dev)
    elif kind == "discriminator":
        found = discriminator_checks(entry, dev)
    elif kind == "loss":
        found = loss_checks(entry, dev)
    else:
        found = model_checks(entry, dev, regs)
    return [Check(kind, name, what, entry.plugin, fn, str(dev)) for what, fn in found]


def find_plugin(name: str, regs: Registries | None = None) -> PluginInfo:
    """A plugin by the name `ganzoo plugins` shows, its distribution's name, or a built-in's short name."""
    regs = regs or registries()
    normal = name.replace("-", "_").lower()
    for match in (lambda p: p.name == name, lambda p: p.source.replace("-", "_").lower() == normal,
                  lambda p: p.name.replace("-", "_").lower() == normal,
                  lambda p: p.source == "built-in" and p.name.rsplit(".", 1)[-1] == normal):
        found = [p for p in regs.plugins if match(p)]
        if len(found) == 1:
            return found[0]
    known = ", ".join(p.name for p in regs.plugins)
    raise GanzooError(f"No plugin named {name!r} is installed (known: {known}); install it "
                      f"(pip install -e PATH) and check `ganzoo plugins`.")


def plugin_checks(plugin: str, *, device: str = "cpu") -> list[Check]:
    """Every check of everything a plugin registers; raises CheckFailed if the plugin failed to load."""
    regs = registries()
    info = find_plugin(plugin, regs)
    if info.error:
        tb = getattr(info, "traceback", None)
        raise CheckFailed(f"Plugin {info.name!r} failed to load, so nothing it registers can be checked: "
                          f"{info.error}" + (f"\n{tb}" if tb else ""))
    return [check for kind in CHECKED_KINDS for name in info.registered.get(kind, [])
            for check in component_checks(kind, name, device=device, regs=regs)]


def registered_checks(*, device: str = "cpu") -> list[Check]:
    """Every check of everything registered: what ganzoo's own test suite runs, parametrized."""
    regs = registries()
    return [check for kind in CHECKED_KINDS for name in regs.by_kind(kind).names()
            for check in component_checks(kind, name, device=device, regs=regs)]


def run_checks(checks: list[Check], on_result: Callable[[Result], None] | None = None) -> list[Result]:
    results = []
    for check in checks:
        start = time.perf_counter()
        try:
            check.run()
            result = Result(check, time.perf_counter() - start)
        except CheckFailed as exc:
            cause = exc.__cause__
            details = None
            if cause is not None and not isinstance(cause, (CheckFailed, GanzooError)):
                details = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
            result = Result(check, time.perf_counter() - start, str(exc), details)
        results.append(result)
        if on_result:
            on_result(result)
    return results


def check_plugin(plugin: str, *, device: str = "cpu") -> list[Result]:
    """Run every check on a plugin; raise CheckFailed listing each failure and its fix (for pytest)."""
    results = run_checks(plugin_checks(plugin, device=device))
    failed = [r for r in results if not r.passed]
    if failed:
        lines = [f"{len(failed)} of {len(results)} conformance checks of plugin {plugin!r} failed:"]
        lines += [f"- {r.check.kind} {r.check.name!r}, {r.check.what}: {r.error}" for r in failed]
        raise CheckFailed("\n".join(lines))
    return results


# -- `ganzoo check-plugin` --------------------------------------------------------------------------

def check_plugins_command(names: list[str], *, every: bool, device: str, out, console) -> int:
    """What `ganzoo check-plugin` does: a table per plugin, the failures spelled out, exit status 1 on any."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .device import select_device

    device = str(select_device(device))
    regs = registries()
    if every:
        infos = [p for p in regs.plugins]
    elif names:
        infos = [find_plugin(n, regs) for n in names]
    else:
        raise GanzooError("Name the plugin to check, e.g. `ganzoo check-plugin myvariant` (see `ganzoo plugins`), "
                          "or pass --all.")
    status = 0
    for info in infos:
        title = f"{info.name} ({info.source}, {info.version})"
        if info.error:
            status = 1
            out.print(f"[bold]{escape(title)}[/bold]: [red]failed to load[/red]: {escape(info.error)}", highlight=False)
            tb = getattr(info, "traceback", None)
            if tb:
                out.print(tb, highlight=False, markup=False)
            continue
        checks = plugin_checks(info.name, device=device)
        if not checks:
            kinds = ", ".join(info.registered) or "nothing"
            out.print(f"[bold]{title}[/bold]: registers {kinds}; the kit checks generators, discriminators, "
                      f"losses and models, so there is nothing to check.", highlight=False)
            continue
        progress = Progress(TextColumn(f"checking {info.name}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True)
        with progress:
            task = progress.add_task("", total=len(checks))

            def advance(result: Result) -> None:
                progress.update(task, advance=1, description=f"{result.check.kind} {result.check.name}")
            start = time.perf_counter()
            results = run_checks(checks, advance)
            total = time.perf_counter() - start
        table = Table(title=f"conformance of {title} on {device}", title_justify="left")
        for column in ("kind", "name", "check", "result", "seconds"):
            table.add_column(column, justify="right" if column == "seconds" else "left")
        for r in results:
            table.add_row(r.check.kind, r.check.name, r.check.what,
                          "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]", f"{r.seconds:.2f}")
        out.print(table)
        failed = [r for r in results if not r.passed]
        for i, r in enumerate(failed, 1):
            what = f"{r.check.kind} {r.check.name!r}, {r.check.what}: {r.error}"
            out.print(f"[bold red]{i}.[/bold red] {escape(what)}", highlight=False)
            if r.details:
                out.print(r.details, highlight=False, markup=False)
        verdict = (f"[green]all {len(results)} checks passed[/green]" if not failed
                   else f"[bold red]{len(failed)} of {len(results)} checks failed[/bold red]")
        out.print(f"{info.name}: {verdict} in {total:.1f} s", highlight=False)
        status = status or (1 if failed else 0)
    return status
