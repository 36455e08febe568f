"""Checks of models: a ModelSpec whose components exist and share an image size, trained by the real
`ganzoo run` Trainer in fp32 and bf16, repeatable under a seed, resumable bit for bit from its
checkpoint, and sampled from its generator file as `ganzoo sample` does."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..checkpoint import load_generator
from ..config import ModelSpec, RunConfig
from ..data import ImageData
from ..plugins import Registries
from ..registry import Entry, describe_sizes
from ..resolve import make_config
from ..sampling import classes
from ..sampling import generate
from ..train import Trainer
from .kit import BATCH, WIDTH, Z_DIM, CheckFailed, blame, fail, latent, max_diff, reference_size, same, sizes_to_check
from .networks import Checks

WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def model_checks(entry: Entry, device: torch.device, regs: Registries) -> Checks:
    what = f"model {entry.name!r}"

    def spec_and_size() -> tuple[ModelSpec, int]:
        spec = entry.factory
        if not isinstance(spec, ModelSpec):
            fail(f"{what}: registered a {type(spec).__name__}; register a ganzoo.ModelSpec(generator=..., "
                 f"discriminator=..., loss=...).")
        found = {}
        for kind, registry, name in (("generator", regs.generators, spec.generator),
                                     ("discriminator", regs.discriminators, spec.discriminator),
                                     ("loss", regs.losses, spec.loss)):
            if name not in registry:
                fail(f"{what}: its ModelSpec names the {kind} {name!r}, which no installed plugin registers "
                     f"({registry.unknown_message(name)}); register it in the same plugin or depend on the "
                     f"package that does.")
            found[kind] = registry.get(name)
        common = [s for s in sizes_to_check(found["generator"]) if found["discriminator"].supports_image_size(s)]
        if not common:
            fail(f"{what}: its generator supports {describe_sizes(found['generator'].image_sizes)} and its "
                 f"discriminator {describe_sizes(found['discriminator'].image_sizes)}: no image size both "
                 f"support.")
        return spec, reference_size(common, what, None)

    def config(precision: str, out: str = "") -> RunConfig:
        _, size = spec_and_size()
        config = make_config(entry.name, dict(data="fake", image_size=size, channels=3, z_dim=Z_DIM, g_width=WIDTH,
                                              d_width=WIDTH, batch_size=2 * BATCH, epochs=1, samples=BATCH,
                                              seed=0, device=str(device), precision=precision), regs)
        config.out = out
        return config

    def trainer(cfg: RunConfig):
        images = torch.randint(0, 256, (4 * BATCH, cfg.channels, cfg.image_size, cfg.image_size),
                               dtype=torch.uint8, generator=torch.Generator().manual_seed(9))
        labels = torch.arange(4 * BATCH) % max(cfg.num_classes, 1)      # what a conditional model trains on
        with blame(f"{what}: building its trainer", "Check the ModelSpec's components and defaults."):
            return Trainer(cfg, ImageData(images, labels, name="check"))

    def batches(t) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(t.batches.labelled(torch.Generator(device=t.device).manual_seed(0)))

    def train_steps(t, reals: list[tuple[torch.Tensor, torch.Tensor]], precision: str) -> list[torch.Tensor]:
        stats = []
        for real, labels in reals:
            with blame(f"{what}: a `ganzoo run` training step ({precision})",
                       "Every component must accept the dtype autocast gives it." if precision == "bf16"
                       else "Check the components' shapes."):
                stats.append(t.step(real, labels))
        return stats

    def components():
        with blame(f"{what}: its ModelSpec defaults", "Use RunConfig field names in defaults."):
            config("fp32")

    def step(precision: str):
        def run():
            t = trainer(config(precision))
            g_before = [p.detach().clone() for p in t.G.parameters()]
            d_before = [p.detach().clone() for p in t.D.parameters()]
            reals = batches(t)
            steps = max(len(reals), getattr(t.config, "n_critic", 1) + 1)   # G steps once per n_critic D steps
            for stats in train_steps(t, [reals[i % len(reals)] for i in range(steps)], precision):
                if not torch.isfinite(stats).all():
                    fail(f"{what}: a training step in {precision} gave losses {stats[:2].tolist()}; keep "
                         f"numerically sensitive ops in float32.")
            for net, before in (("generator", g_before), ("discriminator", d_before)):
                params = list((t.G if net == "generator" else t.D).parameters())
                if all(torch.equal(b, p.detach()) for b, p in zip(before, params)):
                    fail(f"{what}: {WORDS.get(steps, steps)} training steps in {precision} left the {net}'s weights "
                         f"unchanged; its loss must depend on its parameters.")
                if not all(torch.isfinite(p).all() for p in params):
                    fail(f"{what}: the {net}'s weights hold NaN/Inf after two training steps in {precision}.")
        return run

    def deterministic():
        runs = []
        for _ in range(2):
            t = trainer(config("fp32"))
            runs.append((torch.stack(train_steps(t, batches(t), "fp32")), t.G.state_dict()))
        (s1, g1), (s2, g2) = runs
        if not same(s1, s2) or not all(same(g1[k], g2[k]) for k in g1):
            fail(f"{what}: two runs with the same seed differ after two steps (losses {s1[:, :2].tolist()} vs "
                 f"{s2[:, :2].tolist()}); draw every random number from torch's global RNG.")

    def round_trip():
        with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as tmp:
            cfg = config("fp32", out=str(Path(tmp) / "run"))
            t1 = trainer(cfg)
            reals = batches(t1)
            train_steps(t1, reals[:1], "fp32")
            with blame(f"{what}: saving a checkpoint", "Keep all state in parameters and buffers."):
                t1.save_checkpoint()
            after = train_steps(t1, reals[1:2], "fp32")[0]
            t2 = trainer(cfg)
            with blame(f"{what}: rebuilding the generator from {t1.files.generator.name} (as `ganzoo sample` "
                       f"does)", "The factory must build the same network from the run config alone."):
                G, _ = load_generator(t1.files.generator, t2.device)
            with blame(f"{what}: resuming from its checkpoint", "Keep all state in parameters and buffers."):
                t2.load_checkpoint(t1.files.checkpoint)       # restores the RNG too: nothing may draw after it
            z = latent(BATCH, t2.device, seed=10)
            y = classes(cfg, range(BATCH))                   # None for an unconditional model
            with torch.no_grad():
                a = generate(t2.step.sampler, z, y)
                b = (G(z) if y is None else G(z, y.to(t2.device))).float()
            if not same(a, b):
                fail(f"{what}: the generator file rebuilt from its embedded config gives samples differing by "
                     f"up to {max_diff(a, b):.2e} from the checkpoint's generator.")
            resumed = train_steps(t2, reals[1:2], "fp32")[0]
            if not same(after, resumed) or not all(same(p, q) for p, q in zip(t1.G.parameters(),
                                                                                t2.G.parameters())):
                fail(f"{what}: a run resumed from its checkpoint took a different step (losses "
                     f"{resumed[:2].tolist()} vs {after[:2].tolist()}); every piece of state the networks and "
                     f"loss use must live in parameters and buffers.")

    try:
        spec_and_size()
    except CheckFailed:          # nothing can train: report the broken spec once, not five times
        return [("components", components)]
    return [("components", components), ("training step fp32", step("fp32")),
            ("training step bf16 autocast", step("bf16")), ("deterministic under a seed", deterministic),
            ("checkpoint round trip", round_trip)]

