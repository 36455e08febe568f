"""Third-party plugins are found through the `ganzoo` entry-point group; a broken one is reported, not fatal.

Each test installs a tiny distribution (a module + its .dist-info) into a temporary folder and
runs the real `ganzoo` CLI in a fresh process with that folder on PYTHONPATH.
"""

import pytest
import textwrap
from helpers import install, run_installed

PLUGIN = textwrap.dedent('''
    from torch import nn
    from ganzoo import hookimpl, ModelSpec

    class TinyGenerator(nn.Module):
        """A one-layer generator from a third-party package."""
        def __init__(self, *, image_size, channels, z_dim, width):
            super().__init__()
            self.z_dim, self.shape = z_dim, (channels, image_size, image_size)
            self.net = nn.Sequential(nn.Linear(z_dim, channels * image_size * image_size), nn.Tanh())
        def forward(self, z):
            return self.net(z).view(-1, *self.shape)

    @hookimpl
    def register_generators(register):
        register("tinygen", TinyGenerator)

    @hookimpl
    def register_models(register):
        register("tinygan", ModelSpec(generator="tinygen", discriminator="mlp", loss="minimax"),
                 "a third-party model")
''')


@pytest.mark.slow
def test_entry_point_plugin_is_discovered_and_trains(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install(site, "ganzoo-tiny", "ganzoo_tiny", PLUGIN)
    listed = run_installed(site, "list")
    assert listed.returncode == 0, listed.stderr
    assert "tinygen" in listed.stdout and "tinygan" in listed.stdout and "ganzoo_tiny" in listed.stdout
    plugins = run_installed(site, "plugins")
    assert "ganzoo-tiny" in plugins.stdout and "1.2.3" in plugins.stdout and "tinygen" in plugins.stdout
    run = run_installed(site, "run", "tinygan", "--data", "fake", "--epochs", "1", "--batch-size", "128", "--d-width", "4",
                 "--out", str(tmp_path / "run"), "--device", "cpu")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run" / "tinygan.safetensors").is_file()


@pytest.mark.slow
def test_broken_plugin_is_listed_with_its_error_and_ganzoo_still_works(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install(site, "ganzoo-broken", "ganzoo_broken", "import no_such_module_anywhere\n")
    install(site, "ganzoo-tiny", "ganzoo_tiny", PLUGIN)
    plugins = run_installed(site, "plugins")
    assert plugins.returncode == 0
    assert "ganzoo_broken" in plugins.stdout and "ModuleNotFoundError" in plugins.stdout
    listed = run_installed(site, "list")
    assert listed.returncode == 0 and "dcgan" in listed.stdout and "tinygan" in listed.stdout
    assert "ganzoo_broken" in listed.stderr                                 # warned about, once
    strict = run_installed(site, "list", strict=True)
    assert strict.returncode == 1 and "Plugin 'ganzoo_broken' failed to load" in strict.stderr
    assert "Traceback" not in strict.stderr


@pytest.mark.slow
def test_misspelled_hook_is_reported(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install(site, "ganzoo-typo", "ganzoo_typo",
            "from ganzoo import hookimpl\n\n@hookimpl\ndef register_generator(register):\n    pass\n")
    plugins = run_installed(site, "plugins")
    assert plugins.returncode == 0
    assert "ganzoo_typo" in plugins.stdout and "unknown hook" in plugins.stdout
