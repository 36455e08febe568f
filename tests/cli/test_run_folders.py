"""A finished run folder is what every command reads: sample and eval take it, sample number i is the same z
in every command, a stored data path works from any folder, the progress lines stay whole in a log, the
analyses name their pictures by their arguments."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.checkpoint import load_generator
from ganzoo.cli import main
from ganzoo.config import RunConfig
from ganzoo.errors import GanzooError
from ganzoo.evaluate import generate_images
from ganzoo.runfiles import read_metrics
from ganzoo.sampling import latents, save_grid, to_uint8

from helpers import TINY as TINY_FLAGS, run_cli

TINY = [*TINY_FLAGS, "--log-every", "4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One finished tiny run (1 epoch of 32 steps on fake data), shared by the read-only checks."""
    out = tmp_path_factory.mktemp("claims") / "run"
    before = torch.get_num_threads()
    try:
        assert main(["run", "dcgan", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    return out


@pytest.mark.slow
def test_sample_and_eval_take_a_run_folder(run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", run, "-n", "4", "--out", tmp_path / "grid.png")
    assert code == 0, err
    code, stdout, err = run_cli(capsys, "eval", run, "--metrics", "mnist_classes", "-n", "50")
    assert code == 0, err
    report = json.loads((run / "dcgan.eval.json").read_text())               # beside the generator file
    assert report["weights"] == str(run / "dcgan.safetensors") and report["n"] == 50
    assert "real data (train)" in stdout


@pytest.mark.slow
def test_sample_number_i_is_the_same_z_in_every_command(run, tmp_path, capsys):
    generator, config = load_generator(run)
    with torch.inference_mode():
        expected = generator(latents(config, 3, range(6)))                   # what sheet, arithmetic... draw
    code, _, err = run_cli(capsys, "sample", run, "-n", "6", "--seed", "3", "--nrow", "6", "--out", tmp_path / "a.png")
    assert code == 0, err
    save_grid(expected, tmp_path / "b.png", nrow=6)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))
    # eval scores samples 0..n-1 of its seed: the first of 8 are the 4 of a 4-sample draw, and sample i of `sample`
    assert torch.equal(generate_images(generator, config, 8, seed=3)[:6], to_uint8(expected))
    # and a number does not depend on how many are drawn
    assert torch.equal(latents(config, 3, [4]), latents(config, 3, range(6))[4:5])


def test_stored_data_path_is_absolute_and_used_from_anywhere(tmp_path, capsys, monkeypatch):
    """--data-dir typed relative to one folder; the run resumes, and its config reads, from another."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    (here / "pics").mkdir(parents=True)
    elsewhere.mkdir()
    for i in range(64):
        Image.new("L", (16, 16), i * 4).save(here / "pics" / f"{i}.png")
    monkeypatch.chdir(here)
    code, _, err = run_cli(capsys, "run", "dcgan", "--data", "folder", "--data-dir", "pics", "--image-size", "16",
                           "--batch-size", "32", "--g-width", "8", "--d-width", "8", "--epochs", "1",
                           "--device", "cpu", "--out", "run")
    assert code == 0, err
    saved = json.loads((here / "run" / "config.json").read_text())
    assert saved["data_dir"] == str(here / "pics")                          # absolute, and still the path typed
    monkeypatch.chdir(elsewhere)
    code, _, err = run_cli(capsys, "run", "--resume", here / "run", "--epochs", "2")
    assert code == 0, err
    assert read_metrics(here / "run" / "metrics.jsonl")[-1]["step"] == 4
    # a stored folder that is gone (or was hand-edited into a relative one): a sentence saying what to pass
    with pytest.raises(GanzooError, match="is not a folder from here; pass --data-dir"):
        RunConfig(data_dir="pics").stored_data_dir()


@pytest.mark.slow
def test_progress_lines_are_whole_in_a_log(run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "run", "--resume", run, "--epochs", "2", "--log-every", "8")
    assert code == 0, err
    lines = [line for line in err.splitlines() if "img/s" in line]
    assert lines and all("…" not in line and re.search(r"loss_D [\d.]+ +loss_G [\d.]+ +D\(x\) [\d.]+ +D\(G\(z\)\) "
                                                     r"[\d.]+ +[\d,]+ img/s", line) for line in lines), lines
    # not a terminal: each log window's line as plain text (epoch 2's 32 steps, every 8), not only the last bar
    windows = [line for line in lines if re.match(r"epoch 2/2 step (40|48|56|64): ", line)]
    assert len(windows) == 4, lines
    bar = lines[-1]                                   # the bar's two clocks say which is which
    assert re.search(r"elapsed \d+:\d\d:\d\d left \d+:\d\d:\d\d", bar), bar


@pytest.mark.slow
def test_analysis_outputs_are_named_by_their_arguments(run, capsys):
    for expression in ("0,1 - 2 + 3", "4 - 5 + 6"):
        code, _, err = run_cli(capsys, "arithmetic", run, expression, "--variations", "2")
        assert code == 0, err
    for maps in ("0,1", "2"):
        code, _, err = run_cli(capsys, "dropout", run, "--maps", maps, "-n", "4")
        assert code == 0, err
    names = sorted(p.name for p in (run / "analysis").iterdir())
    assert len([n for n in names if n.startswith("arithmetic")]) == 2, names
    assert len([n for n in names if n.startswith("dropout")]) == 2, names


def test_a_sample_grid_is_what_torchvisions_save_image_writes(tmp_path):
    """save_grid writes PNGs with PIL alone (torchvision is slow to import): the same layout, padding and pixels
    as torchvision's save_image(normalize=True, value_range=(-1, 1)), up to a rounding tie."""
    from torchvision.utils import save_image

    for n, channels, nrow in ((64, 1, 8), (10, 3, 4), (7, 1, 3), (1, 3, 8), (5, 1, 10)):
        images = torch.rand(n, channels, 12, 12, generator=torch.Generator().manual_seed(n)) * 2.2 - 1.1
        save_image(images, tmp_path / "theirs.png", nrow=nrow, normalize=True, value_range=(-1, 1))
        save_grid(images, tmp_path / "ours.png", nrow=nrow)
        theirs = np.asarray(Image.open(tmp_path / "theirs.png")).astype(int)
        ours = np.asarray(Image.open(tmp_path / "ours.png")).astype(int)
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 1, (n, channels, nrow)
        assert (ours != theirs).mean() < 1e-3


def test_the_lock_exists_while_a_run_holds_the_folder_and_goes_when_it_ends(tmp_path):
    """README: `.lock` while a process trains in the folder; a second run into it is refused; gone afterwards."""
    from ganzoo.preflight import run_lock

    with run_lock(tmp_path):
        assert (tmp_path / ".lock").read_text() == str(__import__("os").getpid())
        with pytest.raises(GanzooError, match="in use by another ganzoo process"):
            with run_lock(tmp_path):
                pass
    assert not (tmp_path / ".lock").exists()
    with pytest.raises(RuntimeError):               # a run that fails lets go of it too
        with run_lock(tmp_path):
            raise RuntimeError("step 3 failed")
    assert not (tmp_path / ".lock").exists()
    with run_lock(tmp_path):                        # and the next run takes the folder again
        assert (tmp_path / ".lock").exists()


@pytest.mark.slow
def test_a_finished_run_leaves_no_lock(run):
    assert not (run / ".lock").exists()


def test_runfiles_lists_every_file_the_readme_says_a_run_folder_holds():
    import ganzoo.runfiles
    from helpers import REPO

    readme = (REPO / "README.md").read_text()
    at = readme.index("A run folder holds")
    named = re.findall(r"`([^`\s]+)`", readme[at:readme.index("ganzoo/runfiles.py", at)])
    files = [n for n in named if "/" in n or "." in n.strip("/")]
    listing = ganzoo.runfiles.__doc__
    missing = [n for n in files if n.split("/")[0].replace("NNN", "").rstrip("_") not in listing]
    assert "<model>.eval.json" in files and not missing, missing
