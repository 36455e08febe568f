"""Conditional models: labels reach G and D, (z, y) are drawn in one place, `sample --class` and the per-class
grid, the analyses with the class fixed, the refusal of unlabelled data, and the evaluator's agreement metric.

A probe model makes the labels visible: its G paints every pixel with a grey level that depends only on the
class it is given, and its D records the labels it is shown."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from helpers import install_plugin
from ganzoo import GanzooError, ImageData, ModelSpec, PowersOfTwo
from ganzoo.cli import main
from ganzoo.data import load_dataset
from ganzoo.run import make_config
from ganzoo.sampling import classes, draw, generate, latents, per_class
from ganzoo.train import Trainer

CLASSES = 4                                          # the fake dataset's quadrant labels
LEVELS = [0, 85, 170, 255]                           # the painter's grey per class, as saved pixels


class ClassPainter(nn.Module):
    """G(z, y) whose output depends only on y: every pixel of sample b is 2 * y_b / (K - 1) - 1."""

    def __init__(self, *, image_size, channels, z_dim, width, num_classes):
        super().__init__()
        self.num_classes, self.shape = num_classes, (channels, image_size, image_size)
        self.unused = nn.Parameter(torch.zeros(()))  # something for the optimiser to hold
        self.seen = []

    def forward(self, z, y):
        self.seen.append(y.detach().cpu().clone())
        level = y.float() * (2 / (self.num_classes - 1)) - 1                       # [B]
        return level.view(-1, 1, 1, 1).expand(-1, *self.shape) + 0 * (self.unused + z.sum(1).view(-1, 1, 1, 1))


class LabelRecorder(nn.Module):
    """D(x, y): a convolution of x plus a class embedding; remembers every y it is shown."""

    def __init__(self, *, image_size, channels, width, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, image_size)
        self.embed = nn.Embedding(num_classes, 1)
        self.seen = []

    def forward(self, x, y):
        self.seen.append(y.detach().cpu().clone())
        return self.conv(x).flatten() + self.embed(y).flatten()


@pytest.fixture
def painter(monkeypatch, request):
    install_plugin(monkeypatch, request, "ganzoo_conditional_probe",
                   register_generators=lambda register: register("painter", ClassPainter, image_sizes=PowersOfTwo(8),
                                                                 conditional=True),
                   register_discriminators=lambda register: register("recorder", LabelRecorder, conditional=True),
                   register_models=lambda register: register(
                       "painter", ModelSpec(generator="painter", discriminator="recorder", loss="nonsaturating")))


TINY = dict(data="fake", epochs=1, batch_size=32, g_width=8, d_width=8, z_dim=16, samples=8, device="cpu",
            log_every=4)


def grey_levels(png, rows: int, cols: int, size: int) -> np.ndarray:
    """The grey of each cell of a torchvision grid (2 px padding) as [rows, cols] uint8."""
    pixels = np.asarray(Image.open(png).convert("L"))
    assert pixels.shape == (rows * (size + 2) + 2, cols * (size + 2) + 2)
    cells = [[pixels[2 + r * (size + 2): r * (size + 2) + size + 2, 2 + c * (size + 2): c * (size + 2) + size + 2]
              for c in range(cols)] for r in range(rows)]
    for row in cells:                                      # every cell one flat grey
        for cell in row:
            assert cell.min() == cell.max()
    return np.array([[cell[0, 0] for cell in row] for row in cells])


def test_labels_reach_g_and_d_and_g_draws_each_class(painter, one_thread):
    config = make_config("painter", TINY)
    assert config.num_classes == CLASSES                      # the dataset's declared class count
    data = load_dataset("fake", root=None, split="train", image_size=32, channels=1, download=False)
    trainer = Trainer(config, data)
    real, labels = next(trainer.batches.labelled(trainer.data_rng))
    assert torch.equal(labels, data.labels[torch.randperm(len(data), generator=torch.Generator().manual_seed(
        config.seed))[:32]])                                  # the batch's own labels, in its order
    trainer.G.seen.clear(), trainer.D.seen.clear()
    trainer.step(real, labels)
    assert [y.tolist() for y in trainer.G.seen] == [labels.tolist()]        # G draws the batch's classes
    assert len(trainer.D.seen) == 3 and all(torch.equal(y, labels) for y in trainer.D.seen)  # real, fake, fake for G
    images = generate(trainer.step.sampler, trainer.loop.fixed_noise, trainer.loop.fixed_labels)  # sample i: class i % K
    expected = (torch.arange(8) % CLASSES).float() * (2 / 3) - 1
    assert torch.allclose(images.amax(dim=(1, 2, 3)), expected) and torch.allclose(images.amin(dim=(1, 2, 3)), expected)


def test_regularisers_and_augmentation_show_d_the_labels_too(painter, one_thread):
    config = make_config("painter", dict(TINY, regularizers="gp:10,r1:0.1@2", augment="translation"))
    data = load_dataset("fake", root=None, split="train", image_size=32, channels=1, download=False)
    trainer = Trainer(config, data)
    calls = []
    for real, labels in list(trainer.batches.labelled(trainer.data_rng))[:2]:
        trainer.D.seen.clear()
        assert torch.isfinite(trainer.step(real, labels)).all()
        assert all(torch.equal(y, labels) for y in trainer.D.seen)                  # GP and R1 call D(x, y) too
        calls.append(len(trainer.D.seen))
    assert calls == [5, 4]           # real, fake, GP, R1 (lazy: step 0 only), fake for G
    assert set(trainer.step.stat_names) >= {"gp", "r1"}


def test_samples_are_drawn_as_z_and_a_class_per_number(painter):
    config = make_config("painter", TINY)
    z, y = draw(config, 3, range(10))
    assert torch.equal(z, latents(config, 3, range(10)))     # the same z an unconditional model gets
    assert y.tolist() == [i % CLASSES for i in range(10)]
    assert classes(config, [5, 9], cls=2).tolist() == [2, 2]
    z, y = per_class(config, 5)
    assert y.tolist() == [c for c in range(CLASSES) for _ in range(5)] and torch.equal(z[:5], z[15:])
    plain = make_config("dcgan", TINY)
    assert plain.num_classes == 0 and draw(plain, 3, range(4))[1] is None
    with pytest.raises(GanzooError, match=r"^--class must be one of the model's 4 classes, 0 to 3, got 4\.$"):
        classes(config, range(3), cls=4)


def test_a_conditional_model_refuses_unlabelled_data(painter):
    images = torch.zeros(64, 1, 32, 32, dtype=torch.uint8)
    with pytest.raises(GanzooError, match=r"^The model 'painter' is conditioned on class labels, and the dataset "
                                          r"'fake' \(train\) has none; train it on labelled data"):
        Trainer(make_config("painter", TINY), ImageData(images, name="unlabelled"))
    half = torch.tensor([0, -1] * 32)
    with pytest.raises(GanzooError, match="has images without one"):
        Trainer(make_config("painter", TINY), ImageData(images, half, name="half"))


@pytest.fixture
def painter_run(painter, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "painter", "--data", "fake", "--batch-size", "64", "--z-dim", "16", "--samples", "8",
                 "--device", "cpu", "--epochs", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    return out


def test_sample_class_per_class_grid_and_the_analyses(painter_run, tmp_path, capsys):
    weights = painter_run / "painter.safetensors"
    grid = grey_levels(painter_run / "samples" / "epoch_001.png", 2, 4, 32)   # a row of 4: column c is class c
    assert (grid == [LEVELS, LEVELS]).all()

    assert main(["sample", str(weights), "--class", "2", "-n", "4", "--out", str(tmp_path / "two.png")]) == 0
    assert (grey_levels(tmp_path / "two.png", 2, 2, 32) == LEVELS[2]).all()    # the weights carry num_classes
    assert main(["sample", str(weights), "--by-class", "-n", "3", "--out", str(tmp_path / "rows.png")]) == 0
    rows = grey_levels(tmp_path / "rows.png", CLASSES, 3, 32)                 # one row per class
    assert (rows == np.array(LEVELS)[:, None]).all()
    capsys.readouterr()
    assert main(["sample", str(weights), "--class", "7", "--out", str(tmp_path / "x.png")]) == 1
    assert capsys.readouterr().err.strip().endswith(
        "--class must be one of the model's 4 classes, 0 to 3, got 7.")

    # the analyses walk z with the class fixed
    assert main(["interpolate", str(painter_run), "--class", "1", "--rows", "2", "--steps", "3", "--no-gif",
                 "--out", str(tmp_path / "walk.png")]) == 0
    counts = np.bincount(np.asarray(Image.open(tmp_path / "walk.png").convert("L")).ravel(), minlength=256)
    cells = counts[LEVELS[1]]                            # 2 walks x 3 images, all class 1's grey
    assert cells >= 6 * 32 * 32 and all(counts[LEVELS[c]] < cells / 50 for c in (0, 2, 3))   # (caption pixels aside)
    assert main(["arithmetic", str(painter_run), "0,1 - 2 + 3", "--class", "3", "--out",
                 str(tmp_path / "sum.png")]) == 0
    capsys.readouterr()
    assert main(["probe", str(painter_run), "--out", str(tmp_path / "p.json")]) == 1
    assert "conditional model 'painter' has a D that judges an image together with its class" in \
        capsys.readouterr().err


def test_class_flags_refuse_an_unconditional_model(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "basicgan", "--data", "fake", "--batch-size", "256", "--g-width", "8", "--d-width", "8",
                 "--z-dim", "8", "--device", "cpu", "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["sample", str(out / "basicgan.safetensors"), "--class", "1", "--out", str(tmp_path / "x.png")]) == 1
    assert "is not conditioned on a class; --class needs a conditional model" in capsys.readouterr().err
    assert main(["sample", str(out / "basicgan.safetensors"), "--by-class", "--out", str(tmp_path / "x.png")]) == 1
    assert "a grid of one row per class needs a conditional model" in capsys.readouterr().err
    with pytest.raises(GanzooError, match="--num-classes is for conditional models"):
        make_config("dcgan", dict(TINY, num_classes=3))


def test_agreement_is_the_evaluators_accuracy_on_the_requested_classes(mnist_dir):
    from ganzoo.evaluate import Samples
    from ganzoo_plugins.mnist_metrics import mnist_agreement

    data = load_dataset("mnist", root=str(mnist_dir), split="test", image_size=32, channels=1, download=False)
    images, labels = data.images[:500], data.labels[:500]
    right = mnist_agreement(Samples(images, "mnist", labels=labels))["class_agreement"]
    wrong = mnist_agreement(Samples(images, "mnist", labels=(labels + 1) % 10))["class_agreement"]
    assert right > 0.97 and wrong < 0.05, (right, wrong)
    assert mnist_agreement(Samples(images, "mnist")) == {}     # unconditional samples ask for no class


def test_cdcgan_projection_discriminator_trains_on_the_labels(one_thread):
    config = make_config("cdcgan", dict(TINY, options={"discriminator": {"projection": True}}))
    data = load_dataset("fake", root=None, split="train", image_size=32, channels=1, download=False)
    trainer = Trainer(config, data)
    assert trainer.D.projection and trainer.D.embed.num_embeddings == CLASSES
    real, labels = next(trainer.batches.labelled(trainer.data_rng))
    assert torch.isfinite(trainer.step(real, labels)).all()
    trainer.D.eval()
    with torch.no_grad():                                  # the class moves the logit: <embed(y), features>
        assert not torch.equal(trainer.D(real, labels), trainer.D(real, (labels + 1) % CLASSES))


def test_every_conv_input_of_cdcgan_carries_the_class_maps():
    """The class reaches every layer, as conv_cond_concat does: each convolution's input ends with the one-hot
    maps of y, in G and in D (its logit layer too), not only the first."""
    from ganzoo.models import build_discriminator, build_generator
    from ganzoo.resolve import settle

    config = make_config("cdcgan", dict(TINY))
    settle(config, load_dataset("fake", root=None, split="train", image_size=32, channels=1, download=False))
    K = config.num_classes
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    for net, call in ((build_generator(config), lambda G: G(torch.randn(6, config.z_dim), y)),
                      (build_discriminator(config), lambda D: D(torch.rand(6, 1, 32, 32) * 2 - 1, y))):
        inputs = []
        convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        hooks = [m.register_forward_pre_hook(lambda m, args: inputs.append(args[0].detach())) for m in convs]
        with torch.no_grad():
            call(net.eval())
        for h in hooks:
            h.remove()
        assert len(inputs) == len(convs) >= 4
        for x in inputs:
            maps = torch.nn.functional.one_hot(y, K).float()[:, :, None, None].expand(-1, -1, *x.shape[2:])
            assert torch.equal(x[:, -K:], maps), f"a convolution of {type(net).__name__} sees no class maps"


def test_evaluate_gives_the_metrics_the_class_each_sample_was_drawn_as(painter, monkeypatch, request):
    """The painter's sample i is painted in the grey of its class: the labels a metric is given must match."""
    from ganzoo.evaluate import evaluate
    from ganzoo.models import build_generator
    from ganzoo.resolve import settle

    seen = {}

    def record(samples):
        seen.update(images=samples.images, labels=samples.labels)
        return {"recorded": 1.0}

    install_plugin(monkeypatch, request, "ganzoo_label_metric",
                   register_metrics=lambda register: register("labels_seen", record, datasets=("fake",)))
    config = make_config("painter", dict(TINY))
    settle(config, load_dataset("fake", root=None, split="train", image_size=32, channels=1, download=False))
    evaluate(build_generator(config), config=config, metrics="labels_seen", n=20, device="cpu")
    grey = seen["images"][:, 0, 0, 0].long()                                   # [20] uint8 levels
    assert seen["labels"].tolist() == [i % CLASSES for i in range(20)]
    assert grey.tolist() == [LEVELS[c] for c in seen["labels"].tolist()]


@pytest.mark.parametrize("memory_budget", [None, 1], ids=["held", "streamed"])
def test_batches_keep_each_image_with_its_label(memory_budget):
    """However batches are made (held on the device, or streamed from host memory), each image comes with its
    own label, shuffled together."""
    from ganzoo.data import make_batches

    data = load_dataset("fake", root=None, split="train", image_size=32, channels=1, download=False)
    batches = make_batches(data, 32, torch.device("cpu"), memory_budget or data.images.nbytes, labelled=True)
    assert batches.streamed == (memory_budget is not None)
    index = {bytes(image.numpy()): i for i, image in enumerate(data.images)}
    assert len(index) == len(data.images)                                      # every image is distinct
    order = []
    for images, labels in batches.labelled(torch.Generator().manual_seed(3)):
        for image, label in zip(images, labels):
            i = index[bytes(((image + 1) * 127.5).round().to(torch.uint8).numpy())]
            assert label == data.labels[i]
            order.append(i)
    assert order != sorted(order)                                              # shuffled, not in order
