"""Every built-in dataset read from small files in its real on-disk format (tests/datafiles.py writes them):
shapes, labels, splits, crops; damaged files give one sentence; CIFAR's pickles never run code."""

import os
import pickle
import pickletools
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import GanzooError
from ganzoo.data import load_dataset, prepare_images, read_dataset

from helpers import (face, py2_pickle, write_celeba, write_cifar, write_idx, write_lsun, write_stl10,
                       write_svhn)
from helpers import assert_one_line_error, run_cli


def load(name, root, split="train", image_size=32, channels=3, **kwargs):
    return load_dataset(name, root=str(root), split=split, image_size=image_size, channels=channels,
                        download=False, **kwargs)


# -- Fashion-MNIST (and MNIST) in torchvision's layout ------------------------------------------------------

@pytest.fixture(scope="module")
def fashion_root(tmp_path_factory):
    """<root>/FashionMNIST/raw/ with the four gzipped IDX files: zeros but for a few marked images."""
    root = tmp_path_factory.mktemp("fashion")
    written = {}
    for split, n in (("train", 60000), ("test", 10000)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:5, 10:18, 10:18] = 255
        labels = np.arange(n) % 10
        write_idx(root / "FashionMNIST" / "raw", split, images, labels)
        written[split] = (images, labels)
    return root, written


def test_fashion_mnist_from_torchvision_layout(fashion_root):
    root, written = fashion_root
    for split, n in (("train", 60000), ("test", 10000)):
        data = load("fashion-mnist", root, split, image_size=28, channels=1)
        assert data.images.shape == (n, 1, 28, 28) and data.labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
        assert torch.equal(data.images[:6, 0], torch.from_numpy(written[split][0][:6]))
        assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    resized = load("fashion-mnist", root, "test", image_size=32, channels=3)
    assert resized.images.shape == (10000, 3, 32, 32)


def test_mnist_from_torchvision_layout(mnist_dir, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        os.symlink(mnist_dir / name, raw / name)
    data = load("mnist", tmp_path, "test", image_size=28, channels=1)
    assert data.images.shape == (10000, 1, 28, 28) and data.labels[:3].tolist() == [7, 2, 1]   # the official file's


# -- CIFAR ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key,classes", [("cifar10", 10), ("cifar100", 100)])
@pytest.mark.parametrize("archive", [False, True], ids=["folder", "tar.gz"])
def test_cifar_batches(tmp_path, key, classes, archive):
    written = write_cifar(tmp_path, key, per_batch=7, archive=archive)
    for split in ("train", "test"):
        data = load(key, tmp_path, split)
        images, labels = written[split]
        assert data.images.shape == (len(labels), 3, 32, 32) == images.shape
        assert torch.equal(data.images, torch.from_numpy(images))           # rows are R plane, G plane, B plane
        assert data.labels.tolist() == labels.tolist()
        assert len(data.classes) == classes and data.classes[1] == "class1"
    assert len(load(key, tmp_path, "train").labels) == (35 if key == "cifar10" else 7)


def test_cifar_data_dir_may_be_the_unpacked_folder(tmp_path):
    written = write_cifar(tmp_path)
    data = load("cifar10", tmp_path / "cifar-10-batches-py", "test")
    assert data.labels.tolist() == written["test"][1].tolist()


class RunsCode:
    """Unpickling this would create a folder: the proof that code ran."""

    marker = None

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def tampered(kind: str, marker) -> bytes:
    """A CIFAR batch an attacker changed; unpickling it with the pickle module would run code."""
    RunsCode.marker = marker
    if kind == "the whole file":
        return pickle.dumps(RunsCode(), protocol=2)
    if kind == "inside the labels":
        return pickle.dumps({"labels": [RunsCode()], "data": np.zeros((1, 3072), np.uint8)}, protocol=2)
    if kind == "protocol 5 global":
        return pickle.dumps({"data": RunsCode()}, protocol=5)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["the whole file", "inside the labels", "protocol 5 global"])
