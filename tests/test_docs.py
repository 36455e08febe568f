"""docs/plugins.md documents every hook with a snippet that runs, and its tutorial quotes the example plugin verbatim.

The hook list comes from ganzoo.hookspecs itself, so a hook added there fails this test until it is documented.
"""

import re
import types
from pathlib import Path

import pytest
import torch

from ganzoo import hookspecs
from ganzoo.data import ImageData
from ganzoo.plugins import HOOKS, PluginInfo, collect, make_plugin_manager, registries
from ganzoo.testing import discriminator_checks, generator_checks, loss_checks

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "plugins.md").read_text()
HOOK_SPECS = sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, "ganzoo_spec"))
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def section(hook: str) -> str:
    """The text under the `### `hook`` heading, up to the next heading."""
    match = re.search(rf"^### `{hook}`\n(.*?)(?=^#{{1,3}} )", DOC, re.S | re.M)
    assert match, f"docs/plugins.md has no '### `{hook}`' section: document the hook there, with a runnable snippet"
    return match.group(1)


def snippet_plugin(hook: str) -> types.ModuleType:
    blocks = [code for lang, code in BLOCK.findall(section(hook)) if lang == "python"]
    assert blocks, f"the {hook} section of docs/plugins.md has no ```python snippet"
    module = types.ModuleType(f"doc_snippet_{hook}")
    exec(compile(blocks[0], f"docs/plugins.md ({hook})", "exec"), module.__dict__)
    return module


def test_hookspecs_are_found():
    assert {"register_generators", "register_discriminators", "register_losses", "register_datasets",
            "register_models"} <= set(HOOK_SPECS)


@pytest.mark.parametrize("hook", HOOK_SPECS)
def test_every_hook_has_a_snippet_that_registers(hook):
    module = snippet_plugin(hook)
    assert hasattr(module, hook), f"the {hook} snippet must define {hook}(register)"
    pm = make_plugin_manager()
    pm.register(module, name="snippet")
    regs = collect(pm, [PluginInfo("snippet", "0", "docs")])
    info = {p.name: p for p in regs.plugins}["snippet"]
    assert info.error is None, info.error
    assert hook in HOOKS, f"{hook} is a hook spec but ganzoo.plugins.HOOKS does not map it to a registry"
    kind = HOOKS[hook]
    assert info.registered.get(kind), f"the {hook} snippet registered no {kind}"
    for name in info.registered[kind]:
        entry = regs.by_kind(kind).get(name)
        # what the snippet registers really works: the kit's checks that need no global registry
        cpu = torch.device("cpu")
        if kind == "generator":
            checks = [fn for what, fn in generator_checks(entry, cpu) if what != "safetensors round trip"]
        elif kind == "discriminator":
            checks = [fn for what, fn in discriminator_checks(entry, cpu) if what != "safetensors round trip"]
        elif kind == "loss":
            checks = [fn for _, fn in loss_checks(entry, cpu)]
        elif kind == "dataset":
            data = entry.factory(root=None, download=False, split="train", image_size=16, channels=3)
            assert isinstance(data, ImageData) and data.images.shape[1:] == (3, 16, 16)
            checks = []
        elif kind == "model":
            spec, builtins = entry.factory, registries()
            assert spec.generator in builtins.generators and spec.discriminator in builtins.discriminators
            assert spec.loss in builtins.losses
            checks = []
        elif kind == "metric":
            from ganzoo.evaluate import Samples

            # scored against the built-in fake dataset: real reference statistics, real numbers
            images = registries().datasets.get("fake").factory(root=None, download=False, split="train").images
            scores = entry.factory(Samples(images[:200], "fake", download=False))
            assert scores and all(isinstance(v, float) and v >= 0 for v in scores.values()), scores
            checks = []
        else:
            checks = []
        for check in checks:
            check()


def test_docs_cover_strict_mode_and_the_kit():
    for text in ("GANZOO_STRICT_PLUGINS=1", "ganzoo check-plugin", "from ganzoo.testing import check_plugin",
                 "image_sizes", "pip install ./examples/sndcgan"):
        assert text in DOC, text


def test_tutorial_quotes_the_example_plugin_verbatim():
    quoted = 0
    for _, code in BLOCK.findall(DOC):
        first, _, body = code.partition("\n")
        if first.startswith("# examples/"):
            path = REPO / first[2:].strip()
            assert path.is_file(), f"docs/plugins.md quotes {path}, which does not exist"
            assert body.strip() in path.read_text(), f"docs/plugins.md's excerpt of {first[2:]} is out of date"
            quoted += 1
    assert quoted >= 4
