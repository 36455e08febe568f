"""The decoded-image cache: built once, reused, resumed after an interruption, rebuilt when the files change;
and a run whose batches stream from it equals a run from memory, bit for bit, on the CPU."""

import json
import threading

import pytest
import torch
from PIL import Image

from ganzoo import imagecache
from ganzoo.data import (DeviceBatches, ImageData, StreamedBatches, decode_image, load_dataset, make_batches,
                         prepare_images)

from helpers import assert_same_tensors, run_cli


def make_folder(root, n=40):
    """Class sub-folders of images of many sizes (each decodes to its own colour)."""
    for i in range(n):
        folder = root / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20 + i % 7, 16 + i % 5), (i * 6, 255 - i * 6, (i * 37) % 256)).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def decodes(monkeypatch, tmp_path):
    """Every image the cache decodes (the real decoder, counted), in a cache of this test's own."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    seen, lock = [], threading.Lock()

    def counted(item, channels, where):
        with lock:
            seen.append(item.name)
        return decode_image(item, channels, where)

    monkeypatch.setattr(imagecache, "decode_image", counted)
    return seen


def load(folder, size=8):
    return load_dataset("folder", root=str(folder), split="train", image_size=size, channels=3)


def test_built_once_then_reused_and_equal_to_decoding_in_memory(tmp_path, decodes):
    folder = make_folder(tmp_path / "pics")
    first = load(folder)
    assert len(decodes) == 40 and first.cache is not None
    assert first.images.shape == (40, 3, 8, 8) and first.labels.tolist()[:4] == [0, 0, 0, 0]
    paths = sorted(folder.rglob("*.png"))
    in_memory = torch.cat([prepare_images(decode_image(p, 3, str)[None], 8, 3) for p in paths])
    assert torch.equal(first.images, in_memory)
    assert torch.equal(first.labels, torch.tensor([int(p.parent.name[-1]) for p in paths]))
    second = load(folder)
    assert len(decodes) == 40                                             # nothing decoded again
    assert torch.equal(second.images, first.images) and second.cache == first.cache
    load(folder, size=16)                                                 # another resolution: its own cache
    assert len(decodes) == 80
    assert len(list((tmp_path / "cache" / "images").iterdir())) == 2


def test_rebuilt_when_the_files_change(tmp_path, decodes, capsys):
    folder = make_folder(tmp_path / "pics", n=12)
    before = load(folder).images.clone()
    Image.new("RGB", (30, 30), (1, 2, 3)).save(folder / "class0" / "000.png")          # one image rewritten
    after = load(folder)
    assert len(decodes) == 24 and "changed since its image cache was built; rebuilding" in capsys.readouterr().err
    assert not torch.equal(before, after.images) and (after.images[0] <= 3).all()
    (folder / "class1" / "001.png").unlink()                                            # one image removed
    assert len(load(folder)) == 11


def test_an_interrupted_build_continues_where_it_stopped(tmp_path, decodes, monkeypatch):
    folder = make_folder(tmp_path / "pics", n=20)
    monkeypatch.setattr(imagecache, "CHUNK", 4)
    real = imagecache.decode_image

    def interrupted(item, channels, where):
        if item.name == "010.png":
            raise KeyboardInterrupt
        return real(item, channels, where)

    monkeypatch.setattr(imagecache, "decode_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load(folder)
    (cache,) = (tmp_path / "cache" / "images").iterdir()
    done = json.loads((cache / "meta.json").read_text())["done"]
    order = [p.name for p in sorted(folder.rglob("*.png"))]                 # the order images are decoded in
    assert done == 8 and order.index("010.png") in range(8, 12)           # the chunks before the failing one
    monkeypatch.setattr(imagecache, "decode_image", real)
    decodes.clear()
    resumed = load(folder)
    assert sorted(decodes) == sorted(order[8:])                                  # only what was not done before
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "another-cache"))
    assert torch.equal(resumed.images, load(folder).images)               # the same as a cache built whole


def test_a_bad_image_is_named_and_the_rest_is_kept(tmp_path, decodes, capsys):
    folder = make_folder(tmp_path / "pics", n=10)
    (folder / "class2" / "zzz.png").write_bytes(b"\x89PNG broken")
    code, _, err = run_cli(capsys, "run", "dcgan", "--data", folder, "--image-size", "8", "--out", tmp_path / "run",
                           "--device", "cpu")
    assert code == 1 and "zzz.png is not a readable image" in err


def test_streamed_batches_equal_device_batches():
    images = torch.randint(0, 256, (103, 3, 4, 4), dtype=torch.uint8)
    resident, streamed = DeviceBatches(images, 10, torch.device("cpu")), StreamedBatches(images, 10, torch.device("cpu"))
    for start in (0, 7):
        a = list(resident.epoch(torch.Generator().manual_seed(5), start))
        b = list(streamed.epoch(torch.Generator().manual_seed(5), start))
        assert len(a) == len(b) == 10 - start and all(torch.equal(x, y) for x, y in zip(a, b))
    early = streamed.epoch(torch.Generator().manual_seed(5))
    next(early)
    early.close()                                                          # a run stopped mid-epoch: no thread left
    data = ImageData(images)
    assert isinstance(make_batches(data, 10, torch.device("cpu"), budget=images.nbytes), DeviceBatches)
    assert isinstance(make_batches(data, 10, torch.device("cpu"), budget=images.nbytes - 1), StreamedBatches)


@pytest.mark.usefixtures("one_thread")
def test_a_run_streamed_from_the_cache_equals_a_run_from_memory(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    folder = make_folder(tmp_path / "pics", n=64)
    common = ["run", "dcgan", "--data", folder, "--image-size", "8", "--batch-size", "16", "--g-width", "4",
              "--d-width", "4", "--z-dim", "8", "--epochs", "2", "--samples", "4", "--device", "cpu"]
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "memory")
    assert code == 0 and "held on the device" in err, err
    code, _, err = run_cli(capsys, *common, "--out", tmp_path / "streamed", "--memory-budget", "1k")
    assert code == 0 and "streamed from host memory" in err, err
    assert_same_tensors(tmp_path / "memory" / "checkpoint.safetensors", tmp_path / "streamed" / "checkpoint.safetensors")


def test_rebuilt_when_an_image_is_rewritten_at_the_same_size(tmp_path, decodes, capsys):
    """Same name, same byte count, other pixels: only the modification time tells, and the cache must see it."""
    import os

    folder = make_folder(tmp_path / "pics", n=6)
    path = folder / "class0" / "000.png"
    before, size, stat = load(folder).images.clone(), path.stat().st_size, path.stat()
    assert Image.open(path).getpixel((0, 0)) == (0, 255, 0)
    Image.new("RGB", Image.open(path).size, (7, 255, 0)).save(path)                # another solid colour
    assert path.stat().st_size == size                                              # the same byte count
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))         # a later time, surely
    after = load(folder)
    assert len(decodes) == 12 and "rebuilding" in capsys.readouterr().err
    assert not torch.equal(before, after.images) and (after.images[0, 0] == 7).all()
