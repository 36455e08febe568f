"""The example third-party plugin in examples/sndcgan, installed through its entry point, works end to end.

Without the package installed, the test installs it the way pip would for an editable install (its
source folder on the path and a .dist-info carrying the entry points of its pyproject.toml) and runs
the real `ganzoo` command in a fresh process. Where the package is installed already (CI installs it
with pip), it checks that installed copy, after making sure it is this checkout's code.
"""

import filecmp
import json
import math
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from PIL import Image

from ganzoo import DISTRIBUTION
from helpers import REPO

EXAMPLE = REPO / "examples" / "sndcgan"
PROJECT = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str | None:
    """A PYTHONPATH on which the example is installed, or None when it is installed in this environment."""
    installed = [ep for ep in importlib.metadata.entry_points(group="ganzoo") if ep.value == "ganzoo_sndcgan"]
    if installed:
        package = Path(importlib.util.find_spec("ganzoo_sndcgan").origin).parent
        same = filecmp.dircmp(package, EXAMPLE / "ganzoo_sndcgan", ignore=["__pycache__"])
        assert not (same.diff_files or same.left_only or same.right_only), (
            f"the installed ganzoo-sndcgan ({package}) is not this checkout's; "
            f"reinstall: pip install ./examples/sndcgan")
        return None
    folder = tmp_path_factory.mktemp("site")
    info = folder / f"ganzoo_sndcgan-{PROJECT['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PROJECT['name']}\nVersion: {PROJECT['version']}\n")
    entry_points = "".join(f"{k} = {v}\n" for k, v in PROJECT["entry-points"]["ganzoo"].items())
    (info / "entry_points.txt").write_text("[ganzoo]\n" + entry_points)
    return os.pathsep.join([str(folder), str(EXAMPLE)])


def ganzoo(site, *args, cwd=None):
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    env.pop("GANZOO_STRICT_PLUGINS", None)
    if site:
        env["PYTHONPATH"] = site
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_entry_point_is_declared():
    assert PROJECT["entry-points"]["ganzoo"] == {"sndcgan": "ganzoo_sndcgan"}
    assert any(dep.startswith(f"{DISTRIBUTION}>=") for dep in PROJECT["dependencies"])


@pytest.mark.slow
def test_listed_and_shown_with_what_it_registered(site):
    plugins = ganzoo(site, "plugins")
    assert plugins.returncode == 0, plugins.stderr
    row = next(line for line in plugins.stdout.splitlines() if "ganzoo-sndcgan" in line)
    assert "sndcgan" in row and PROJECT["version"] in row and "ok" in row
    assert "loss: hinge" in plugins.stdout and "discriminator: sndcgan" in plugins.stdout
    listed = ganzoo(site, "list")
    assert listed.returncode == 0 and "SN-DCGAN (Miyato et al. 2018)" in listed.stdout
    assert "Hinge loss (Lim & Ye 2017): D minimises E[relu(1 - D(x))]" in listed.stdout   # brackets survive
    assert listed.stderr == ""                                                             # no plugin failed


@pytest.mark.slow
def test_passes_the_conformance_kit(site):
    result = ganzoo(site, "check-plugin", "ganzoo-sndcgan")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sndcgan: all 18 checks passed" in result.stdout
    for kind, name in (("discriminator", "sndcgan"), ("loss", "hinge"), ("model", "sndcgan")):
        assert any(kind in line and name in line and "pass" in line for line in result.stdout.splitlines())


@pytest.mark.slow
def test_trains_and_samples(site, tmp_path):
    # (resuming is the kit's checkpoint round trip, which the previous test ran)
    tiny = ["--data", "fake", "--batch-size", "64", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
            "--device", "cpu", "--samples", "16", "--log-every", "4"]
    run = ganzoo(site, "run", "sndcgan", *tiny, "--epochs", "1", "--out", str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run" / "samples" / "epoch_001.png").is_file()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 12, 16]
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in records)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["generator"], config["discriminator"], config["loss"]) == ("dcgan", "sndcgan", "hinge")
    sample = ganzoo(site, "sample", str(tmp_path / "run" / "sndcgan.safetensors"), "-n", "4",
                    "--out", str(tmp_path / "grid.png"))
    assert sample.returncode == 0, sample.stderr
    assert Image.open(tmp_path / "grid.png").size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)


@pytest.mark.slow
def test_its_own_test_suite_passes(site):
    """The example's tests (examples/sndcgan/tests) run as its author would run them, against this checkout;
    all but its conformance test, which is the kit test_passes_the_conformance_kit just ran."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if site:
        env["PYTHONPATH"] = site
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests"),
                             "-k", "not test_conforms_to_ganzoo"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed, 1 deselected" in result.stdout and "failed" not in result.stdout


@pytest.mark.slow
def test_compares_with_dcgan(site, tmp_path):
    tiny = ["--data", "fake", "--batch-size", "64", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
            "--device", "cpu", "--log-every", "4", "--metrics", "mnist_fd", "-n", "100", "--curve-n", "100"]
    result = ganzoo(site, "compare", "dcgan", "sndcgan", *tiny, "--epochs", "1", "--out", str(tmp_path / "report"))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert list(results["contenders"]) == ["dcgan", "sndcgan"]
    assert all(e["runs"][0]["status"] == "ok" and e["runs"][0]["scores"]["mnist_fd"] > 0
               for e in results["contenders"].values())
    assert "| sndcgan | ok |" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.slow
def test_its_dependencies_resolve_offline_from_the_installed_checkout():
    """pyganzoo is not on the package index yet: a plugin's `pyganzoo>=0.1` must be satisfied by ganzoo installed
    from its checkout, with no index at all (docs/plugins.md, "Depending on ganzoo"); `ganzoo`, the unrelated
    package's name, must not be."""
    def resolve(requirements):
        return subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index",
                               "--disable-pip-version-check", *requirements], capture_output=True, text=True,
                              timeout=300)

    assert importlib.metadata.distribution(DISTRIBUTION).metadata["Name"] == "pyganzoo"
    dependencies = PROJECT["dependencies"]
    assert any(d.replace(" ", "").startswith("pyganzoo>=") for d in dependencies), dependencies
    done = resolve(dependencies)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Would install" not in done.stdout or "pyganzoo" not in done.stdout.split("Would install", 1)[1]
    wrong = resolve([d.replace("pyganzoo", "ganzoo") for d in dependencies])
    assert wrong.returncode != 0 and "ganzoo" in wrong.stderr
