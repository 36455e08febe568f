"""What a user sees when the plugin that provides a model failed to load."""

import pytest

from ganzoo import GanzooError, hookimpl
from ganzoo.plugins import collect, load_plugins, make_plugin_manager
from ganzoo.run import make_config


class RaisesWhileRegistering:
    @hookimpl
    def register_models(self, register):
        raise ImportError("cannot import name 'spectral_norm'")


def test_unknown_model_names_the_plugins_that_failed():
    pm = make_plugin_manager()
    infos = load_plugins(pm, entry_points=False)
    pm.register(RaisesWhileRegistering(), name="ganzoo_fancy")
    regs = collect(pm, infos)
    with pytest.raises(GanzooError) as err:
        make_config("fancygan", {"data": "fake"}, regs)
    message = str(err.value)
    assert message.startswith("Unknown model 'fancygan'.")
    assert "Plugins that failed to load may provide it ('ganzoo_fancy': register_models failed: ImportError: " \
           "cannot import name 'spectral_norm'); see `ganzoo plugins`." in message
    assert make_config("dcgan", {"data": "fake"}, regs).model == "dcgan"        # the rest keeps working
