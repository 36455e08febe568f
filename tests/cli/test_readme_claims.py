"""README claims checked against what they are computed from (the code, or the README's own figures)."""

from __future__ import annotations

import math
import re

from helpers import REPO

README = (REPO / "README.md").read_text()


def paragraph(start: str) -> str:
    at = README.index(start)
    return " ".join(README[at:README.index("\n\n", at)].split())


def test_how_long_is_the_arithmetic_of_the_measured_images_per_second():
    """'takes **A to B minutes**' is epochs x steps x batch over the slowest and fastest fp32 images/s quoted."""
    text = paragraph("**How long.**")
    epochs, steps, batch = map(int, re.search(r"(\d+) epochs of (\d+) steps .*?batch (\d+)", text).groups())
    low, high = map(int, re.search(r"takes \*\*(\d+) to (\d+) minutes\*\* in fp32", text).groups())
    fp32 = text[:text.index("On a CPU with native bf16")]
    rates = [float(r) for r in re.findall(r"(\d+)(?=(?:–\d+)? images/s)|–(\d+) images/s", fp32) for r in r if r]
    images = epochs * steps * batch
    assert math.floor(images / max(rates) / 60) == low
    assert math.ceil(images / min(rates) / 60) == high
    bf16 = float(re.search(r"([\d,]+) images/s there", text).group(1).replace(",", ""))
    assert round(images / bf16 / 60) == int(re.search(r"about (\d+) minutes", text).group(1))


def test_the_settings_table_and_ganzoo_run_agree_on_the_models_default(capsys):
    """docs/plugins.md's settings table names `model`'s default as `ganzoo run` behaves: no model is trained
    unless one is named, so the table must not claim one for the command."""
    from ganzoo.cli import main
    from ganzoo.plugins import registries

    docs = (REPO / "docs" / "plugins.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `model` |"))
    default = row.split("|")[3].strip()
    assert main(["run", "--epochs", "1", "--device", "cpu"]) == 1
    assert "Name a model to train" in capsys.readouterr().err
    assert default not in registries().models and "`ganzoo run`" in default and "needs one named" in default, row


# The DCGAN paper's choices (Radford et al. 2015: section 3 and 4, Fig. 1 at 64x64), as ganzoo's settings spell them.
PAPER = {"latent": "uniform", "z_dim": 100, "lr": 2e-4, "beta1": 0.5, "batch_size": 128, "g_width": 128}


def test_every_default_that_differs_from_the_paper_is_said_with_both_values():
    """'Faithful to the paper': each default that is not the paper's is named where the README says so, with
    its value and the paper's, and a pretrained file keeps its own latent whatever the default."""
    from ganzoo.checkpoint import load_generator
    from ganzoo.config import FIELDS
    from ganzoo.pretrained import weights_path

    text = paragraph("Defaults follow the DCGAN paper")
    differs = {name: paper for name, paper in PAPER.items() if FIELDS[name].default != paper}
    assert "latent" in differs and "g_width" in differs              # what ganzoo chose; the rest is the paper's
    section = text[text.index("Where the defaults differ from the paper"):]
    for name, paper in differs.items():
        flag, ours = FIELDS[name].flag, FIELDS[name].default
        assert f"`{flag} {ours}" in section and f"{flag} {paper}" in section, name
    _, config = load_generator(weights_path("dcgan-mnist", download=False))
    assert config.latent == "normal"                                   # measured so, and drawn so, by its file


def test_the_readme_says_what_line_to_look_for_under_torchruns_traceback(capsys, monkeypatch):
    """The README names the prefix ganzoo's one-line error really has, from rank 0 and from another rank."""
    from ganzoo.cli import _error

    text = paragraph("- **Reading an error under torchrun.**")
    assert "ChildFailedError" in text and "Root Cause" in text
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, quoted in (("0", "`error:`"), ("1", "`error: rank N: ...`")):
        monkeypatch.setenv("RANK", rank)
        _error("the data folder is empty.")
        line = capsys.readouterr().err.strip()
        prefix = quoted.strip("`").replace("rank N", f"rank {rank}").removesuffix(" ...")
        assert line.startswith(prefix) and quoted in text, (line, quoted)
