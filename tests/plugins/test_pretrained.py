"""Pretrained generators: registered by plugins with a model card, verified by sha256, sampled by name in every
command and from Python, downloaded once from a card's url (a local server here, never the internet), and each
shipped one scored against its card's interval, so a change that breaks the networks fails."""

import contextlib
import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open

import ganzoo
from ganzoo import GanzooError, hookimpl
from ganzoo.checkpoint import load_generator
from ganzoo.cli import main
from ganzoo.evaluate import evaluate
from ganzoo.plugins import PluginInfo, collect, make_plugin_manager, registries
from ganzoo.registry import Registry
from ganzoo.run import train
from ganzoo.sampling import sample

from helpers import REPO, tiny_config

LIMIT_BYTES = 10 * 2 ** 20
SHIPPED = [entry.name for entry in registries().pretrained if entry.factory is not None]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def card_for(weights: Path, **changes) -> dict:
    """A complete card for a weights file (its real sha256), as a plugin would register it."""
    card = {"description": "a test generator", "model": "dcgan", "data": "fake",
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "precision": "float32",
            "command": "ganzoo run dcgan --data fake", "commit": "test", "date": "2030-01-01",
            "protocol": "tiny", "evaluation": {"n": 200, "seed": 0, "metrics": ["mnist_fd"]},
            "scores": {"mnist_fd": {"value": 1.0, "low": 0.0, "high": 1e9}}, "real": {"mnist_fd": 0.1}}
    card.update(changes)
    return card


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """A generator file of a tiny dcgan trained one epoch on fake data."""
    folder = tmp_path_factory.mktemp("tiny")
    return train(tiny_config(folder))


@pytest.fixture
def register():
    """Register a pretrained generator for one test, through the registry's own checks."""
    with contextlib.ExitStack() as stack:
        def add(name, weights, card):
            entry = Registry("pretrained generator").register(name, weights, card=card, plugin="test-plugin")
            stack.enter_context(registries().pretrained.temporary(entry))
            return entry
        yield add


# -- every shipped generator, scored ----------------------------------------------------------------

def test_the_built_in_plugins_ship_dcgan_mnist():
    assert "dcgan-mnist" in SHIPPED


@pytest.mark.parametrize("name", [name if name == "dcgan-mnist" else pytest.param(name, marks=pytest.mark.slow)
                                  for name in SHIPPED])          # the fast tier scores one; the full suite all
def test_every_shipped_generator_scores_within_its_card(name, mnist_dir):
    """Sample under the card's evaluation (its n, its seed, its metrics) and score: each number must fall in the
    card's interval. A change to the networks that breaks old weights lands far outside it (or fails to load)."""
    pretrained = ganzoo.load_pretrained(name)
    card = pretrained.card
    evaluation = card["evaluation"]
    scores = evaluate(pretrained.G, config=pretrained.config, metrics=evaluation["metrics"], n=evaluation["n"],
                      seed=evaluation["seed"], data_dir=str(mnist_dir), download=False, device="cpu")
    for score, expected in card["scores"].items():
        assert expected["low"] <= scores[score] <= expected["high"], (name, score, scores[score], expected)
        assert score in card["real"]                                     # beside the real-data floor


def test_shipped_weights_are_small_half_precision_and_what_their_cards_say():
    total = 0
    for entry in registries().pretrained:
        if not entry.plugin.startswith("ganzoo_plugins."):
            continue
        path, card = Path(entry.factory), entry.card
        assert path.is_relative_to(REPO / "plugins" / "weights" / "pretrained")          # shipped in the package, no url
        total += path.stat().st_size
        assert hashlib.sha256(path.read_bytes()).hexdigest() == card["sha256"]
        with safe_open(str(path), framework="pt") as f:
            dtypes = {f.get_tensor(k).dtype for k in f.keys() if f.get_tensor(k).is_floating_point()}
            config = json.loads(f.metadata()["ganzoo.config"])
        assert dtypes == {getattr(torch, card["precision"])} and card["precision"] in ("float16", "bfloat16")
        assert config["data_dir"] is None and config["out"] == ""           # no local paths shipped
        assert config["model"] == card["model"] and config["data"] == card["data"]
        for field in ("command", "commit", "date", "protocol"):
            assert card[field]
        difference = card["precision_check"]["difference_to_float32"][card["precision"]]
        assert set(difference) == set(card["scores"])                        # the cost of half precision, measured
    assert 0 < total <= LIMIT_BYTES


