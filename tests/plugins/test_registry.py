import pytest

from ganzoo import GanzooError, hookimpl
from ganzoo.plugins import collect, load_plugins, make_plugin_manager, registries
from ganzoo.registry import Registry


def test_unknown_name_lists_known_and_closest():
    reg = Registry("generator")
    reg.register("dcgan", object, "a", plugin="p")
    reg.register("mlp", object, "b", plugin="p")
    with pytest.raises(GanzooError) as err:
        reg.get("dcgna")
    message = str(err.value)
    assert "Did you mean 'dcgan'?" in message
    assert "dcgan, mlp" in message
    assert "\n" not in message


def test_unknown_name_without_close_match_has_no_guess():
    reg = Registry("loss")
    reg.register("minimax", object, plugin="p")
    with pytest.raises(GanzooError, match="Unknown loss 'zzzz'. Known: minimax.") as err:
        reg.get("zzzz")
    assert "Did you mean" not in str(err.value)


def test_same_name_twice_names_both_plugins():
    reg = Registry("dataset")
    reg.register("mnist", object, plugin="first")
    with pytest.raises(GanzooError, match="registered twice: by plugin 'first' and by plugin 'second'"):
        reg.register("mnist", object, plugin="second")


def test_description_defaults_to_docstring_first_line():
    def factory():
        """Makes things.

        More text."""

    reg = Registry("loss")
    reg.register("x", factory, plugin="p")
    assert reg.get("x").description == "Makes things."


def test_builtins_register_through_hooks():
    regs = registries()
    assert {"dcgan", "basicgan"} <= set(regs.models.names())
    assert {"dcgan", "mlp"} <= set(regs.generators.names())
    assert {"nonsaturating", "minimax"} <= set(regs.losses.names())
    assert {"mnist", "folder", "fake"} <= set(regs.datasets.names())
    assert regs.generators.get("dcgan").plugin == "ganzoo_plugins.dcgan"
    assert all(p.error is None for p in regs.plugins)
    for registry in regs.all():
        for entry in registry:
            assert entry.description, f"{registry.kind} {entry.name} has no description"


class Clashing:
    @hookimpl
    def register_generators(self, register):
        register("brand-new", object)
        register("dcgan", object)


def _registries_with(plugin, name):
    pm = make_plugin_manager()
    infos = load_plugins(pm, entry_points=False)
    pm.register(plugin, name=name)
    return collect(pm, infos)


def test_plugin_clash_disables_the_second_plugin_and_names_both():
    regs = _registries_with(Clashing(), "clasher")
    info = {p.name: p for p in regs.plugins}["clasher"]
    assert "'ganzoo_plugins.dcgan' and by plugin 'clasher'" in info.error
    # all or nothing: the clashing plugin's other entry is not left behind
    assert "brand-new" not in regs.generators
    assert regs.generators.get("dcgan").plugin == "ganzoo_plugins.dcgan"


def test_plugin_clash_is_fatal_when_strict(monkeypatch):
    monkeypatch.setenv("GANZOO_STRICT_PLUGINS", "1")
    with pytest.raises(GanzooError, match="registered twice"):
        _registries_with(Clashing(), "clasher")


class Raising:
    @hookimpl
    def register_losses(self, register):
        raise RuntimeError("boom")


def test_plugin_whose_hook_raises_is_reported_not_fatal():
    regs = _registries_with(Raising(), "raiser")
    info = {p.name: p for p in regs.plugins}["raiser"]
    assert "register_losses failed: RuntimeError: boom" == info.error
    assert "nonsaturating" in regs.losses
