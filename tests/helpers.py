"""What the tests share: tiny runs (as settings and as flags), the real CLI in this process or a fresh one,
a trainer's step watched, checkpoints read back, test plugins loaded the way built-in ones are (or installed
the way pip would), docs/plugins.md's snippets, test components, and small datasets in their real formats.

Every test folder imports it as `helpers` (pyproject.toml puts tests/ on the path)."""

from __future__ import annotations

import gzip
import io
import os
import re
import struct
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganzoo import RunConfig, hookimpl, plugins
from ganzoo.checkpoint import read_tensors
from ganzoo.cli import main
from ganzoo_plugins.losses import NonSaturatingLoss

REPO = Path(__file__).resolve().parents[1]
# Real MNIST sits beside the checkout (../shared/data/mnist); GANZOO_MNIST_DIR points elsewhere.
MNIST_DIR = Path(os.environ.get("GANZOO_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))

# Tiny runs: fake data (1024 images, 32 steps per epoch at batch 32), narrow networks.
SETTINGS = dict(data="fake", batch_size=32, g_width=8, d_width=8, z_dim=16, samples=16, device="cpu")
TINY = [a for k, v in SETTINGS.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def flags(settings: dict) -> list[str]:
    """Settings as `ganzoo run` flags: {"batch_size": 32} -> ["--batch-size", "32"]."""
    return [a for k, v in settings.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def tiny_config(tmp_path, **overrides) -> RunConfig:
    """A run small enough for a CPU test: fake data, narrow networks, a few steps per epoch, in tmp_path/run."""
    from ganzoo.resolve import make_config

    values = dict(SETTINGS, epochs=1, log_every=4, checkpoint_every=1000)
    values.update(overrides)
    model = values.pop("model", "dcgan")
    config = make_config(model, values)
    config.out = str(tmp_path / "run")
    return config


def fake_data(size: int = 32, channels: int = 1):
    """The built-in fake dataset: 1024 images with labels."""
    from ganzoo.data import load_dataset

    return load_dataset("fake", root=None, split="train", image_size=size, channels=channels)


def watch_steps(monkeypatch, trainer, after) -> None:
    """Call after(real, labels, stats) after every step `trainer` takes (in fit() too)."""
    from ganzoo.training.step import Step

    real_call = Step.__call__

    def call(self, real, labels=None):
        stats = real_call(self, real, labels)
        if self is trainer.step:
            after(real, labels, stats)
        return stats
    monkeypatch.setattr(Step, "__call__", call)


def stop_at(monkeypatch, trainer, step: int) -> None:
    """Ask `trainer` to stop after `step` steps, exactly as the first Ctrl-C does."""
    def after(real, labels, stats):
        if trainer.state.step + 1 == step:
            trainer.loop.request_stop()
    watch_steps(monkeypatch, trainer, after)


def weights(trainer) -> dict[str, torch.Tensor]:
    """G's and D's state, by checkpoint name."""
    return {**{f"G.{k}": v for k, v in trainer.G.state_dict().items()},
            **{f"D.{k}": v for k, v in trainer.D.state_dict().items()}}


slow = pytest.mark.slow
# One thread: the same result in every process, and no thread contention on a busy machine.
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", COLUMNS="200", PYTHONUNBUFFERED="1")
ENV.pop("GANZOO_DEBUG", None)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str) -> str:
    """A failure: non-zero exit, exactly one line on stderr, no traceback, no internal error."""
    assert code != 0
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def ganzoo(*args, cwd=None, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    """The real `ganzoo` command in a fresh process."""
    return subprocess.run([sys.executable, "-m", "ganzoo", *map(str, args)], env=ENV, capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, **kwargs)


def python(code: str, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def state_of(path: Path) -> dict:
    """The training counters a checkpoint holds."""
    import json

    _, meta = read_tensors(path)
    return json.loads(meta["ganzoo.state"])


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, _ = read_tensors(a)
    tb, _ = read_tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), f"{k} differs between {a} and {b}"


def install_plugin(monkeypatch, request, name: str, **hooks) -> None:
    """Load a plugin module made of `hooks` (hook name -> function) exactly as a built-in one is loaded."""
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, hookimpl(function))
    monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(plugins, "BUILTIN_PLUGINS", plugins.BUILTIN_PLUGINS + (name,))
    plugins.registries.cache_clear()
    request.addfinalizer(plugins.registries.cache_clear)  # runs before monkeypatch restores the built-ins

# -- test components: a loss that diverges, a collapsed generator ---------------------------------------------

class NaNLoss(NonSaturatingLoss):
    """The DCGAN loss, except that D's loss is NaN at D step `at` (and every later one if `stay`)."""

    at, stay = 13, False

    def __init__(self):
        self.calls = 0

    def d_loss(self, real_logits, fake_logits):
        self.calls += 1
        type(self).steps_taken = self.calls                                  # D steps the trainer took
        loss = super().d_loss(real_logits, fake_logits)
        hit = self.calls == self.at or (self.stay and self.calls > self.at)
        return loss * float("nan") if hit else loss


class Repeat(nn.Module):
    """A mode-collapsed generator: one image, whatever z."""

    def __init__(self, image):
        super().__init__()
        self.register_buffer("image", image)                               # [C, H, W] in [-1, 1]

    def forward(self, z):
        return self.image.expand(len(z), -1, -1, -1)


# -- plugins installed the way pip would, run in a fresh process ----------------------------------------------

def install(site, dist, module, source, version="1.2.3"):
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{module} = {module}\n")


def run_installed(site, *args, strict=False, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(site), COLUMNS="200")
    env.pop("GANZOO_STRICT_PLUGINS", None)
    if strict:
        env["GANZOO_STRICT_PLUGINS"] = "1"
    """The `ganzoo` command in a fresh process that sees the plugins installed in `site`."""
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=300)


# -- docs/plugins.md's snippets ---------------------------------------------------------------------------------

DOC = (REPO / "docs" / "plugins.md").read_text()
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def section(hook: str) -> str:
    """The text under the `### `hook`` heading, up to the next heading."""
    match = re.search(rf"^### `{hook}`\n(.*?)(?=^#{{1,3}} )", DOC, re.S | re.M)
    assert match, f"docs/plugins.md has no '### `{hook}`' section: document the hook there, with a runnable snippet"
    return match.group(1)


def snippet_plugin(hook: str) -> types.ModuleType:
    blocks = [code for lang, code in BLOCK.findall(section(hook)) if lang == "python"]
    assert blocks, f"the {hook} section of docs/plugins.md has no ```python snippet"
    module = types.ModuleType(f"doc_snippet_{hook}")
    exec(compile(blocks[0], f"docs/plugins.md ({hook})", "exec"), module.__dict__)
    return module


# -- datasets in their real on-disk formats (CIFAR, SVHN, STL-10, CelebA, LSUN, IDX) ---------------------------

# Every writer makes the files the way the dataset's authors ship them (IDX, Python 2 pickles, MATLAB
# v5, column-major binaries, JPEG folders with a partition list, an lmdb of encoded images) and
# returns what it wrote, so a test can compare what ganzoo reads with what is on disk.

# -- IDX (MNIST, Fashion-MNIST) -------------------------------------------------------------------------

IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def write_idx(folder: Path, split: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    """IDX files: a big-endian magic number and sizes, then the bytes (images uint8 [N, 28, 28])."""
    folder.mkdir(parents=True, exist_ok=True)
    image_name, label_name = IDX_NAMES[split]
    n, h, w = images.shape
    for name, raw in ((image_name, struct.pack(">IIII", 0x803, n, h, w) + images.tobytes()),
                      (label_name, struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())):
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw, compresslevel=1))
        else:
            (folder / name).write_bytes(raw)


# -- CIFAR: Python 2 pickles ------------------------------------------------------------------------------

def py2_pickle(obj) -> bytes:
    """obj pickled as Python 2's cPickle (protocol 2) wrote CIFAR's batches: str as byte strings, numpy
    arrays through numpy.core.multiarray._reconstruct. Handles dict, list, int, bytes and uint8 arrays."""
    return b"\x80\x02" + _py2(obj) + b"."


def _py2(obj) -> bytes:
    if isinstance(obj, dict):
        return b"}(" + b"".join(_py2(k) + _py2(v) for k, v in obj.items()) + b"u"    # EMPTY_DICT MARK .. SETITEMS
    if isinstance(obj, list):
        return b"](" + b"".join(_py2(v) for v in obj) + b"e"                         # EMPTY_LIST MARK .. APPENDS
    if isinstance(obj, str):
        obj = obj.encode("latin1")
    if isinstance(obj, bytes):                                                        # a Python 2 str
        return (b"U" + bytes([len(obj)]) if len(obj) < 256 else b"T" + struct.pack("<i", len(obj))) + obj
    if isinstance(obj, (int, np.integer)):
        n = int(obj)
        return b"K" + bytes([n]) if 0 <= n < 256 else b"M" + struct.pack("<H", n) if 0 <= n < 65536 else \
            b"J" + struct.pack("<i", n)
    if isinstance(obj, np.ndarray):
        assert obj.dtype == np.uint8 and obj.flags.c_contiguous
        dtype = (b"cnumpy\ndtype\n" + _py2(b"u1") + b"K\x00K\x01\x87R"              # dtype('u1', 0, 1)
                 + b"(K\x03" + _py2(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        shape = b"(" + b"".join(_py2(d) for d in obj.shape) + b"t"
        return (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + b"K\x00\x85" + _py2(b"b")
                + b"\x87R" + b"(K\x01" + shape + dtype + b"\x89" + _py2(obj.tobytes()) + b"tb")
    raise TypeError(type(obj))


CIFAR_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz",
                {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}, "labels",
                ("batches.meta", "label_names"), 10),
    "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", {"train": ["train"], "test": ["test"]},
                 "fine_labels", ("meta", "fine_label_names"), 100),
}


