"""PacGAN packing (ganzoo.models.Packed, --pack m): the reshape, what a packed D sees in a real training step,
any registered D packed, and the batch sizes it refuses."""

import pytest
import torch
from torch import nn

from ganzoo import GanzooError
from ganzoo.models import Packed, build_discriminator, pack_samples
from ganzoo.train import Trainer
from ganzoo.data import load_dataset

from helpers import tiny_config
from helpers import install_plugin


def test_packing_stacks_m_consecutive_samples_along_channels():
    x = torch.arange(6 * 3 * 2 * 2, dtype=torch.float32).reshape(6, 3, 2, 2)      # [B=6, C=3, H, W]
    packed = pack_samples(x, 2)
    assert packed.shape == (3, 6, 2, 2)                                          # [B/m, m*C, H, W]
    for i in range(3):
        for j in range(2):
            assert torch.equal(packed[i, 3 * j:3 * (j + 1)], x[2 * i + j])       # pack i: samples 2i, 2i+1
    assert pack_samples(x, 3).shape == (2, 9, 2, 2)
    assert torch.equal(pack_samples(x, 1), x)
    with pytest.raises(GanzooError, match="3 at a time; it was given 4"):
        pack_samples(x[:4], 3)


def first_layer_inputs(D: Packed) -> list[torch.Tensor]:
    """What the packed D's inner network receives, call by call."""
    seen = []
    D.inner.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    return seen


def test_a_packed_d_sees_m_distinct_real_and_fake_samples_in_a_training_step(tmp_path):
    config = tiny_config(tmp_path, model="pacdcgan2", batch_size=8, precision="fp32")
    assert config.pack == 2
    trainer = Trainer(config, load_dataset("fake", root=None, split="train", image_size=32, channels=1))
    assert isinstance(trainer.D, Packed)
    first_conv = next(m for m in trainer.D.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 2                                           # m * C for grey images
    seen = first_layer_inputs(trainer.D)
    real = next(trainer.batches.epoch(torch.Generator().manual_seed(0)))         # [8, 1, 32, 32]
    stats = trainer.step(real)
    assert torch.isfinite(stats).all()
    d_real, d_fake, d_fake_for_g = seen                                          # D's three calls in a step
    for packs in seen:
        assert packs.shape == (4, 2, 32, 32)                                     # [B/m, m*C, H, W]
        first, second = packs[:, :1], packs[:, 1:]
        assert (first - second).flatten(1).abs().amax(1).min() > 0.1            # each pack: two distinct samples
    assert torch.equal(pack_samples(real.float(), 2), d_real)                   # the real batch, nothing lost
    assert torch.equal(d_fake, d_fake_for_g)                                     # G is scored on the same packs
    assert not torch.equal(d_real, d_fake)                                       # packs are all real or all fake
    assert trainer.D(real.float()).shape == (4,)                                 # one score per pack


@pytest.mark.parametrize("model, pack, first_layer", [("basicgan", 3, nn.Linear), ("wgangp", 2, nn.Conv2d)])
def test_any_discriminator_can_be_packed(tmp_path, model, pack, first_layer):
    config = tiny_config(tmp_path, model=model, pack=pack, batch_size=6 * pack, image_size=16, precision="fp32")
    D = build_discriminator(config)
    assert isinstance(D, Packed) and D.pack == pack
    layer = next(m for m in D.modules() if isinstance(m, first_layer))
    width = layer.in_features if first_layer is nn.Linear else layer.in_channels
    assert width == pack * (16 * 16 if first_layer is nn.Linear else 1)          # m*C*H*W inputs, or m*C channels
    trainer = Trainer(config, load_dataset("fake", root=None, split="train", image_size=16, channels=1))
    before = [p.detach().clone() for p in trainer.D.parameters()]
    for real in list(trainer.batches.epoch(torch.Generator().manual_seed(0)))[:2]:
        assert torch.isfinite(trainer.step(real)).all()                    # wgangp: the gradient penalty too
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.D.parameters()))
    assert trainer.D(real.float()).shape == (6,)


def test_a_batch_size_not_divisible_by_the_pack_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(GanzooError, match=r"^--batch-size 9 is not a multiple of --pack 2: .* use e.g. "
                                          r"--batch-size 8\.$"):
        tiny_config(tmp_path, model="pacdcgan2", batch_size=9)
    with pytest.raises(GanzooError, match="--pack must be a positive integer"):
        tiny_config(tmp_path, pack=0)
    assert tiny_config(tmp_path, model="pacdcgan2", pack=1, batch_size=9).pack == 1     # --pack 1: no packing


def test_a_packed_discriminator_gives_no_per_image_features(tmp_path):
    from ganzoo.analysis.features import hidden_features

    D = build_discriminator(tiny_config(tmp_path, model="pacdcgan2", batch_size=8))
    with pytest.raises(GanzooError, match="judges packs of 2 images .* cannot classify one image"):
        hidden_features(D, torch.zeros(4, 1, 32, 32, dtype=torch.uint8))


class GreyOnlyD(nn.Module):
    def __init__(self, *, image_size, channels, width):
        super().__init__()
        self.net = nn.Linear(channels * image_size * image_size, 1)

    def forward(self, x):
        return self.net(x.flatten(1)).flatten()


def test_a_discriminator_that_declares_its_channel_counts_is_not_packed(tmp_path, monkeypatch, request):
    install_plugin(monkeypatch, request, "ganzoo_grey_d", register_discriminators=lambda register:
                   register("grey", GreyOnlyD, channel_counts=(1,)))
    assert tiny_config(tmp_path, discriminator="grey").pack == 1                     # unpacked, it trains
    with pytest.raises(GanzooError, match=r"^The discriminator 'grey' takes images with only 1 channel\(s\), so it "
                                          r"cannot judge packs of 2 .* use --pack 1 or another discriminator\.$"):
        tiny_config(tmp_path, model="pacdcgan2", discriminator="grey")


def test_a_conditional_discriminator_is_not_packed(tmp_path):
    assert tiny_config(tmp_path, model="cdcgan").pack == 1                           # unpacked, it trains
    with pytest.raises(GanzooError, match=r"^--pack 2 packs samples of different classes, and the conditional "
                                          r"discriminator 'cdcgan' judges one class per image; use --pack 1\.$"):
        tiny_config(tmp_path, model="cdcgan", pack=2)


def test_a_pack_that_does_not_fit_each_ranks_share_is_refused_before_any_file(tmp_path, monkeypatch, capsys):
    """--pack 2 --batch-size 6 on 2 processes: 6 is a multiple of 2 and splits over 2, but each process gets 3
    images. Refused up front, on the env torchrun sets (no process group forms), leaving no folder."""
    import socket

    from ganzoo.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                            MASTER_PORT=str(port)).items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "run"
    code = main(["run", "dcgan", "--data", "fake", "--image-size", "16", "--batch-size", "6", "--pack", "2",
                 "--device", "cpu", "--out", str(out)])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "error: --batch-size 6 gives each of 2 processes 3 images, which is not a multiple of --pack 2: the packed "
        "discriminator judges whole packs of 2 samples; use e.g. --batch-size 4.")
    assert not out.exists()