# -- by name, in every command and from Python -------------------------------------------------------

def test_load_pretrained_from_python():
    pretrained = ganzoo.load_pretrained("dcgan-mnist")
    assert all(p.dtype == torch.float32 for p in pretrained.G.parameters())      # widened from half precision
    images = pretrained.sample(16, seed=3)
    assert images.shape == (16, 1, 32, 32) and images.min() >= -1 and images.max() <= 1
    G, config = load_generator(pretrained.path)                                   # the same file, the same z
    assert torch.equal(images, sample(G, config, 16, seed=3))
    with pytest.raises(GanzooError, match="Unknown pretrained generator 'dcgan-mnst'. Did you mean 'dcgan-mnist'"):
        ganzoo.load_pretrained("dcgan-mnst")


def test_sample_and_the_analyses_take_a_pretrained_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "sample", "dcgan-mnist", "-n", "16", "--out", "grid.png", "--device", "cpu")
    assert code == 0, err
    assert Image.open(tmp_path / "grid.png").size == (4 * 32 + 5 * 2, 4 * 32 + 5 * 2) and "dcgan" in out
    code, out, err = run_cli(capsys, "sheet", "dcgan-mnist", "-n", "4", "--device", "cpu")
    assert code == 0, err
    sheets = list((tmp_path / "analysis" / "dcgan-mnist").glob("sheet-*.png"))     # here, not inside the package
    assert len(sheets) == 1
    code, _, err = run_cli(capsys, "interpolate", "dcgan-mnist", "--rows", "2", "--steps", "3", "--no-gif",
                           "--out", tmp_path / "walk.png", "--device", "cpu")
    assert code == 0 and (tmp_path / "walk.png").is_file(), err
    code, _, err = run_cli(capsys, "arithmetic", "dcgan-mnist", "0,1 - 2 + 3", "--variations", "2",
                           "--out", tmp_path / "sum.png", "--device", "cpu")
    assert code == 0 and (tmp_path / "sum.png").is_file(), err
    assert not list((REPO / "plugins" / "weights" / "pretrained").glob("*.png"))
    code, _, err = run_cli(capsys, "filters", "dcgan-mnist", "--device", "cpu")         # needs D, which none ships
    assert code == 1 and "the pretrained generator 'dcgan-mnist' ships without one; use a run's checkpoint" in err
    code, _, err = run_cli(capsys, "sample", "dcgan-mnst", "--device", "cpu")
    assert code == 1 and "no pretrained generator of that name; did you mean 'dcgan-mnist'?" in err
    assert len(err.strip().splitlines()) == 1


def test_eval_and_compare_take_a_pretrained_name(tmp_path, capsys, monkeypatch, mnist_dir):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "eval", "dcgan-mnist", "-n", "500", "--metrics", "mnist_score",
                             "--data-dir", mnist_dir, "--device", "cpu")
    assert code == 0, err
    report = json.loads((tmp_path / "dcgan-mnist.eval.json").read_text())
    assert "dcgan-mnist" in report["rows"] and report["n"] == 500
    code, out, err = run_cli(capsys, "compare", "dcgan-mnist", "dcgan-mnist", "--metrics", "mnist_score", "-n",
                             "500", "--data-dir", mnist_dir, "--device", "cpu", "--out", tmp_path / "cmp")
    assert code == 0, err
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert list(results["contenders"]) == ["dcgan-mnist", "dcgan-mnist-2"] and not (tmp_path / "cmp" / "runs").exists()
    first, second = (results["contenders"][k]["runs"][0]["scores"] for k in results["contenders"])
    assert first == second == pytest.approx({"mnist_score": report["rows"]["dcgan-mnist"]["mnist_score"]})


def test_pretrained_lists_the_cards(capsys):
    card = registries().pretrained.get("dcgan-mnist").card
    code, out, _ = run_cli(capsys, "pretrained")
    assert code == 0 and "dcgan-mnist" in out
    assert f"mnist_fd {card['scores']['mnist_fd']['value']:.4g}" in out
    assert f"(real {card['real']['mnist_fd']:.3g})" in out
    code, out, _ = run_cli(capsys, "pretrained", "dcgan-mnist")
    assert code == 0 and card["sha256"] in out.replace("\n", "") and "holds within" in out
    code, out, _ = run_cli(capsys, "pretrained", "dcgan-mnist", "--json")
    assert json.loads(out)["sha256"] == card["sha256"]


