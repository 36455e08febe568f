"""Labellers are plugins: the register_labellers hook fills the registry `--labeller NAME` reads."""

import torch

from ganzoo.analysis.labellers import label, make_labeller
from ganzoo.plugins import PluginInfo, collect, load_plugins, make_plugin_manager, registries

from helpers import snippet_plugin


def test_the_probe_labeller_is_a_builtin_plugin():
    entry = registries().labellers.get("probe")
    assert entry.plugin == "ganzoo_plugins.labellers" and "D's hidden features" in entry.description


def test_a_plugin_labeller_from_the_docs_labels_images():
    pm = make_plugin_manager()
    infos = load_plugins(pm, entry_points=False)
    pm.register(snippet_plugin("register_labellers"), name="snippet")
    regs = collect(pm, infos + [PluginInfo("snippet", "0", "docs")])
    assert {"probe", "brightness"} <= set(regs.labellers.names())
    labeller = make_labeller("brightness", context=None, regs=regs)
    images = torch.stack([torch.full((1, 4, 4), v) for v in (-0.9, 0.5, -0.1, 0.8)])
    ids, confidence = label(labeller, images)
    assert ids.tolist() == [0, 1, 0, 1]
    assert confidence[3] > confidence[1] > 0                     # brighter: more surely class 1
