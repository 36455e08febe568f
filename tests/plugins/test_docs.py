"""docs/plugins.md documents every hook with a snippet that runs, and its tutorial quotes the example plugin verbatim.

The hook list comes from ganzoo.hookspecs itself, so a hook added there fails this test until it is documented.
"""

import re
import types

import pytest
import torch

from ganzoo import hookspecs
from ganzoo.data import ImageData
from ganzoo.plugins import HOOKS, PluginInfo, collect, make_plugin_manager, registries
from ganzoo.testing import discriminator_checks, generator_checks, loss_checks
from helpers import BLOCK, DOC, REPO, snippet_plugin

HOOK_SPECS = sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, "ganzoo_spec"))


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


# -- the generated reference and the sections beyond the hooks ---------------------------------------------

def test_generated_blocks_are_current():
    """The run-settings table and the `ganzoo plugins` table match the code (python -m ganzoo.reference rewrites)."""
    from ganzoo.config import FIELDS
    from ganzoo.reference import blocks, generated

    found = blocks(DOC)
    assert set(found) == {"run-settings", "plugins-table"}
    for name, body in found.items():
        assert body == generated(name), (f"docs/plugins.md's generated {name} block is out of date; rewrite it with "
                                         f"python -m ganzoo.reference docs/plugins.md")
    for name, info in FIELDS.items():                         # every field, with its help, in the table
        assert f"| `{name}` |" in found["run-settings"] and info.setting.help.replace("|", "\\|") in found["run-settings"]
    builtins = [p for p in registries().plugins if p.source == "built-in"]
    assert all(f"│ {p.name} " in found["plugins-table"] for p in builtins)


def sections_blocks(title: str) -> list[str]:
    match = re.search(rf"^## {title}\n(.*?)(?=^## )", DOC, re.S | re.M)
    assert match, f"docs/plugins.md has no '## {title}' section"
    return [code for lang, code in BLOCK.findall(match.group(1)) if lang == "python"]


def collect_snippet(code: str, name: str):
    module = types.ModuleType(f"doc_snippet_{name}")
    exec(compile(code, f"docs/plugins.md ({name})", "exec"), module.__dict__)
    pm = make_plugin_manager()
    pm.register(module, name="snippet")
    regs = collect(pm, [PluginInfo("snippet", "0", "docs")])
    info = {p.name: p for p in regs.plugins}["snippet"]
    assert info.error is None, info.error
    return regs


def test_component_options_snippet_sets_options_in_three_layers():
    code, = sections_blocks("Component options")
    regs = collect_snippet(code, "options")
    m111 = regs.losses.get("ls-m111").factory()
    assert (m111.a, m111.b, m111.c) == (-1.0, 1.0, 1.0)
    spec = regs.models.get("dcgan-ls").factory
    assert spec.options == {"loss": {"a": -1.0, "b": 1.0, "c": 1.0}}
    loss = regs.losses.get("ls-shifted").factory(**spec.options["loss"])
    real, fake = torch.ones(4), -torch.ones(4)
    assert loss.d_loss(real, fake).item() == 0.0 and loss.g_loss(torch.ones(4)).item() == 0.0


def test_reusing_a_component_snippet_builds_dcgan_inside_its_factory():
    code, = sections_blocks("Reusing a registered component")
    regs = collect_snippet(code, "reuse")
    D = regs.discriminators.get("calm-dcgan").factory(image_size=32, channels=1, width=8).eval()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert type(D.inner).__name__ == "DCGANDiscriminator"
    assert torch.equal(D(x), 0.5 * D.inner(x))


def tutorial_files() -> dict[str, str]:
    """The WGAN-GP tutorial's files: path (its first line's comment) -> text."""
    match = re.search(r"^## Tutorial: WGAN-GP as a package\n(.*?)(?=^## )", DOC, re.S | re.M)
    assert match, "docs/plugins.md has no WGAN-GP tutorial"
    files = {}
    for _, code in BLOCK.findall(match.group(1)):
        first, _, body = code.partition("\n")
        if first.startswith("# ") and "/" in first or first.endswith(".toml"):
            files[first[2:].strip()] = body
    return files


def test_wgangp_tutorial_is_a_package_under_60_lines():
    files = tutorial_files()
    assert set(files) == {"pyproject.toml", "ganzoo_wgangp/__init__.py"}
    assert sum(len(text.splitlines()) + 1 for text in files.values()) < 60       # the path comments counted too