# -- verification and download ---------------------------------------------------------------------------

def test_a_changed_weights_file_is_refused_in_one_sentence(tmp_path, capsys, register, tiny_weights):
    copy = tmp_path / "changed.safetensors"
    shutil.copy(tiny_weights, copy)
    register("changed", copy, card_for(tiny_weights))
    data = bytearray(copy.read_bytes())
    data[-1] ^= 0xFF                                                    # one bit pattern of one weight
    copy.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "sample", "changed", "--out", tmp_path / "x.png", "--device", "cpu")
    assert code == 1 and "has sha256" in err and "its card names, so it was changed or damaged" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x.png").exists()


class Server:
    """A local HTTP server on 127.0.0.1 serving one folder, counting the requests."""

    def __init__(self, folder: Path):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The server, and a cache of this test's own (the session's may hold a download of another test)."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "served"
    folder.mkdir()
    served = Server(folder)
    served.folder = folder
    yield served
    served.close()


def test_a_card_with_a_url_downloads_verifies_and_caches_once(tmp_path, capsys, register, server, tiny_weights):
    shutil.copy(tiny_weights, server.folder / "gen.safetensors")
    register("remote", None, card_for(tiny_weights, url=f"{server.url}/gen.safetensors"))
    pretrained = ganzoo.load_pretrained("remote")
    assert server.requests == ["/gen.safetensors"]
    cached = list((Path(ganzoo.data.cache_dir()) / "pretrained").iterdir())
    assert cached == [pretrained.path] and pretrained.path.read_bytes() == tiny_weights.read_bytes()
    G, config = load_generator(tiny_weights)
    assert torch.equal(pretrained.sample(8), sample(G, config, 8))
    code, _, err = run_cli(capsys, "sample", "remote", "-n", "4", "--out", tmp_path / "r.png", "--device", "cpu")
    assert code == 0 and (tmp_path / "r.png").is_file(), err
    assert server.requests == ["/gen.safetensors"]                       # the second time from the cache


def test_a_download_whose_sha256_differs_is_refused_and_not_cached(tmp_path, capsys, register, server, tiny_weights):
    (server.folder / "gen.safetensors").write_bytes(tiny_weights.read_bytes() + b"\0")     # not what the card says
    register("tampered", None, card_for(tiny_weights, url=f"{server.url}/gen.safetensors"))
    code, _, err = run_cli(capsys, "sample", "tampered", "--out", tmp_path / "t.png", "--device", "cpu")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"The file downloaded from {server.url}/gen.safetensors for the pretrained generator 'tampered' has " \
           f"sha256" in err and "so it was refused and nothing was cached" in err
    folder = Path(ganzoo.data.cache_dir()) / "pretrained"
    assert not folder.exists() or not list(folder.iterdir())             # no file, no temporary left behind
    register("missing", None, card_for(tiny_weights, url=f"{server.url}/nothing.safetensors"))
    with pytest.raises(GanzooError, match="Could not download the pretrained generator 'missing' from .*: HTTP 404 "):
        ganzoo.load_pretrained("missing")
    with pytest.raises(GanzooError, match="downloads are off"):
        ganzoo.load_pretrained("missing", download=False)


# -- the hook, as a third party uses it -----------------------------------------------------------------

def test_a_third_party_plugin_registers_pretrained_generators_through_the_hook(tiny_weights):
    class Good:
        @hookimpl
        def register_pretrained(self, register):
            register("their-gan", tiny_weights, card=card_for(tiny_weights))

    class NoSha:
        @hookimpl
        def register_pretrained(self, register):
            card = card_for(tiny_weights)
            del card["sha256"]
            register("careless", tiny_weights, card=card)

    class Typo:
        @hookimpl
        def register_pretrained(self, register):
            register("typo", tiny_weights, crad=card_for(tiny_weights))

    pm = make_plugin_manager()
    for plugin in (Good(), NoSha(), Typo()):
        pm.register(plugin, name=type(plugin).__name__)
    regs = collect(pm, [PluginInfo(n, "1.0", "test") for n in ("Good", "NoSha", "Typo")])
    info = {p.name: p for p in regs.plugins}
    assert regs.pretrained.names() == ["their-gan"]
    assert info["Good"].registered == {"pretrained generator": ["their-gan"]}
    assert regs.pretrained.get("their-gan").description == "a test generator"
    assert "card lacks sha256" in info["NoSha"].error
    assert "'crad'" in info["Typo"].error and "Did you mean 'card'?" in info["Typo"].error