def cifar_batch(key: str, data: np.ndarray, labels: list[int]) -> bytes:
    label_key = CIFAR_LAYOUT[key][3]
    batch = {"batch_label": "training batch 1 of 5", label_key: labels, "data": data,
             "filenames": [f"image_{i:05d}.png" for i in range(len(labels))]}
    if key == "cifar100":
        batch["coarse_labels"] = [v // 5 for v in labels]
    return py2_pickle(batch)


def write_cifar(root: Path, key: str = "cifar10", per_batch: int = 6, seed: int = 0, archive: bool = False
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """root/<folder>/ with every batch and the meta file (or root/<archive>.tar.gz holding that folder).
    Returns split -> (images uint8 [N, 3, 32, 32], labels [N])."""
    folder, archive_name, batches, _, (meta_name, names_key), classes = CIFAR_LAYOUT[key]
    rng = np.random.default_rng(seed)
    files, written = {}, {}
    for split, names in batches.items():
        images, labels = [], []
        for name in names:
            data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            batch_labels = [int(v) for v in rng.integers(0, classes, per_batch)]
            files[name] = cifar_batch(key, data, batch_labels)
            images.append(data.reshape(-1, 3, 32, 32))
            labels += batch_labels
        written[split] = (np.concatenate(images), np.array(labels))
    files[meta_name] = py2_pickle({names_key: [f"class{i}" for i in range(classes)], "num_vis": 3072})
    if archive:
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(root / archive_name, "w:gz") as tar:
            for name, raw in files.items():
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    else:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, raw in files.items():
            (root / folder / name).write_bytes(raw)
    return written


# -- SVHN: MATLAB v5 ----------------------------------------------------------------------------------------

def write_svhn(root: Path, split: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """root/<split>_32x32.mat: X uint8 [32, 32, 3, N], y [N, 1] in 1..10 (10 is the digit 0)."""
    import scipy.io

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    digits = rng.permutation(np.arange(n) % 10)                              # holds a 0 (stored as 10)
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / f"{split}_32x32.mat", {"X": images.transpose(2, 3, 1, 0),
                                                    "y": np.where(digits == 0, 10, digits)[:, None].astype(np.uint8)})
    return images, digits


# -- STL-10: column-major binaries -------------------------------------------------------------------------

def write_stl10(root: Path, counts: dict[str, int], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """root/stl10_binary/<part>_X.bin (uint8 images 3 x 96 x 96, each channel stored column-major) and
    <part>_y.bin (labels 1..10) for part in train, test; unlabeled_X.bin alone."""
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for part, n in counts.items():
        images = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        images.transpose(0, 1, 3, 2).tofile(folder / f"{part}_X.bin")          # column-major per channel
        labels = None
        if part != "unlabeled":
            labels = rng.integers(0, 10, n)
            (labels + 1).astype(np.uint8).tofile(folder / f"{part}_y.bin")
        written[part] = (images, labels)
    (folder / "class_names.txt").write_text("\n".join(["airplane", "bird", "car", "cat", "deer", "dog", "horse",
                                                       "monkey", "ship", "truck"]) + "\n")
    return written


# -- CelebA: aligned JPEGs and the partition list --------------------------------------------------------------

def face(i: int, width: int = 178, height: int = 218) -> Image.Image:
    """A 178x218 'aligned face': a dark frame and a bright 108x108 square at the centre (the crop's)."""
    image = Image.new("RGB", (width, height), (20, 20, 20))
    left, top = round((width - 108) / 2), round((height - 108) / 2)
    image.paste((200, 100 + i % 100, 50), (left, top, left + 108, top + 108))
    return image


def write_celeba(root: Path, partition: list[int]) -> Path:
    """root/celeba/img_align_celeba/000001.jpg ... and root/celeba/list_eval_partition.txt."""
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, part in enumerate(partition, 1):
        face(i).save(folder / "img_align_celeba" / f"{i:06d}.jpg", quality=95)
        lines.append(f"{i:06d}.jpg {part}\n")
    (folder / "list_eval_partition.txt").write_text("".join(lines))
    return folder


# -- LSUN: an lmdb of encoded images -----------------------------------------------------------------------------

def encoded(image: Image.Image, format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, quality=95)
    return buffer.getvalue()


def write_lsun(root: Path, database: str, images: list[Image.Image]) -> Path:
    """root/<database>_lmdb/ (data.mdb, lock.mdb): 40-hex-digit keys, one JPEG (or WebP) per record."""
    import hashlib

    import lmdb

    path = root / f"{database}_lmdb"
    env = lmdb.open(str(path), map_size=64 * 2 ** 20)
    with env.begin(write=True) as txn:
        for i, image in enumerate(images):
            key = hashlib.sha1(f"{database}{i}".encode()).hexdigest().encode()
            txn.put(key, encoded(image, "WEBP" if i % 3 == 2 else "JPEG"))
    env.close()
    return path