@pytest.mark.slow
def test_wgangp_tutorial_installs_passes_the_kit_and_trains(tmp_path):
    import json
    import os
    import subprocess
    import sys
    import tomllib

    files = tutorial_files()
    project = tomllib.loads(files["pyproject.toml"])["project"]
    (tmp_path / "ganzoo_wgangp").mkdir()
    (tmp_path / "ganzoo_wgangp" / "__init__.py").write_text(files["ganzoo_wgangp/__init__.py"])
    info = tmp_path / f"ganzoo_wgangp-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text("[ganzoo]\n" + "".join(
        f"{k} = {v}\n" for k, v in project["entry-points"]["ganzoo"].items()))
    env = dict(os.environ, PYTHONPATH=str(tmp_path), OMP_NUM_THREADS="1", COLUMNS="200", GANZOO_STRICT_PLUGINS="1")

    def ganzoo(*args):
        return subprocess.run([sys.executable, "-m", "ganzoo", *args], env=env, capture_output=True, text=True,
                              timeout=600)

    kit = ganzoo("check-plugin", "ganzoo-wgangp")
    assert kit.returncode == 0, kit.stdout[-3000:] + kit.stderr[-2000:]
    run = ganzoo("run", "my-wgangp", "--data", "fake", "--batch-size", "128", "--g-width", "8", "--d-width", "8",
                 "--z-dim", "8", "--device", "cpu", "--epochs", "1", "--log-every", "4", "--samples", "4",
                 "--out", str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["n_critic"] == 5 and config["options"] == {"discriminator": {"batchnorm": False}}
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "critic_gap" in record


def test_plugins_doc_lists_every_builtin_plugin():

    from ganzoo.plugins import registries

    doc = (REPO / "docs" / "plugins.md").read_text()
    table = doc[doc.index("$ ganzoo plugins"):]
    table = table[:table.index("```")]
    missing = [p.name for p in registries().plugins if p.source == "built-in" and f"│ {p.name} " not in table]
    assert not missing, f"docs/plugins.md's `ganzoo plugins` table lacks {missing}"


# -- every snippet that registers something passes the conformance kit it tells authors to run ----------------

def registering_snippets() -> list[tuple[str, str]]:
    """(the heading above it, its code) for each ```python block of docs/plugins.md that defines a hook."""
    found = []
    for match in BLOCK.finditer(DOC):
        lang, code = match.groups()
        if lang == "python" and re.search(r"^@hookimpl\ndef register_\w+", code, re.M) and "import" in code:
            heading = re.findall(r"^#{2,3} (.+)$", DOC[:match.start()], re.M)[-1].strip("`")
            found.append((heading, code))
    return found


SNIPPETS = registering_snippets()


@pytest.mark.parametrize("heading,code", SNIPPETS, ids=[h for h, _ in SNIPPETS])
def test_every_snippet_passes_the_conformance_kit(heading, code, monkeypatch, request, tmp_path):
    from ganzoo.testing import plugin_checks, run_checks
    from helpers import install_plugin

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    for other, text in SNIPPETS:          # all of them installed, each its own plugin: one may use another's data
        module = types.ModuleType("doc_snippet")
        exec(compile(text, f"docs/plugins.md ({other})", "exec"), module.__dict__)
        hooks = {hook: fn for hook, fn in vars(module).items() if hook in HOOKS}
        install_plugin(monkeypatch, request, "doc_snippet_" + re.sub(r"\W+", "_", other).strip("_").lower(), **hooks)
    name = "doc_snippet_" + re.sub(r"\W+", "_", heading).strip("_").lower()
    info = {p.name: p for p in registries().plugins}[name]
    assert info.error is None, info.error
    results = run_checks(plugin_checks(name))
    failed = [f"{r.check}: {r.error}" for r in results if not r.passed]
    assert not failed, "\n".join(failed)


def test_plugins_doc_names_the_distribution_and_says_it_is_not_on_the_index_yet():
    assert "Depend on `ganzoo`" not in DOC and "Depend on **`pyganzoo`**" in DOC
    assert "not on the package index yet" in DOC and "the distribution's name on the package index" not in DOC
    assert "pip install -e path/to/ganzoo" in DOC