def test_a_tampered_cifar_batch_gets_a_sentence_never_code_execution(tmp_path, capsys, kind):
    marker = tmp_path / "code-ran"
    write_cifar(tmp_path / "data")
    evil = tampered(kind, marker)
    (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_3").write_bytes(evil)
    # The file is live, shown without unpickling it: it names os.makedirs, and that call makes the marker.
    names = {str(arg) for _, arg, _ in pickletools.genops(evil)}
    assert "os makedirs" in names or {"os", "makedirs"} <= names
    call, args = RunsCode().__reduce__()
    call(*args)
    assert marker.is_dir()
    marker.rmdir()
    code, _, err = run_cli(capsys, "run", "dcgan", "--data", "cifar10", "--data-dir", tmp_path / "data",
                           "--out", tmp_path / "run", "--device", "cpu")
    line = assert_one_line_error(code, err)
    assert "data_batch_3 is not a CIFAR-10 batch" in line and "makedirs, which a CIFAR batch never holds" in line
    assert not marker.exists()
    code, _, err = run_cli(capsys, "data", "cifar10", "--data-dir", tmp_path / "data", "--out", tmp_path / "g.png")
    assert "never holds" in assert_one_line_error(code, err) and not marker.exists()


def test_object_arrays_are_refused_too(tmp_path):
    """numpy itself is admitted, but only for arrays of plain numbers: an object array's items come from the pickle."""
    raw = py2_pickle({"data": np.zeros((1, 3072), np.uint8), "labels": [0]}).replace(b"U\x02u1", b"U\x01O")
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(raw)
    with pytest.raises(GanzooError, match=r"test_batch is not a CIFAR-10 batch: it asks for a numpy dtype 'O'"):
        load("cifar10", tmp_path, "test")


@pytest.mark.parametrize("damage,message", [
    (lambda raw: raw[: len(raw) // 2], "is not a CIFAR-10 batch (pickle data was truncated)"),
    (lambda raw: b"", "is not a CIFAR-10 batch (EOFError"),
    (lambda raw: b"just some text\n", "is not a CIFAR-10 batch"),
    (lambda raw: py2_pickle([1, 2]), "it holds a list, not a dict"),
    (lambda raw: py2_pickle({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}), "its 'data' is uint8 (2, 100)"),
    (lambda raw: py2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}), "its 'labels' are not 2"),
], ids=["truncated", "empty", "text", "a list", "wrong shape", "label out of range"])
def test_damaged_cifar_batches_give_one_sentence(tmp_path, damage, message):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(GanzooError) as caught:
        load("cifar10", tmp_path, "test")
    assert message in str(caught.value) and str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_cifar_missing_batch_and_broken_archive(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(GanzooError, match="holds no CIFAR-10 files: put cifar-10-python.tar.gz"):
        load("cifar10", tmp_path)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(GanzooError, match="cifar-10-python.tar.gz is not a readable cifar-10-python.tar.gz"):
        load("cifar10", tmp_path)


# -- SVHN -------------------------------------------------------------------------------------------------------

def test_svhn_mat_files(tmp_path):
    written = {split: write_svhn(tmp_path, split, n, seed=n) for split, n in (("train", 9), ("test", 5), ("extra", 4))}
    for split, (images, digits) in written.items():
        data = load("svhn", tmp_path, split)
        assert data.images.shape == (len(digits), 3, 32, 32)
        assert torch.equal(data.images, torch.from_numpy(images))
        assert data.labels.tolist() == digits.tolist() and 0 in digits   # 10 on disk is the digit 0
    with pytest.raises(GanzooError, match="Dataset 'svhn' has no split 'valid'; its splits: train, test, extra"):
        load("svhn", tmp_path, "valid")


def test_damaged_svhn_files(tmp_path):
    write_svhn(tmp_path, "train", 6)
    path = tmp_path / "train_32x32.mat"
    raw = path.read_bytes()
    for content, message in [(raw[: len(raw) // 2], "is not a readable SVHN .mat file"),
                             (b"hello", "is not a readable SVHN .mat file")]:
        path.write_bytes(content)
        with pytest.raises(GanzooError, match=message):
            load("svhn", tmp_path)
    import scipy.io
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 1, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(GanzooError, match=r"its X is uint8 \(32, 32, 1, 2\), not uint8 \[32, 32, 3, N\]"):
        load("svhn", tmp_path)


# -- STL-10 -----------------------------------------------------------------------------------------------------

def test_stl10_binaries_and_splits(tmp_path):
    written = write_stl10(tmp_path, {"train": 5, "test": 3, "unlabeled": 4})
    native = {split: load("stl10", tmp_path, split, image_size=96) for split in
              ("train", "test", "unlabeled", "train+unlabeled")}
    for split in ("train", "test", "unlabeled"):
        images, labels = written[split]
        assert torch.equal(native[split].images, torch.from_numpy(images))      # column-major undone
        assert native[split].labels.tolist() == (labels.tolist() if labels is not None else [-1] * 4)
    both = native["train+unlabeled"]
    assert both.images.shape == (9, 3, 96, 96) and both.labels.tolist()[5:] == [-1] * 4
    assert native["train"].classes[7] == "monkey"
    assert load("stl10", tmp_path, image_size=64).images.shape == (5, 3, 64, 64)  # 96 to DCGAN's 64


def test_damaged_stl10_files(tmp_path):
    write_stl10(tmp_path, {"train": 3, "test": 2})
    folder = tmp_path / "stl10_binary"
    (folder / "test_y.bin").write_bytes(b"\x01\x02\x03")
    with pytest.raises(GanzooError, match="test_y.bin is not the STL-10 label file of its 2 images"):
        load("stl10", tmp_path, "test")
    raw = (folder / "train_X.bin").read_bytes()
    (folder / "train_X.bin").write_bytes(raw[:-100])
    with pytest.raises(GanzooError, match=r"train_X.bin is not an STL-10 image file: .* \(truncated\?\)"):
        load("stl10", tmp_path)
    with pytest.raises(GanzooError, match="holds no STL-10 files: put the folder stl10_binary/ from stl10_binary.tar.gz "
                                          r"\(with unlabeled_X.bin\)"):
        load("stl10", tmp_path, "unlabeled")


# -- CelebA ------------------------------------------------------------------------------------------------------

def test_celeba_partition_and_the_108_crop(tmp_path):
    write_celeba(tmp_path, [0, 0, 0, 1, 2, 0, 2])
    counts = {split: len(load("celeba", tmp_path, split, image_size=16)) for split in ("train", "valid", "test", "all")}
    assert counts == {"train": 4, "valid": 1, "test": 2, "all": 7}
    data = load("celeba", tmp_path, "train", image_size=16)
    # the 108x108 centre is all the face: no pixel of the dark frame is left after the crop
    assert data.images.shape == (4, 3, 16, 16) and data.images[:, 0].min() > 150
    assert data.labels is None and data.cache is not None
    # without the crop (the centre square of 178x178) the frame shows: the evaluators' own square
    plain = prepare_images(torch.from_numpy(np.array(face(1))).permute(2, 0, 1)[None], 16, 3)
    assert plain[0, 0].min() < 40
    same = load("celeba", tmp_path / "celeba", "train", image_size=16)          # --data-dir may be celeba/ itself
    assert torch.equal(same.images, data.images)


def test_damaged_celeba_copies(tmp_path):
    folder = write_celeba(tmp_path, [0, 0, 1])
    (folder / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(GanzooError, match="lacks 1 of the 2 images list_eval_partition.txt lists for the train split "
                                          r"\(the first: 000002.jpg\)"):
        load("celeba", tmp_path)
    (folder / "list_eval_partition.txt").write_text("000001.jpg 0\n000003.jpg train\n")
    with pytest.raises(GanzooError, match="list_eval_partition.txt line 2 reads '000003.jpg train'"):
        load("celeba", tmp_path)
    (folder / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    (folder / "img_align_celeba" / "000001.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(GanzooError, match="000001.jpg is not a readable image"):
        load("celeba", tmp_path)


# -- LSUN ----------------------------------------------------------------------------------------------------------

def test_lsun_lmdb(tmp_path):
    sizes = [(300, 256), (256, 341), (256, 256), (64, 80), (256, 300)]
    images = [Image.new("RGB", size, (40 * i, 255 - 40 * i, 128)) for i, size in enumerate(sizes)]
    write_lsun(tmp_path, "bedroom_train", images)
    write_lsun(tmp_path, "bedroom_val", images[:2])
    write_lsun(tmp_path, "kitchen_train", images[:3])
    data = load("lsun", tmp_path, image_size=16)
    assert data.images.shape == (5, 3, 16, 16) and data.labels is None
    # records come in key order; each keeps its colour through JPEG or WebP, crop and resize
    colours = sorted(tuple(int(v) for v in data.images[i, :, 8, 8] // 20) for i in range(5))
    assert colours == sorted(tuple(int(v) // 20 for v in (40 * i, 255 - 40 * i, 128)) for i in range(5))
    assert len(load("lsun", tmp_path, "test", image_size=16)) == 2                       # bedroom_val
    assert len(load("lsun", tmp_path, "kitchen", image_size=16)) == 3                    # kitchen_train
    assert len(load("lsun", tmp_path, "kitchen_train", image_size=16)) == 3
    with pytest.raises(GanzooError, match="holds no LSUN files: put the folder church_outdoor_val_lmdb/"):
        load("lsun", tmp_path, "church_outdoor_val")
    with pytest.raises(GanzooError, match="LSUN has no split 'garage'"):
        load("lsun", tmp_path, "garage")


def test_lsun_not_an_lmdb_and_lmdb_not_installed(tmp_path, monkeypatch):
    (tmp_path / "bedroom_train_lmdb").mkdir()
    (tmp_path / "bedroom_train_lmdb" / "data.mdb").write_bytes(b"\0" * 10000)
    with pytest.raises(GanzooError, match="bedroom_train_lmdb is not a readable lmdb database"):
        load("lsun", tmp_path)
    monkeypatch.setitem(sys.modules, "lmdb", None)                                  # `import lmdb` fails
    with pytest.raises(GanzooError, match=r"need the lmdb package: pip install 'pyganzoo\[lsun\]'"):
        load("lsun", tmp_path)


# -- image folders ---------------------------------------------------------------------------------------------------

def test_nested_folders_with_class_subfolders(tmp_path):
    for cls, colour, count in (("cat", (255, 0, 0), 3), ("dog", (0, 0, 255), 2)):
        (tmp_path / cls / "deeper" / "still").mkdir(parents=True)
        for i in range(count):
            where = tmp_path / cls / ("deeper/still" if i == 0 else "")
            Image.new("RGB", (30 + i, 20), colour).save(where / f"{i}.png")
    (tmp_path / ".thumbnails").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / ".thumbnails" / "x.png")              # hidden: skipped
    data = load("folder", tmp_path, image_size=8)
    assert data.images.shape == (5, 3, 8, 8) and data.classes == ("cat", "dog")
    assert data.labels.tolist() == [0, 0, 0, 1, 1]
    assert (data.images[data.labels == 0, 0] == 255).all() and (data.images[data.labels == 1, 2] == 255).all()
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.png")                           # an image outside any class
    assert load("folder", tmp_path, image_size=8).labels is None


def test_prepare_images_cuts_the_centre_then_resizes():
    wide = torch.zeros(1, 1, 10, 30, dtype=torch.uint8)
    wide[..., 10:20] = 200                                                          # the central 10x10 square
    assert (prepare_images(wide, 5, 1) == 200).all()
    cropped = prepare_images(torch.arange(36, dtype=torch.uint8).view(1, 1, 6, 6), 2, 1, crop=2)
    assert cropped.flatten().tolist() == [14, 15, 20, 21]                           # the 2x2 centre, as is


# -- finding the files: --data-dir, ganzoo's download folder, a download ------------------------------------------------

def test_files_are_found_in_the_download_folder_after_a_download(tmp_path, monkeypatch):
    from urllib.error import URLError

    from ganzoo_plugins.dataset_files import locate, torchvision_root

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    holds = lambda folder: (folder / "x.bin").is_file()
    common = dict(title="X", layout=("x-data",), holds=holds, files="x.bin (or the folder x-data/)")

    def offline(root):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(GanzooError, match=r"^X could not be downloaded \(URLError: <urlopen error \[Errno -3\] "
                                          r"Temporary failure in name resolution>\); on a machine without internet, put "
                                          r"x.bin \(or the folder x-data/\) in a folder and pass --data-dir FOLDER.$"):
        locate(None, download=True, fetch=offline, **common)
    with pytest.raises(GanzooError, match="was downloaded, but its files are not in"):
        locate(None, download=True, fetch=lambda root: None, **common)
    fetched = []

    def download(root):                                       # what torchvision does: files under its root
        fetched.append(root)
        (root / "x-data").mkdir(parents=True)
        (root / "x-data" / "x.bin").write_bytes(b"x")

    assert locate(None, download=True, fetch=download, **common) == torchvision_root() / "x-data"
    assert locate(None, download=False, fetch=download, **common) == torchvision_root() / "x-data"   # found, not fetched
    assert fetched == [torchvision_root()]
    with pytest.raises(GanzooError, match="is not a folder"):
        locate(str(tmp_path / "nowhere"), download=True, fetch=download, **common)


# -- read_dataset: what `ganzoo data` and the cache start from -------------------------------------------------------

def test_encoded_sets_are_not_decoded_to_be_read(tmp_path):
    write_celeba(tmp_path, [0, 0, 1])
    data = read_dataset("celeba", root=str(tmp_path), split="train", image_size=64, channels=3, download=False)
    assert len(data) == 2 and data.crop == 108 and data.location.endswith("celeba")


def test_data_command_shows_count_labels_files_and_a_grid(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar(tmp_path / "c", per_batch=4)
    code, out, err = run_cli(capsys, "data", "cifar10", "--data-dir", tmp_path / "c", "-n", "9")
    assert code == 0, err
    flat, squeezed = " ".join(out.split()), "".join(out.split())             # rich may wrap long cells
    assert "images 20" in flat and "stored as 3 x 32 x 32 uint8" in flat and "(of train, test)" in flat
    assert "10 classes: class0" in flat and str(tmp_path / "c" / "cifar-10-batches-py") in squeezed
    grid = Image.open(tmp_path / "cifar10-train.png")
    assert grid.size == (2 + 3 * (64 + 2), 2 + 3 * (64 + 2))                     # 3x3 cells of 32px shown at 2x
    write_stl10(tmp_path / "s", {"unlabeled": 5})
    code, out, err = run_cli(capsys, "data", "stl10", "--data-dir", tmp_path / "s", "--split", "unlabeled", "-n", "4",
                             "--out", tmp_path / "stl.png")
    assert code == 0, err
    assert "labels 5 unlabelled" in " ".join(out.split())
    write_celeba(tmp_path / "f", [0, 0, 0])
    code, out, err = run_cli(capsys, "data", "celeba", "--data-dir", tmp_path / "f", "--out", tmp_path / "faces.png")
    flat = " ".join(out.split())
    assert code == 0, err
    assert "image files of 178x218 (all 3 shown)" in flat and "centre crop 108x108" in flat
    assert "image cache" in flat and "not built yet" in flat
    assert Image.open(tmp_path / "faces.png").size == (2 + 2 * 66, 2 + 2 * 66)


@pytest.mark.usefixtures("one_thread")
def test_a_run_trains_on_the_split_it_is_given(tmp_path, capsys):
    write_stl10(tmp_path / "stl", {"train": 3, "unlabeled": 40})
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", "--data", "stl10", "--data-dir", tmp_path / "stl", "--split",
                           "unlabeled", "--image-size", "8", "--batch-size", "16", "--g-width", "4", "--d-width", "4",
                           "--epochs", "1", "--samples", "4", "--device", "cpu", "--out", out)
    assert code == 0, err
    assert "40 images" in err and "2 steps/epoch" in err                      # the 40 unlabelled, not the 3
    import json
    assert json.loads((out / "config.json").read_text())["split"] == "unlabeled"


def _modules_admitted():
    from ganzoo_plugins.cifar import BatchUnpickler

    return sorted({module for module, _ in BatchUnpickler.ADMITTED})


@pytest.mark.parametrize("module", _modules_admitted())
@pytest.mark.parametrize("name", ["frombuffer", "fromfile", "load"])
def test_the_cifar_unpickler_refuses_every_other_global_of_a_module_it_admits_from(module, name):
    """A batch naming any global outside the admitted list (here one of numpy's own) is refused by name
    before anything is looked up, whichever of the admitted modules it comes from."""
    from ganzoo_plugins.cifar import BatchUnpickler, load_batch

    assert (module, name) not in BatchUnpickler.ADMITTED
    raw = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n."            # GLOBAL module name; STOP
    with pytest.raises(GanzooError, match=f"it names {module}.{name}, which a CIFAR batch never holds"):
        load_batch(raw, "data_batch_1", "CIFAR-10")
