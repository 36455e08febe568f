import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ganzoo import GanzooError
from ganzoo.checkpoint import atomic_write, load_generator, save_generator
from ganzoo.models import build_generator
from ganzoo.sampling import draw, generate
from ganzoo.plugins import registries

from helpers import tiny_config


@pytest.mark.parametrize("model", registries().models.names())
def test_generator_file_alone_rebuilds_identical_generator(tmp_path, model):
    config = tiny_config(tmp_path, model=model, image_size=64, channels=3)
    G = build_generator(config)
    path = save_generator(tmp_path / "g.safetensors", G, config)
    G2, config2 = load_generator(path)
    assert config2 == config
    z, y = draw(config, 0, range(5))                  # y: the classes of a conditional model, else None
    G.eval()
    assert torch.equal(generate(G, z, y), generate(G2, z, y))
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["ganzoo.config"])["model"] == model
    assert meta["ganzoo.kind"] == "generator"


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]                              # no temporary file left behind


def test_damaged_files_fail_with_one_sentence(tmp_path):
    config = tiny_config(tmp_path)
    good = save_generator(tmp_path / "g.safetensors", build_generator(config), config)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    pickle = tmp_path / "model.pt"
    torch.save({"x": 1}, pickle)
    cases = {truncated: "truncated or corrupted", garbage: "truncated or corrupted",
             foreign: "not a ganzoo weights file", pickle: "pickle", tmp_path / "missing.safetensors": "No weights"}
    for path, message in cases.items():
        with pytest.raises(GanzooError, match=message):
            load_generator(path)


def test_config_naming_unknown_model_or_wrong_shapes(tmp_path):
    config = tiny_config(tmp_path)
    G = build_generator(config)
    config.generator = "nosuchnet"
    path = save_generator(tmp_path / "unknown.safetensors", G, config)
    with pytest.raises(GanzooError, match="Unknown generator 'nosuchnet'"):
        load_generator(path)
    config = tiny_config(tmp_path)
    bigger = tiny_config(tmp_path, g_width=16)
    path = save_generator(tmp_path / "shapes.safetensors", build_generator(bigger), config)
    with pytest.raises(GanzooError, match="has shape"):
        load_generator(path)
