"""Checks of generators and discriminators: one set of checks, two roles.

Both kinds of network are built from (image_size, channels, ...) at every size they declare, must
give the right shape in train and eval mode, pass finite gradients to their weights and their
input, take an optimizer step in fp32 and under bf16 autocast, build the same weights and outputs
under the same seed, and survive a safetensors round trip rebuilt from the embedded config. What
differs (the input, the output's contract, the training objective) is the `Role`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import PREFIX, config_of, read_tensors, rebuild, save_tensors
from ..config import RunConfig
from ..contracts import check_factory, check_methods
from ..errors import GanzooError
from ..models import construct, network_arguments
from ..recipe import DOutputs, d_outputs
from ..registry import Entry
from .kit import (BATCH, CHANNELS, CLASSES, SIZE_HINT, WIDTH, Z_DIM, CheckFailed, blame, check_deterministic, check_gradients,
                  fail, images, latent, max_diff, optimizer_step, reference_size, same, sizes_to_check)

Checks = list[tuple[str, Callable[[], None]]]
RESPONSE_BATCH = 16           # inputs of the "responds to its input" check


class Role:
    """What a network of one kind takes, gives and is trained on."""

    kind = ""
    argument = ""             # forward's argument, as messages name it
    inputs_are = ""           # its inputs in words
    takes = ""                # forward's contract, for messages
    output = ""               # what forward gives, in words
    shapes_check = ""         # the name of the shapes check

    def config(self, name: str, size: int, device: torch.device, channels: int = 3,
               num_classes: int = 0) -> RunConfig:
        """A small run config naming this network (what a weights file embeds)."""
        return RunConfig(model=f"check-{name}", image_size=size, channels=channels, z_dim=Z_DIM, g_width=WIDTH,
                         d_width=WIDTH, device=str(device), num_classes=num_classes, **{self.kind: name})

    def build(self, entry: Entry, size: int, channels: int, device: torch.device) -> nn.Module:
        classes = CLASSES if entry.takes_classes else 0
        kwargs = network_arguments(self.kind, self.config(entry.name, size, device, channels, classes),
                                   conditional=entry.takes_classes)
        what = f"{self.kind} {entry.name!r} at {size}x{size}, {channels} channel(s)"
        signature = ", ".join(["*", *kwargs])
        check_factory(self.kind, f"The {self.kind} {entry.name!r} (plugin {entry.plugin!r})", entry.factory,
                      conditional=entry.takes_classes)
        try:
            with blame(f"Building the {what}", f"The factory is called as factory({signature}). {SIZE_HINT}"):
                net = construct(f"{self.kind} {entry.name!r}", entry.factory, **kwargs)
        except CheckFailed:
            raise
        except GanzooError as exc:   # a clear refusal, but of a size its registration claims
            raise CheckFailed(f"Building the {what} failed: {exc} {SIZE_HINT}") from exc
        check_methods(self.kind, f"The {self.kind} {entry.name!r}", net, entry.conditional)
        net._kit_channels = channels                   # what the kit's training objectives feed it
        net._kit_classes = classes                     # a conditional network is also fed class labels
        net._kit_labels = entry.conditional            # (a D with a class head is built for them, fed x alone)
        net._kit_class_head = entry.class_head
        return net.to(device)

    def forward(self, net: nn.Module, x: torch.Tensor, what: str, y: torch.Tensor | None = None) -> torch.Tensor:
        """net(x), or net(x, y) for a conditional network: y by default sample i's class, i % the kit's classes."""
        classes = getattr(net, "_kit_classes", 0)
        if not classes or not getattr(net, "_kit_labels", True):
            with blame(f"{what}: forward({self.argument}) with {self.argument} of shape {tuple(x.shape)}", self.takes):
                return net(x)
        y = torch.arange(len(x), device=x.device) % classes if y is None else y
        with blame(f"{what}: forward({self.argument}, y) with {self.argument} of shape {tuple(x.shape)} and class "
                   f"labels y of shape {tuple(y.shape)}", self.takes_conditional):
            return net(x, y)

    def inputs(self, n: int, channels: int, size: int, device: torch.device, seed: int = 0,
               wide: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def as_tensor(self, out: Any) -> torch.Tensor:
        """What forward gave, as one tensor to compare (a D's logits and its extras, flattened)."""
        return out

    def check_output(self, out: Any, what: str, mode: str, channels: int, size: int) -> None:
        raise NotImplementedError

    def objective(self, out: torch.Tensor, what: str, size: int, device: torch.device) -> torch.Tensor:
        """A scalar whose gradient reaches every weight and the input."""
        raise NotImplementedError

    def input_gradient_problem(self, grad: torch.Tensor | None) -> str | None:
        raise NotImplementedError

    def training_loss(self, net: nn.Module, size: int, device: torch.device, what: str,
                      amp: bool) -> Callable[[], torch.Tensor]:
        raise NotImplementedError


class GeneratorRole(Role):
    kind, argument, inputs_are, output, shapes_check = "generator", "z", "z", "outputs", "shapes and range"
    takes = "forward(z) takes a [B, z_dim] latent batch."
    takes_conditional = "forward(z, y) takes a [B, z_dim] latent batch and [B] int64 class labels."

    def inputs(self, n, channels, size, device, seed=0, wide=False):
        return latent(n, device, seed, scale=3.0 if wide else 1.0)   # wide z: saturated outputs must stay in range

    def check_output(self, x, what, mode, channels, size):
        expected = (BATCH, channels, size, size)
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != expected:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            fail(f"{what}: forward(z) returned {got} in {mode} mode, expected {expected} "
                 f"([B, channels, image_size, image_size]). {SIZE_HINT}")
        if not x.is_floating_point() or not torch.isfinite(x).all():
            fail(f"{what}: the output ({x.dtype}) holds NaN/Inf or is not floating point.")
        if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6:
            fail(f"{what}: outputs span [{x.min().item():.3f}, {x.max().item():.3f}] in {mode} mode; "
                 f"images must lie in [-1, 1] (end forward() with tanh).")

    def objective(self, x, what, size, device):
        return (x.float() * images(BATCH, x.shape[1], size, device, seed=1)).sum()

    floor = 1e-3              # an eighth of one grey level (2/255 in [-1, 1])

    def response(self, outputs):
        """How much the images change with z: the per-pixel spread over the batch, averaged."""
        return outputs.float().std(0).mean().item()

    def unresponsive(self, spread):
        return (f"its images change with z by {spread:.2e} on average (per-pixel spread over {RESPONSE_BATCH} "
                f"latents, train mode), under {self.floor:g}, an eighth of a grey level: G ignores z (or mixes in "
                f"only a trace of it), so it can only draw one image. Feed z through the network; if the last "
                f"layer starts at zero, start it small instead.")

    def input_gradient_problem(self, grad):
        if grad is None or not torch.isfinite(grad).all():
            return "no finite gradient reaches z; forward() must be differentiable in its input."
        return None

    def training_loss(self, G, size, device, what, amp):
        channels = getattr(G, "_kit_channels", 3)
        z, target = latent(2 * BATCH, device), images(2 * BATCH, channels, size, device, seed=2)

        def loss():
            x = self.forward(G, z, what)
            if not torch.isfinite(x).all() or x.float().abs().max() > 1 + 1e-2:
                fail(f"{what}: under {'bf16 autocast' if amp else 'fp32'} the output leaves [-1, 1] or "
                     f"holds NaN/Inf.")
            if tuple(x.shape) != tuple(target.shape):       # mse_loss would broadcast [B, 1] against [B, 3]
                fail(f"{what}: forward(z) returned {tuple(x.shape)} in a training step, expected "
                     f"{tuple(target.shape)} ([B, channels, image_size, image_size]). {SIZE_HINT}")
            return F.mse_loss(x.float(), target)
        return loss


class DiscriminatorRole(Role):
    kind, argument, inputs_are, output, shapes_check = "discriminator", "x", "images", "logits", "shapes"
    takes = "forward(x) takes [B, channels, image_size, image_size] images in [-1, 1]."
    takes_conditional = ("forward(x, y) takes [B, channels, image_size, image_size] images in [-1, 1] and [B] int64 "
                         "class labels.")

    def inputs(self, n, channels, size, device, seed=0, wide=False):
        return images(n, channels, size, device, seed)

    def outputs(self, out, what, mode, size, class_head=False, n=BATCH) -> DOutputs:
        """forward's return value read as the trainer reads it (ganzoo.recipe.d_outputs), or a failed check."""
        try:
            outputs = d_outputs(out, n, f"{what}: forward(x) in {mode} mode")
        except GanzooError as exc:
            fail(f"{exc} {SIZE_HINT}")
        if class_head:
            head = outputs.extras.get("class_logits")
            if head is None or tuple(head.shape) != (BATCH, CLASSES):
                got = tuple(head.shape) if head is not None else "no 'class_logits'"
                fail(f"{what}: registered with class_head=True, forward(x) returned {got} as its class head in "
                     f"{mode} mode; it must return (logits, {{\"class_logits\": [B, num_classes]}}), here "
                     f"({BATCH}, {CLASSES}).")
        return outputs

    def as_tensor(self, out):
        outputs = d_outputs(out, len(out[0]) if isinstance(out, tuple) else len(out))
        return torch.cat([outputs.logits.flatten(), *(v.flatten() for _, v in sorted(outputs.extras.items()))])

    def check_output(self, out, what, mode, channels, size, class_head=False):
        outputs = self.outputs(out, what, mode, size, class_head)
        for name, t in {"logits": outputs.logits, **outputs.extras}.items():
            if not t.is_floating_point() or not torch.isfinite(t).all():
                fail(f"{what}: the {name} ({t.dtype}) hold NaN/Inf or are not floating point.")

    def objective(self, out, what, size, device):
        outputs = self.outputs(out, what, "train", size)            # a [B, 1] output would sum just the same
        return outputs.logits.float().sum() + sum(v.float().sum() for v in outputs.extras.values())

    floor = 1e-4              # logits: a D scaled by 1e-6 answers 0.5 to every image

    def response(self, outputs):
        """How much the logits differ between images: their range over the batch."""
        outputs = outputs.float()
        return (outputs.max() - outputs.min()).item()

    def unresponsive(self, spread):
        return (f"its logits differ by at most {spread:.2e} across {RESPONSE_BATCH} different images (uniform "
                f"noise, black, white; train mode), under {self.floor:g}: D answers about 0.5 to everything "
                f"(its output scaled to nothing?), so G learns nothing from it. Its logits must respond to its "
                f"input.")

    def input_gradient_problem(self, grad):
        if grad is None or not torch.isfinite(grad).all() or not grad.any():
            return ("no finite, non-zero gradient reaches the images; the generator learns only through it, so "
                    "forward() must be differentiable in x.")
        return None

    def training_loss(self, D, size, device, what, amp):
        channels = getattr(D, "_kit_channels", 3)
        real, fake = images(2 * BATCH, channels, size, device, 5), images(2 * BATCH, channels, size, device, 6)

        def loss():
            r = self.outputs(self.forward(D, real, what), what, "train", size, n=2 * BATCH)
            f = self.outputs(self.forward(D, fake, what), what, "train", size, n=2 * BATCH)
            extras = sum(v.float().square().mean() for v in (*r.extras.values(), *f.extras.values()))
            return F.softplus(-r.logits.float()).mean() + F.softplus(f.logits.float()).mean() + 1e-3 * extras
        return loss


GENERATOR, DISCRIMINATOR = GeneratorRole(), DiscriminatorRole()


def network_checks(entry: Entry, device: torch.device, role: Role) -> Checks:
    """Every check of one registered generator or discriminator, as (name, check) pairs."""
    sizes = sizes_to_check(entry)
    name = f"{role.kind} {entry.name!r}"
    counts = [c for c in CHANNELS if entry.supports_channels(c)]     # declared with channel_counts=, or 1 and 3
    ref = max(counts)                                                # colour where supported

    def at_reference_size() -> tuple[int, str]:
        size = reference_size(sizes, name, entry.image_sizes)
        return size, f"{name} at {size}x{size}"

    def shapes():
        if not sizes:
            reference_size(sizes, name, entry.image_sizes)
        for size in sizes:
            for channels in counts:
                net = role.build(entry, size, channels, device)
                what = f"{name} at {size}x{size}, {channels} channel(s)"
                x = role.inputs(BATCH, channels, size, device, wide=True)
                for mode in ("train", "eval"):
                    net.train(mode == "train")
                    with torch.no_grad():
                        if entry.class_head:
                            role.check_output(role.forward(net, x, what), what, mode, channels, size, True)
                        else:
                            role.check_output(role.forward(net, x, what), what, mode, channels, size)

    def gradients():
        size, what = at_reference_size()
        net = role.build(entry, size, ref, device).train()
        x = role.inputs(BATCH, ref, size, device).requires_grad_(True)
        out = role.forward(net, x, what)
        role.check_output(out, what, "train", ref, size)     # a wrong shape must not broadcast into the objective
        objective = role.objective(out, what, size, device)
        with blame(f"{what}: backward()", "forward() must be differentiable."):
            objective.backward()
        check_gradients(net, what)
        problem = role.input_gradient_problem(x.grad)
        if problem:
            fail(f"{what}: {problem}")

    def step(amp: bool):
        def run():
            size, what = at_reference_size()
            net = role.build(entry, size, ref, device)
            optimizer_step(net, role.training_loss(net, size, device, what, amp), what, amp, device)
        return run

    def deterministic():
        size, what = at_reference_size()
        x = role.inputs(BATCH, ref, size, device)
        check_deterministic(lambda: role.build(entry, size, ref, device).train(),
                            lambda net: role.as_tensor(role.forward(net, x, what)),
                            what, f"{role.inputs_are} give {role.output}")

    def round_trip():
        size, what = at_reference_size()
        net = role.build(entry, size, ref, device).train()
        with torch.no_grad():
            role.forward(net, role.inputs(2 * BATCH, ref, size, device, seed=3), what)   # moves running state off init
        config = role.config(entry.name, size, device, ref, net._kit_classes)
        x = role.inputs(BATCH, ref, size, device, seed=4)
        arguments = ", ".join(network_arguments(role.kind, config, conditional=entry.takes_classes))
        with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as tmp:
            path = Path(tmp) / f"{role.kind}.safetensors"
            with blame(f"{what}: saving the state_dict to safetensors",
                       "Keep all state in parameters and buffers (tensors); safetensors holds nothing else."):
                save_tensors(path, {PREFIX[role.kind] + k: v for k, v in net.state_dict().items()}, role.kind, config)
            tensors, metadata = read_tensors(path)
            with blame(f"{what}: rebuilding from the weights file's embedded config",
                       f"The factory must build the same network from ({arguments}) alone."):
                rebuilt = rebuild(role.kind, config_of(metadata), tensors).to(device).eval()
            rebuilt._kit_classes, rebuilt._kit_labels = net._kit_classes, net._kit_labels
        with torch.no_grad():
            a = role.as_tensor(role.forward(net.eval(), x, what))
            b = role.as_tensor(role.forward(rebuilt, x, what))
        if not same(a, b):
            fail(f"{what}: after a safetensors round trip (config embedded in the file -> rebuilt network -> "
                 f"weights loaded) the {role.output} differ by up to {max_diff(a, b):.2e}; keep all state that "
                 f"forward() reads in registered parameters and buffers.")

    def responds():
        """The output changes with the input beyond a floor: not 0*z, not 1e-6*z, not a D scaled by 1e-6."""
        size, what = at_reference_size()
        net = role.build(entry, size, ref, device).train()
        x = role.inputs(RESPONSE_BATCH, ref, size, device, seed=8)
        if role is DISCRIMINATOR:                        # the extremes too: black and white images
            x[0], x[1] = -1.0, 1.0
        with torch.no_grad():
            out = role.forward(net, x, what)
        if role is DISCRIMINATOR:                        # its logits (extras beside them aside)
            out = role.outputs(out, what, "train", size, n=RESPONSE_BATCH).logits
        if not isinstance(out, torch.Tensor) or out.shape[:1] != (RESPONSE_BATCH,):
            fail(f"{what}: forward({role.argument}) on a batch of {RESPONSE_BATCH} returned "
                 f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}.")
        spread = role.response(out)
        if not spread >= role.floor:
            fail(f"{what}: {role.unresponsive(spread)}")

    def labels_matter():
        """A conditional network's output depends on the class it is given (the labels reach it)."""
        size, what = at_reference_size()
        net = role.build(entry, size, ref, device).eval()
        x = role.inputs(BATCH, ref, size, device, seed=7)
        with torch.no_grad():
            outputs = [role.as_tensor(role.forward(net, x, what, torch.full((BATCH,), c, device=device)))
                       for c in range(CLASSES)]
        if all(same(outputs[0], other) for other in outputs[1:]):
            fail(f"{what}: forward({role.argument}, y) gives the same {role.output} for every class y; a conditional "
                 f"network must use its labels.")

    checks = [(role.shapes_check, shapes), ("gradients", gradients),
              ("training step fp32", step(False)), ("training step bf16 autocast", step(True)),
              (f"responds to {role.argument}", responds),
              ("deterministic under a seed", deterministic), ("safetensors round trip", round_trip)]
    return checks + [("class labels reach it", labels_matter)] if entry.conditional else checks


def generator_checks(entry: Entry, device: torch.device) -> Checks:
    return network_checks(entry, device, GENERATOR)


def discriminator_checks(entry: Entry, device: torch.device) -> Checks:
    return network_checks(entry, device, DISCRIMINATOR)
