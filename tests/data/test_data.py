import gzip
import io
import shutil

import pytest
import torch
from PIL import Image
from rich.console import Console

from ganzoo import GanzooError
from ganzoo.data import DeviceBatches, ImageData, load_dataset, prepare_images, to_model_range
from ganzoo.errors import Interrupted
from ganzoo.train import Trainer

from helpers import stop_at, tiny_config, watch_steps


def test_mnist_from_gzipped_copy(mnist_dir):
    train = load_dataset("mnist", root=str(mnist_dir), split="train", image_size=32, channels=1)
    assert train.images.shape == (60000, 1, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.shape == (60000,) and set(train.labels.tolist()) == set(range(10))
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]                   # the official file's first labels
    test = load_dataset("mnist", root=str(mnist_dir), split="test", image_size=28, channels=1)
    assert test.images.shape == (10000, 1, 28, 28)
    # MNIST: a dark background (mean ~33/255), digits at full intensity
    assert 30 < test.images.float().mean() < 36 and test.images.max() == 255


def test_mnist_from_plain_idx_copy(mnist_dir, tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(mnist_dir / f"{name}.gz") as src, open(tmp_path / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    plain = load_dataset("mnist", root=str(tmp_path), split="test", image_size=28, channels=1)
    packed = load_dataset("mnist", root=str(mnist_dir), split="test", image_size=28, channels=1)
    assert torch.equal(plain.images, packed.images) and torch.equal(plain.labels, packed.labels)


def test_mnist_missing_files_and_offline(tmp_path):
    with pytest.raises(GanzooError, match="lacks the MNIST file"):
        load_dataset("mnist", root=str(tmp_path), split="train", image_size=32, channels=1)
    with pytest.raises(GanzooError, match="pass --data-dir"):
        load_dataset("mnist", root=None, split="train", image_size=32, channels=1, download=False)


def test_mnist_file_of_wrong_size(mnist_dir, tmp_path):
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", tmp_path)
    with gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz") as src:
        data = src.read()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(data[: len(data) // 3])
    with pytest.raises(GanzooError, match="t10k-images-idx3-ubyte"):
        load_dataset("mnist", root=str(tmp_path), split="test", image_size=28, channels=1)


def test_image_folder_any_sizes(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (50, 30), (255, 0, 0)).save(tmp_path / "a.png")
    Image.new("L", (16, 16), 128).save(tmp_path / "sub" / "b.jpg")
    Image.new("RGBA", (70, 70), (0, 0, 255, 10)).save(tmp_path / "c.png")
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_dataset("folder", root=str(tmp_path), split="train",
                        image_size=16, channels=3)
    assert data.images.shape == (3, 3, 16, 16)
    assert data.images[0, 0].float().mean() > 250 and data.images[0, 1].float().mean() < 5   # red
    assert data.images[1, 2].float().mean() > 250 and data.images[1, 0].max() == 0           # blue, alpha dropped
    assert (data.images[2] == 128).all()                                                     # grey -> RGB
    grey = load_dataset("folder", root=str(tmp_path), split="train", image_size=8, channels=1)
    assert grey.images.shape == (3, 1, 8, 8)


def test_image_folder_empty_or_unreadable(tmp_path):
    with pytest.raises(GanzooError, match="holds no images"):
        load_dataset("folder", root=str(tmp_path), split="train", image_size=16, channels=3)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(GanzooError, match="broken.png is not a readable image"):
        load_dataset("folder", root=str(tmp_path), split="train", image_size=16, channels=3)


def test_prepare_images_channels_and_sizes():
    grey = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    rgb = prepare_images(grey, 32, 3)
    assert rgb.shape == (5, 3, 32, 32) and torch.equal(rgb[:, 0], rgb[:, 2])
    wide = torch.zeros(2, 3, 20, 40, dtype=torch.uint8)
    assert prepare_images(wide, 10, 1).shape == (2, 1, 10, 10)
    assert torch.equal(prepare_images(grey, 28, 1), grey)


def test_device_batches_cover_the_data_once_per_epoch():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    batches = DeviceBatches(images, 30, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([b.flatten() for b in batches.epoch(g)])
    assert batches.steps_per_epoch == 3 and len(seen) == 90                # last partial batch dropped
    assert len(set(seen.tolist())) == 90                                   # no repeats
    assert seen.min() >= -1 and seen.max() <= to_model_range(torch.tensor([255], dtype=torch.uint8))
    with pytest.raises(GanzooError, match="fewer than one batch"):
        DeviceBatches(images, 128, torch.device("cpu"))


@pytest.mark.parametrize("memory_budget", [0, 1], ids=["held", "streamed"])
def test_training_shuffles_anew_every_epoch_and_resumes_the_same_order(tmp_path, one_thread, memory_budget,
                                                                      monkeypatch):
    """64 images, 4 steps of 16 per epoch, 3 epochs: each epoch is a permutation of all images, no two
    epochs (nor two seeds) share an order, and a run stopped mid-epoch resumes the very same order; with the
    images held on the device or streamed from host memory (a 1-byte budget)."""
    images = torch.arange(64, dtype=torch.uint8).view(64, 1, 1, 1).expand(64, 1, 8, 8).contiguous()
    data = ImageData(images, name="indexed")

    def run(name, seed=0, stop=None, resume=False):
        config = tiny_config(tmp_path / name, image_size=8, channels=1, batch_size=16, epochs=3, seed=seed,
                             g_width=4, d_width=4, memory_budget=memory_budget)
        trainer = Trainer(config, data, Console(file=io.StringIO()))
        seen = []                                 # which images each step trains on (image i holds the value i)
        with monkeypatch.context() as patch:
            watch_steps(patch, trainer, lambda real, labels, stats: seen.append(
                ((real[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()))
            if stop:
                stop_at(patch, trainer, stop)                              # what the first Ctrl-C does
            return train_and_see(trainer, resume, seen)

    def train_and_see(trainer, resume, seen):
        assert getattr(trainer.batches, "streamed", False) == bool(memory_budget)
        if resume:
            trainer.load_checkpoint(trainer.files.checkpoint)
        try:
            trainer.fit()
        except Interrupted:
            pass
        return [i for batch in seen for i in batch]

    order = run("whole")
    epochs = [order[i:i + 64] for i in range(0, len(order), 64)]
    assert len(epochs) == 3
    for epoch in epochs:
        assert sorted(epoch) == list(range(64))                            # every image once per epoch
        assert epoch != list(range(64))                                    # ... shuffled
    assert len({tuple(e) for e in epochs}) == 3                            # ... anew each epoch
    assert run("other-seed", seed=1)[:64] != epochs[0]                     # the seed decides the order
    stopped = run("part", stop=6)                                       # epoch 2, after 2 of its 4 steps
    assert stopped == order[:6 * 16]
    assert stopped + run("part", resume=True) == order                     # the resumed run sees the same order
