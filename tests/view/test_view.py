"""`ganzoo view` without a browser: what the catalog finds and says about each folder, what the viewer draws
(the commands' own samples, walks and arithmetic), the download, errors as sentences, and the command line.
tests/view/test_view_browser.py drives the app itself in Chromium."""

import hashlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import load_pretrained
from ganzoo.checkpoint import load_generator, save_generator
from ganzoo.cli import main
from ganzoo.errors import GanzooError
from ganzoo.plugins import registries
from ganzoo.preflight import run_lock
from ganzoo.registry import Registry
from ganzoo.sampling import sample, to_uint8
from ganzoo.view import catalog, drawing, pictures
from ganzoo.view.catalog import EMA, PLAIN, RAW, Entry, discover
from ganzoo.view.drawing import Generators, Point

TINY = ["--data", "fake", "--batch-size", "32", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
        "--log-every", "4", "--device", "cpu", "--threads", "1", "--epochs", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny runs: dcgan with an averaged G (EMA and raw G both exist) and a conditional cdcgan."""
    root = tmp_path_factory.mktemp("view") / "runs"
    before = torch.get_num_threads()
    try:
        assert main(["run", "dcgan", *TINY, "--ema", "0.9", "--out", str(root / "ema")]) == 0
        assert main(["run", "cdcgan", *TINY, "--out", str(root / "cond")]) == 0
    finally:
        torch.set_num_threads(before)
    return root


@pytest.fixture
def folder(runs, tmp_path):
    """A copy of the runs to damage."""
    return shutil.copytree(runs, tmp_path / "runs")


def by_key(entries):
    return {Path(e.key).name if e.key else e.key: e for e in entries}


def test_discover_describes_each_run(runs):
    entries = by_key(discover([runs]))
    ema, cond = entries["ema"], entries["cond"]
    assert (ema.kind, ema.model, ema.data, ema.resolution, ema.status) == ("run", "dcgan", "fake", "32x32x1",
                                                                            "finished")
    assert ema.progress == "1 of 1 epochs" and list(ema.loaders) == [EMA, RAW]
    assert (cond.model, cond.conditional, list(cond.loaders)) == ("cdcgan", 4, [PLAIN])
    assert ema.row()[0] == ema.key and ema.key == f"{runs}/ema"


def test_scores_come_from_eval_every_or_ganzoo_eval(folder):
    assert main(["eval", str(folder / "cond"), "--metrics", "mnist_classes", "-n", "20", "--device", "cpu"]) == 0
    report = json.loads((folder / "cond" / "cdcgan.eval.json").read_text())
    assert by_key(discover([folder]))["cond"].scores == report["rows"]["cdcgan.safetensors"]
    with open(folder / "ema" / "metrics.jsonl", "a") as f:             # an --eval-every record wins
        f.write(json.dumps({"step": 32, "epoch": 1.0, "eval_n": 100, "mnist_fd": 123.5, "time": 0}) + "\n")
    assert by_key(discover([folder]))["ema"].scores == {"mnist_fd": 123.5}


def test_a_bad_or_foreign_file_is_a_row_with_its_sentence(folder):
    (folder / "truncated.safetensors").write_bytes((folder / "ema" / "dcgan.safetensors").read_bytes()[:500])
    torch_zip = b"PK\x03\x04" + b"\0" * 60
    (folder / "model.pt").write_bytes(torch_zip)
    foreign = folder / "notes"
    foreign.mkdir()
    (foreign / "config.json").write_text('{"learning_rate": 3}')                # someone else's config
    (foreign / "README.txt").write_text("hello")                             # not a weights file: not listed
    (folder / "cond" / "cdcgan.safetensors").write_bytes(b"\x00" * 100)      # a run whose generator is damaged
    entries = by_key(discover([folder, folder / "missing"]))
    rows = {k: (e.status, e.message) for k, e in entries.items()}
    assert rows["truncated.safetensors"][0] == "error"
    assert "not a readable safetensors file" in rows["truncated.safetensors"][1]
    assert rows["model.pt"] == ("error", f"{folder / 'model.pt'} looks like a pickle file; ganzoo loads weights "
                                         f"only from .safetensors files.")
    assert rows["notes"][0] == "error" and "not a ganzoo run config" in rows["notes"][1]
    assert rows["cond"][0] == "error" and "cdcgan.safetensors" in rows["cond"][1]
    assert rows["missing"][0] == "error" and rows["missing"][1].startswith(f"{folder / 'missing'} does not exist")
    assert rows["ema"][0] == "finished" and "README.txt" not in rows
    for e in entries.values():                                                 # one line each, never empty
        assert e.status != "error" or (e.message and "\n" not in e.message and "Traceback" not in e.message)
    with pytest.raises(GanzooError, match="not a readable safetensors"):      # drawing from it: the sentence
        Generators().get(entries["cond"])


def test_status_stopped_diverged_training(folder):
    run = folder / "ema"
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "epochs": 3}))  # its checkpoint: after epoch 1 of 3
    entry = by_key(discover([folder]))["ema"]
    assert entry.status == "stopped" and entry.progress == "1 of 3 epochs"
    assert entry.message.endswith(f"ganzoo run --resume {run}")
    with run_lock(run):                                                       # a process trains in it
        assert by_key(discover([folder]))["ema"].status == "training"
    assert by_key(discover([folder]))["ema"].status == "stopped"                 # the lock is gone with it
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 40, "epoch": 1.2, "loss_d": float("nan"), "loss_g": 1.0}) + "\n")
    entry = by_key(discover([folder]))["ema"]
    assert entry.status == "diverged" and "step 40" in entry.message


def test_a_second_source_of_generators_plugs_in(runs, monkeypatch):
    weights = runs / "cond" / "cdcgan.safetensors"

    def pretrained(paths):          # what a registry of pretrained generators would yield
        yield Entry(key="pretrained/cdcgan-fake", kind="pretrained", model="cdcgan", status="ready",
                    loaders={PLAIN: lambda: load_generator(weights)})

    def broken(paths):
        raise RuntimeError("the registry could not be read")

    monkeypatch.setattr(catalog, "sources", lambda: [catalog.find_runs, pretrained, broken])
    entries = {e.key: e for e in discover([runs])}
    G, config = Generators().get(entries["pretrained/cdcgan-fake"])
    reference, _ = load_generator(weights)
    assert torch.equal(drawing.grid(G, config, 8, 3), sample(reference, config, 8, seed=3))
    assert entries["broken"].status == "error" and "the registry could not be read" in entries["broken"].message



def card_for(weights: Path, **changes) -> dict:
    """A complete card for a weights file (its real sha256), as a plugin registers it."""
    card = {"description": "a test generator", "model": "dcgan", "data": "fake",
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "precision": "float32",
            "command": "ganzoo run dcgan --data fake", "commit": "test", "date": "2030-01-01", "protocol": "tiny",
            "evaluation": {"n": 200, "seed": 0, "metrics": ["mnist_fd"]},
            "scores": {"mnist_fd": {"value": 12.5, "low": 0.0, "high": 1e9}}, "real": {"mnist_fd": 0.1}}
    return {**card, **changes}


def test_the_pretrained_generators_are_listed_with_no_runs(tmp_path):
    """Nothing under the paths named: the shipped pretrained generators are still there to draw, as
    load_pretrained draws them, with their cards' headline scores."""
    shipped = [e for e in registries().pretrained if e.factory is not None]
    assert shipped, "the built-in plugins ship at least one pretrained generator (dcgan-mnist)"
    entries = {e.key: e for e in discover([tmp_path / "runs"])}
    assert entries[str(tmp_path / "runs")].status == "error"                  # the missing folder: a row
    generators = Generators()
    for registered in shipped:
        entry = entries[f"pretrained/{registered.name}"]
        card = registered.card
        assert (entry.kind, entry.status, entry.model, entry.data) == ("pretrained", "pretrained", card["model"],
                                                                       card["data"])
        assert entry.scores == {k: card["scores"][k]["value"] for k in card["headline"]}
        assert entry.message == card["command"] and entry.path == Path(registered.factory)   # how it was made
        G, config = generators.get(entry)
        reference = load_pretrained(registered.name)
        assert torch.equal(drawing.grid(G, config, 8, 5), reference.sample(8, seed=5))
    pytest.importorskip("gradio")
    from ganzoo.view.app import _first_drawable
    assert _first_drawable(discover([tmp_path / "runs"])).startswith("pretrained/")   # what the page opens on


def test_a_pretrained_file_not_here_or_changed_is_a_row(runs, tmp_path):
    weights = tmp_path / "g.safetensors"
    shutil.copy(runs / "ema" / "dcgan.safetensors", weights)
    remote = Registry("pretrained generator").register(
        "remote-one", None, card=card_for(weights, url="http://127.0.0.1:9/g.safetensors"), plugin="test")
    changed = Registry("pretrained generator").register("changed-one", weights, card=card_for(weights), plugin="test")
    with registries().pretrained.temporary(remote), registries().pretrained.temporary(changed):
        entries = {e.key: e for e in discover([runs])}
        assert entries["pretrained/changed-one"].status == "pretrained"
        remote_row = entries["pretrained/remote-one"]                          # listing never downloads
        assert remote_row.status == "not downloaded" and not remote_row.loaders
        assert "ganzoo sample remote-one" in remote_row.row()[-1]
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF                                                          # one weight's bits
        weights.write_bytes(bytes(data))
        entry = {e.key: e for e in discover([runs])}["pretrained/changed-one"]
        assert entry.status == "error" and "its card names, so it was changed or damaged" in entry.message


def test_walk_ends_are_the_two_samples_and_the_path_is_the_analysis(runs):
    entry = by_key(discover([runs]))["ema"]
    G, config = Generators().get(entry, EMA)
    a, b = Point(seed=4, index=5), Point(seed=9, index=0)
    for t, point in ((0.0, a), (1.0, b)):
        for mode in ("slerp", "lerp"):
            image = drawing.walk_point(G, config, a, b, t, mode)
            expected = drawing.grid(G, config, point.index + 1, point.seed)[point.index]
            assert torch.equal(to_uint8(image), to_uint8(expected))
    middle = {mode: drawing.walk_point(G, config, a, b, 0.5, mode) for mode in ("slerp", "lerp")}
    assert not torch.equal(middle["slerp"], middle["lerp"])
    strip = drawing.walk_strip(G, config, a, b, steps=5)                        # ganzoo interpolate's row
    assert torch.allclose(strip[2], middle["slerp"], atol=1e-5)
    with pytest.raises(GanzooError, match="between 0 and 1"):
        drawing.walk_point(G, config, a, b, 1.5)


def test_ema_and_raw_g_are_the_two_generators(runs):
    entry = by_key(discover([runs]))["ema"]
    generators = Generators()
    (ema, config), (raw, _) = generators.get(entry, EMA), generators.get(entry, RAW)
    saved, _ = load_generator(runs / "ema" / "dcgan.safetensors")              # the generator file holds the EMA
    assert torch.equal(drawing.grid(ema, config, 16, 0), sample(saved, config, 16, seed=0))
    assert not torch.equal(drawing.grid(raw, config, 16, 0), drawing.grid(ema, config, 16, 0))


def test_the_download_is_the_png_ganzoo_sample_writes(runs, tmp_path):
    pytest.importorskip("gradio")
    from ganzoo.view.app import Viewer, download_png

    viewer = Viewer([runs])
    key = by_key(viewer.entries())["cond"].key
    uri = download_png(viewer, json.dumps({"key": key, "generator": PLAIN, "cls": 2, "seed": 7, "n": 10}))
    assert main(["sample", str(runs / "cond"), "--class", "2", "--seed", "7", "-n", "10", "--out",
                 str(tmp_path / "s.png"), "--device", "cpu"]) == 0
    assert uri == pictures.data_uri((tmp_path / "s.png").read_bytes())
    assert download_png(viewer, json.dumps({"key": key, "generator": PLAIN, "cls": 9, "seed": 7, "n": 10})) == ""


def test_the_class_picker_draws_that_class(runs):
    G, config = Generators().get(by_key(discover([runs]))["cond"])
    assert sample(G, config, 6, seed=1, cls=3).shape[0] == 6
    assert torch.equal(drawing.grid(G, config, 6, 1, 3), sample(G, config, 6, seed=1, cls=3))
    assert not torch.equal(drawing.grid(G, config, 6, 1, 3), drawing.grid(G, config, 6, 1, 1))
    assert drawing.sample_titles(config, 3, 1, None) == [f"sample {i} of seed 1, class {i}" for i in range(3)]
    with pytest.raises(GanzooError, match="one of the model's 4 classes"):
        drawing.grid(G, config, 6, 1, 7)


def test_arithmetic_is_ganzoo_arithmetic(runs, tmp_path):
    G, config = Generators().get(by_key(discover([runs]))["ema"], EMA)
    board = drawing.arithmetic(G, config, 2, ("0,1", "2", "3,4"))
    out = tmp_path / "a.png"
    assert main(["arithmetic", str(runs / "ema"), "0,1 - 2 + 3,4", "--seed", "2", "--out", str(out),
                 "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(board), np.asarray(Image.open(out).convert("RGB")))
    with pytest.raises(GanzooError, match="B is empty"):
        drawing.arithmetic(G, config, 2, ("0,1", "", "3"))


def test_new_weights_are_drawn_once_they_land(folder):
    generators = Generators()
    entry = by_key(discover([folder]))["cond"]
    G, config = generators.get(entry)
    before = drawing.grid(G, config, 4, 0)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.05)
    save_generator(folder / "cond" / "cdcgan.safetensors", G, config)        # as a training run rewrites it
    G2, _ = generators.get(by_key(discover([folder]))["cond"])
    assert G2 is not G and not torch.equal(drawing.grid(G2, config, 4, 0), before)


def test_pictures_are_exact_pngs_and_curves(runs):
    image = torch.rand(1, 8, 8) * 2 - 1
    decoded = np.asarray(Image.open(io.BytesIO(pictures.png(image))))
    assert np.array_equal(decoded, to_uint8(image)[0].numpy())
    records = [json.loads(line) for line in (runs / "ema" / "metrics.jsonl").read_text().splitlines()]
    records.append({"step": 32, "epoch": 1.0, "eval_n": 10, "mnist_fd": 5.0, "time": 0})
    assert pictures.curve_names(records) == (["loss_d", "loss_g"], ["d_real", "d_fake"], ["mnist_fd"])
    curves = Image.open(io.BytesIO(pictures.curves_png(records)))
    assert curves.width > 3 * curves.height                                    # three panels side by side
    assert pictures.curves_png([]) is None
    html = pictures.grid_html(torch.zeros(5, 1, 4, 4), first=10, params={"seed": 1})
    assert html.count('class="cell"') == 5 and 'data-index="14"' in html and "repeat(3," in html


def test_the_command_line(runs, monkeypatch, capsys):
    assert main(["view", str(runs), "--port", "70000"]) == 1
    assert "--port must lie between 1 and 65535" in capsys.readouterr().err
    assert main(["view", str(runs), "--threads", "0"]) == 1
    assert "--threads must be at least 1" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "gradio", None)                           # the extra not installed
    monkeypatch.delitem(sys.modules, "ganzoo.view.app", raising=False)
    environment = dict(os.environ)
    assert main(["view", str(runs)]) == 1
    assert "pip install 'pyganzoo[view]'" in capsys.readouterr().err
    assert dict(os.environ) == environment                                     # its settings undone, its folder gone


def test_a_compare_report_opens_as_one_view(runs, tmp_path):
    pytest.importorskip("gradio")
    from ganzoo.view.app import Viewer, compare_view

    report = tmp_path / "report"
    assert main(["compare", str(runs / "ema"), str(runs / "cond"), "--data", "fake", "--metrics", "mnist_classes",
                 "-n", "20", "--out", str(report), "--device", "cpu"]) == 0
    viewer = Viewer([runs, report])
    entries = {e.key: e for e in viewer.entries()}
    found = entries[str(report)]
    assert found.kind == "compare" and found.members == [f"{runs}/ema", f"{runs}/cond"]   # listed once, by path
    assert sum(e.kind == "run" for e in entries.values()) == 2
    shown = compare_view(viewer, found.key, found.members, 4, 0)
    assert shown.count('class="ganzoo-grid"') == 2 and "the report's table" in shown
    results = json.loads((report / "results.json").read_text())
    covered = results["contenders"]["ema"]["runs"][0]["scores"]["classes_covered"]
    assert f"<td>{covered:g}</td>" in shown or f"<td>{covered}</td>" in shown
