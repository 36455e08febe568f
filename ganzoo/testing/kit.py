"""The kit's common ground: what a check is, how it fails, and the helpers every check uses.

A check is a function that raises CheckFailed with a sentence saying what to fix; `Check` wraps
one with its name and runs it on one CPU thread with the global RNG restored afterwards. `blame`
turns an exception from plugin code into such a sentence.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..errors import GanzooError
from ..kinds import KINDS
from ..registry import Entry, describe_sizes

CHECKED_KINDS = tuple(kind.name for kind in KINDS if kind.checked)   # the kinds table says which
PROBE_SIZES = (8, 16, 28, 32, 64, 128)   # tested for networks that accept open-ended sizes
MAX_TESTED_SIZE = 256
CHANNELS = (1, 3)
Z_DIM, WIDTH, BATCH, SEED = 16, 8, 4, 1234
CLASSES = 3                 # the classes a conditional network is built for and fed


class CheckFailed(AssertionError):
    """A contract a plugin breaks; the message says what to fix."""


@dataclass(frozen=True)
class Check:
    """One conformance check of one registered thing; `run()` raises CheckFailed when it fails."""

    kind: str                    # one of CHECKED_KINDS
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
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), one_thread():
            try:
                self.fn()
            except CheckFailed:
                raise
            except GanzooError as exc:   # ganzoo's own one-line errors already say how to fix
                raise CheckFailed(f"{self.kind} {self.name!r}: {exc}") from exc
            except Exception as exc:
                raise CheckFailed(f"{self.kind} {self.name!r} ({self.what}) raised {one_line(exc)} (its traceback "
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
def one_thread() -> Iterator[None]:
    """The checks' tensors are tiny: on a busy machine extra CPU threads only wait on each other (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def fail(message: str) -> None:
    raise CheckFailed(message)


@contextlib.contextmanager
def blame(where: str, fix: str) -> Iterator[None]:
    """Turn an exception from plugin code into a CheckFailed that says where it happened and what to do."""
    try:
        yield
    except (CheckFailed, GanzooError):
        raise
    except Exception as exc:
        raise CheckFailed(f"{where} raised {one_line(exc)}. {fix}") from exc


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise on the CPU; a hair of tolerance on CUDA, whose kernels may reorder sums."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.device.type == "cpu":
        return torch.equal(a, b)
    return torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item() if a.shape == b.shape else float("nan")


def autocast(device: torch.device, amp: bool):
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


def reference_size(sizes: list[int], what: str, entry_sizes: Any) -> int:
    """32 (MNIST's training size) where supported, else the smallest size >= 16, else the smallest."""
    if not sizes:
        fail(f"{what} declares image_sizes {describe_sizes(entry_sizes)}, none of them at most "
             f"{MAX_TESTED_SIZE}: the kit has no size to test; declare the sizes it supports.")
    if 32 in sizes:
        return 32
    return next((s for s in sizes if s >= 16), sizes[0])


SIZE_HINT = ("If this size is not supported, declare the supported ones with register(..., image_sizes=...); "
             "channel counts likewise with channel_counts=(1,) or (3,).")


# -- inputs and common contracts ---------------------------------------------------------------------

def images(n: int, channels: int, size: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, channels, size, size, generator=g) * 2 - 1).to(device)


def latent(n: int, device: torch.device, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(n, Z_DIM, generator=torch.Generator().manual_seed(seed)) * scale).to(device)


def check_gradients(module: nn.Module, what: str) -> None:
    params = dict(module.named_parameters())
    if not params:
        fail(f"{what} has no trainable parameters; register its weights as nn.Parameter (in submodules).")
    missing = [n for n, p in params.items() if p.requires_grad and p.grad is None]
    if missing:
        fail(f"{what}: parameter(s) {missing[:3]} receive no gradient; use them in forward() or remove them "
             f"(or set requires_grad=False).")
    bad = [n for n, p in params.items() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        fail(f"{what}: the gradient of {bad[:3]} is NaN/Inf; look for a division by zero, log/sqrt of zero or "
             f"an overflowing exp in forward().")
    if all(p.grad is None or not p.grad.any() for p in params.values()):
        fail(f"{what}: every gradient is zero; the output does not depend on the weights (a detach() or "
             f"no_grad in forward()?).")


def optimizer_step(module: nn.Module, loss_fn: Callable[[], torch.Tensor], what: str, amp: bool,
                   device: torch.device) -> None:
    """One Adam step as the trainer takes it; the loss must be finite and the weights must move and stay finite."""
    module.train()
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    if not before:
        fail(f"{what} has no trainable parameters; register its weights as nn.Parameter (in submodules).")
    opt = torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999))
    precision = "bf16 autocast" if amp else "fp32"
    with blame(f"{what}: a training step in {precision}",
               "Every op in forward() must accept the dtype autocast gives it; cast to float where an op "
               "needs float32." if amp else "Check forward() and its shapes."):
        with autocast(device, amp):
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if not torch.isfinite(loss):
        fail(f"{what}: the training loss is {loss.item()} in {precision}; keep numerically sensitive ops "
             f"(exp, log, normalisation) in float32.")
    moved = [n for n, p in module.named_parameters() if not torch.equal(before[n], p.detach())]
    if not moved:
        fail(f"{what}: an optimizer step in {precision} changed no weight; the output must depend on the "
             f"parameters through differentiable ops.")
    bad = [n for n, p in module.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        fail(f"{what}: after a training step in {precision}, {bad[:3]} hold NaN/Inf.")



def check_deterministic(build: Callable[[], nn.Module], forward: Callable[[nn.Module], torch.Tensor], what: str,
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
    compare_states(nets[0], nets[1], what, fix)
    if not same(outs[0], outs[1]):
        fail(f"{what}: the same seed and {inputs_give} differing by up to {max_diff(*outs):.2e}. {fix}")

def compare_states(a: nn.Module, b: nn.Module, what: str, fix: str) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    if list(sa) != list(sb):
        fail(f"{what}: the two builds have different state_dict keys. {fix}")
    differ = [k for k in sa if isinstance(sa[k], torch.Tensor) and not same(sa[k], sb[k])]
    if differ:
        fail(f"{what}: {differ[:3]} differ between two builds under the same seed. {fix}")