def test_cards_are_checked_when_registered(tiny_weights):
    registry = Registry("pretrained generator")
    for change, message in ((dict(sha256="abc"), "64 hexadecimal digits"), (dict(precision="float8"), "float16"),
                            (dict(scores={"mnist_fd": {"value": 5.0, "low": 6.0, "high": 7.0}}),
                             "low <= value <= high"),
                            (dict(evaluation={"n": 1, "seed": 0, "metrics": ["mnist_fd"]}), "2 or more")):
        with pytest.raises(GanzooError, match=message):
            registry.register("x", tiny_weights, card=card_for(tiny_weights, **change))
    with pytest.raises(GanzooError, match="neither a weights file nor a url"):
        registry.register("x", None, card=card_for(tiny_weights))
    with pytest.raises(GanzooError, match="http"):
        registry.register("x", None, card=card_for(tiny_weights, url="ftp://example.org/x.safetensors"))


# -- the script that ships one -------------------------------------------------------------------------

def test_ship_pretrained_writes_a_half_precision_file_and_a_card_that_holds(tmp_path, capsys, register, tiny_weights):
    import importlib.util

    spec = importlib.util.spec_from_file_location("ship_pretrained", REPO / "benchmarks" / "ship_pretrained.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    code, _, err = run_cli(capsys, "eval", tiny_weights, "-n", "300", "--metrics", "mnist_fd,mnist_score",
                           "--device", "cpu", "--json", tmp_path / "eval.json")
    assert code == 0, err
    assert ship.main([str(tiny_weights), "--name", "tiny-fake", "--command", "ganzoo run dcgan --data fake",
                      "--eval", str(tmp_path / "eval.json"), "--draws", "3", "--out-dir", str(tmp_path / "out")]) == 0
    card = json.loads((tmp_path / "out" / "tiny-fake.card.json").read_text())
    weights = tmp_path / "out" / "tiny-fake.safetensors"
    assert card["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest() and card["precision"] == "float16"
    assert weights.stat().st_size < 0.6 * tiny_weights.stat().st_size              # half the bytes, and the config
    report = json.loads((tmp_path / "eval.json").read_text())
    assert card["real"] == {k: report["rows"]["real data (train)"][k] for k in card["scores"]}
    assert card["precision_check"]["scores"]["float32"] == pytest.approx(report["rows"][tiny_weights.name])
    for name, score in card["scores"].items():          # a score equal on every draw (a tiny G's mnist_score of
        assert len(score["draws"]) == 3 and score["low"] <= score["value"] <= score["high"]   # 1.0) has no width
    assert any(score["low"] < score["value"] < score["high"] for score in card["scores"].values())
    register("tiny-fake", weights, card)
    pretrained = ganzoo.load_pretrained("tiny-fake")
    again = evaluate(pretrained.G, config=pretrained.config, metrics=card["evaluation"]["metrics"],
                     n=card["evaluation"]["n"], seed=card["evaluation"]["seed"], device="cpu")
    assert again == pytest.approx({k: v["value"] for k, v in card["scores"].items()}, rel=1e-6)


def test_sampling_a_pretrained_generator_loads_neither_torchvision_nor_torchs_compiler(tmp_path):
    """What keeps `ganzoo sample dcgan-mnist` quick from a cold process (benchmarks/sample_start.py times it):
    torchvision and torch._dynamo each cost a second or more of CPU to import, and sampling needs neither."""
    import subprocess
    import sys

    code = ("import sys; from ganzoo.cli import main; "
            f"assert main(['sample', 'dcgan-mnist', '--device', 'cpu', '--out', {str(tmp_path / 'g.png')!r}]) == 0; "
            "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]" and (tmp_path / "g.png").is_file()
