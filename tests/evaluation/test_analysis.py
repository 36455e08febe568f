"""The DCGAN paper's analyses on tiny networks: walks, arithmetic, features, probes, dropout, and their commands."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import GanzooError, RunConfig
from ganzoo.analysis.arithmetic import combine, parse_expression, vector_arithmetic
from ganzoo.analysis.common import BACKGROUND, to_pil
from ganzoo.checkpoint import load_networks
from ganzoo.runfiles import weights_file
from ganzoo.sampling import generate
from ganzoo.analysis.dropout import (dropped, generate_dropped, hidden_layers, map_activations, maps_by_ablation,
                                     maps_for_class)
from ganzoo.analysis.features import (feature_layers, fit_linear, hidden_features, one_vs_rest, per_class_subset,
                                      pixel_features, train_probe)
from ganzoo.analysis.filters import first_layer_filters, generator_maps
from ganzoo.analysis.interpolate import interpolate, lerp, slerp, walk
from ganzoo.analysis.labellers import label, pick_by_class
from ganzoo.cli import main
from ganzoo.data import load_dataset
from ganzoo.models import build_discriminator, build_generator
from ganzoo.plugins import registries
from ganzoo.registry import Entry
from ganzoo.sampling import latents
from ganzoo.train import Trainer

from helpers import tiny_config

# a run of a few steps: batch 256 of fake data, width 4
POLISH = ["--data", "fake", "--batch-size", "256", "--g-width", "4", "--d-width", "4", "--z-dim", "8", "--device", "cpu"]

REGS = registries()


def tiny_nets(generator="dcgan", discriminator="dcgan"):
    config = RunConfig(generator=generator, discriminator=discriminator, image_size=32, channels=1, z_dim=16,
                       g_width=8, d_width=8)
    torch.manual_seed(0)
    return build_generator(config).eval(), build_discriminator(config).eval(), config


@pytest.fixture(scope="module")
def fake():
    return (load_dataset("fake", root=None, split="train", image_size=32, channels=1),
            load_dataset("fake", root=None, split="test", image_size=32, channels=1))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run folder (checkpoint + generator file) of a tiny DCGAN, a few steps into training."""
    config = tiny_config(tmp_path_factory.mktemp("analysis"))
    data = load_dataset("fake", root=None, split="train", image_size=32, channels=1)
    trainer = Trainer(config, data)
    for real in list(trainer.batches.epoch(trainer.data_rng))[:4]:
        trainer.step(real)
    trainer.save_checkpoint()
    return trainer.files.root


# -- latent walks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("generator", [n for n in REGS.generators.names()    # conditional G: test_conditional.py
                                       if REGS.generators.get(n).supports_image_size(32)
                                       and not REGS.generators.get(n).conditional])
@pytest.mark.parametrize("mode", ["slerp", "lerp"])
def test_walk_endpoints_are_the_endpoint_samples(mode, generator):
    G, _, config = tiny_nets(generator=generator)
    keys = torch.stack([latents(config, 0, [0, 1, 2]), latents(config, 0, [3, 4, 5])])        # [2 rows, 3 keys, d]
    images, z = interpolate(G, keys, steps=5, mode=mode)
    assert images.shape == (2, 9, 1, 32, 32) and z.shape == (2, 9, 16)
    # each keyframe is hit exactly, at columns 0, 4 and 8
    for col, key in ((0, 0), (4, 1), (8, 2)):
        assert torch.equal(z[:, col], keys[:, key])
    # and its image is the sheet's image of that sample
    sheet = generate(G, latents(config, 0, range(6)))
    torch.testing.assert_close(images[:, 0], sheet[[0, 3]], rtol=0, atol=1e-6)
    torch.testing.assert_close(images[:, -1], sheet[[2, 5]], rtol=0, atol=1e-6)
    # the walk moves: neighbouring columns differ, and less than the two ends do
    assert (images[:, 1] - images[:, 0]).abs().mean() < (images[:, -1] - images[:, 0]).abs().mean()


def test_slerp_follows_the_sphere_and_lerp_cuts_inside():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(100, generator=g), torch.randn(100, generator=g)
    z1 = z1 / z1.norm() * z0.norm()                                          # equal norms: a great circle
    t = torch.linspace(0, 1, 11)
    arc, line = slerp(z0, z1, t), lerp(z0, z1, t)
    torch.testing.assert_close(arc.norm(dim=1), z0.norm().expand(11), rtol=1e-5, atol=0)
    assert line.norm(dim=1)[5] < 0.8 * z0.norm()                             # ~1/sqrt(2) for near-orthogonal ends
    # equal angular steps along the arc
    cos = torch.nn.functional.cosine_similarity(arc[:-1], arc[1:], dim=1)
    torch.testing.assert_close(cos, cos[0].expand(10), rtol=1e-5, atol=0)
    # unequal norms: the norm moves monotonically between the ends' norms
    arc = slerp(z0, 2 * z1, t).norm(dim=1)
    assert (arc[1:] >= arc[:-1] - 1e-5).all() and arc[0] == z0.norm() and torch.isclose(arc[-1], 2 * z0.norm())
    # parallel ends fall back to the line instead of dividing by sin(0)
    assert torch.isfinite(slerp(z0, 3 * z0, t)).all()


def test_walk_through_keyframes_and_bad_steps():
    keys = torch.randn(4, 8)
    path = walk(keys, steps=6)
    assert path.shape == (16, 8) and torch.equal(path[5], keys[1]) and torch.equal(path[-1], keys[3])
    with pytest.raises(GanzooError, match="at least 2"):
        walk(keys, steps=1)


def test_sheet_indices_name_the_same_z_in_any_sheet():
    config = RunConfig(z_dim=100)
    assert torch.equal(latents(config, 3, [7])[0], latents(config, 3, range(50))[7])
    assert not torch.equal(latents(config, 3, [7]), latents(config, 4, [7]))
    uniform = latents(RunConfig(z_dim=100, latent="uniform"), 0, range(20))
    assert uniform.min() >= -1 and uniform.max() <= 1


# -- features and probes ----------------------------------------------------------------------------

def test_dcgan_features_are_every_conv_layer_pooled_to_4x4(fake):
    _, D, _ = tiny_nets()
    x, widths = hidden_features(D, fake[1].images[:10])
    # D at 32x32, width 8: conv outputs of 8@16x16, 16@8x8, 32@4x4 -> channels * 16 each
    assert widths == [8 * 16, 16 * 16, 32 * 16]
    assert x.shape == (10, (8 + 16 + 32) * 16)
    # max pooling: the first layer's pooled maps are the maxima of its 4x4 blocks
    maps = []
    with torch.no_grad():
        h = feature_layers(D)[0][1].register_forward_pre_hook(lambda m, a: maps.append(a[0].clone()))
        D(fake[1].images[:10].float() / 127.5 - 1)
        h.remove()
    torch.testing.assert_close(x[:, :128], torch.nn.functional.max_pool2d(maps[0], 4).flatten(1))


@pytest.mark.parametrize("name", [n for n in REGS.discriminators.names()     # a conditional D: refused (features
                                  if REGS.discriminators.get(n).supports_image_size(32)    # of an image alone)
                                  and not REGS.discriminators.get(n).conditional])
def test_features_of_every_discriminator_do_not_depend_on_the_batch(name, fake):
    D = REGS.discriminators.get(name).factory(image_size=32, channels=1, width=8).eval()
    images = fake[1].images[:12]
    x, widths = hidden_features(D, images, batch=5)
    alone, _ = hidden_features(D, images[7:8])
    assert x.shape == (12, sum(widths)) and torch.isfinite(x).all()
    torch.testing.assert_close(alone[0], x[7], rtol=1e-5, atol=1e-6)
    assert D.training is False


def test_l2svm_reaches_the_optimum():
    g = torch.Generator().manual_seed(0)
    for n, d in ((40, 300), (300, 20)):                                       # the dual and the primal solver
        x, y = torch.randn(n, d, generator=g), torch.randint(0, 3, (n,), generator=g)
        targets = one_vs_rest(y, torch.arange(3))
        model = fit_linear(x, targets, lam=1e-2)
        w, b = model.weight.clone().requires_grad_(), model.bias.clone().requires_grad_()
        xs = (x.double() - model.mean) / model.std
        objective = (torch.relu(1 - targets * (xs @ w + b)).square().mean(0).sum() + 1e-2 * w.square().sum())
        objective.backward()
        assert w.grad.norm() < 1e-8 and b.grad.norm() < 1e-8                   # stationary: the exact optimum
        # a stronger regulariser shrinks the weights
        assert fit_linear(x, targets, lam=1.0).weight.norm() < model.weight.norm()


def test_probe_beats_chance_on_quadrants(fake):
    train, test = fake
    _, D, _ = tiny_nets()
    idx = per_class_subset(train.labels, 20, seed=0)
    assert torch.equal(train.labels[idx].bincount(), torch.full((4,), 20))
    for features in (lambda im: hidden_features(D, im)[0], pixel_features):
        probe = train_probe(features(train.images[idx]), train.labels[idx], seed=0)
        accuracy = probe.accuracy(features(test.images[:400]), test.labels[:400])
        assert accuracy > 0.8, accuracy                                      # chance is 0.25
        assert probe.lam in probe.lambdas and probe.val_accuracy == probe.lambdas[probe.lam]
    # shuffled labels carry no signal: the same pipeline falls back near chance
    shuffled = train.labels[idx][torch.randperm(len(idx), generator=torch.Generator().manual_seed(1))]
    probe = train_probe(pixel_features(train.images[idx]), shuffled, lam=1e-2)
    assert probe.accuracy(pixel_features(test.images[:400]), test.labels[:400]) < 0.5


# -- arithmetic -------------------------------------------------------------------------------------

def test_expressions_parse_and_bad_ones_say_why():
    terms = parse_expression("3,7, 12 - 5,9 + class:4")
    assert [(t.sign, t.indices, t.label) for t in terms] == [(1, [3, 7, 12], None), (-1, [5, 9], None), (1, [], 4)]
    assert parse_expression("-1,2")[0].sign == -1
    for bad, message in (("3,7 5", "sample numbers"), ("3 - - 4", "Two signs"), ("3 +", "ends with a sign"),
                         ("", "no terms"), ("class:x", "sample numbers")):
        with pytest.raises(GanzooError, match=message):
            parse_expression(bad)


def test_arithmetic_of_identical_concepts_is_the_concept_mean():
    G, _, config = tiny_nets()
    work = vector_arithmetic(parse_expression("1,2,3 - 1,2,3 + 1,2,3"), config, G, variations=4)
    torch.testing.assert_close(work.result, latents(config, 0, [1, 2, 3]).mean(0), rtol=0, atol=1e-6)
    assert work.variations.shape == (4, 16) and (work.variations - work.result).abs().max() <= 0.25
    work = vector_arithmetic(parse_expression("1,2 - 3,4 + 5,6"), config, G, variations=2)
    z = latents(config, 0, range(7))
    torch.testing.assert_close(work.result, z[1:3].mean(0) - z[3:5].mean(0) + z[5:7].mean(0))
    assert torch.equal(combine([z[0], z[1]], [1, -1]), z[0] - z[1])


def brightness_scores(images):
    """A stand-in labeller: class 1 = brighter than the batch's median, scored by mean brightness."""
    m = images.mean(dim=(1, 2, 3))
    return torch.stack([-(m - m.median()), m - m.median()], 1)


def test_class_terms_take_a_labellers_most_confident_exemplars():
    G, _, config = tiny_nets()
    terms = parse_expression("class:1 - class:0")
    work = vector_arithmetic(terms, config, G, exemplars=4, pool=64, labeller=brightness_scores)
    brightness = generate(G, latents(config, 0, range(64))).mean(dim=(1, 2, 3))
    assert set(terms[0].indices) == set(brightness.argsort(descending=True)[:4].tolist())
    assert set(terms[1].indices) == set(brightness.argsort()[:4].tolist())
    torch.testing.assert_close(work.result, latents(config, 0, terms[0].indices).mean(0)
                               - latents(config, 0, terms[1].indices).mean(0))
    ids, confidence = label(lambda im: (im.mean(dim=(1, 2, 3)) > 0).long(), torch.zeros(3, 1, 4, 4))
    assert ids.tolist() == [0, 0, 0] and pick_by_class(ids, confidence, 0, 2).tolist() == [0, 1]
    with pytest.raises(GanzooError, match="need a labeller"):
        vector_arithmetic(parse_expression("class:1"), config, G)
    # too few of a class: the error says how the labeller split the pool
    with pytest.raises(GanzooError, match=r"Only 32 of 64 .* classes there: 0: 32, 1: 32\)"):
        vector_arithmetic(parse_expression("class:1"), config, G, exemplars=40, pool=64, labeller=brightness_scores)


# -- filters, feature maps, dropout -----------------------------------------------------------------

def test_filters_and_feature_maps_shapes():
    G, D, config = tiny_nets()
    filters = first_layer_filters(D, 1, 32)
    assert filters.shape == (8, 1, 4, 4) and filters.amin(dim=(1, 2, 3)).eq(-1).all()
    mlp = tiny_nets("mlp", "mlp")[1]
    assert first_layer_filters(mlp, 1, 32).shape == (128, 1, 32, 32)          # whole-image templates
    maps = generator_maps(G, latents(config, 0, [0])[0])
    assert [tuple(m.shape) for _, m in maps] == [(32, 4, 4), (16, 8, 8), (8, 16, 16)]
    with pytest.raises(GanzooError, match="no convolutional feature maps"):
        generator_maps(tiny_nets("mlp", "mlp")[0], torch.zeros(16))


def test_dropout_drops_exactly_the_chosen_maps():
    G, _, config = tiny_nets()
    z = latents(config, 0, range(8))
    layer = hidden_layers(G, 16)[-2]                                          # 16 maps of 8x8
    assert (layer.channels, layer.size) == (16, (8, 8))
    plain = generate(G, z)
    assert torch.equal(generate_dropped(G, z, layer, []), plain)              # nothing dropped: the same samples
    some = generate_dropped(G, z, layer, [0, 3])
    assert not torch.allclose(some, plain)
    # with every map of a layer dropped, G no longer depends on z: all samples are one image
    everything = generate_dropped(G, z, layer, range(16))
    torch.testing.assert_close(everything, everything[:1].expand_as(everything))
    # the hook is gone afterwards, and the dropped maps read zero inside
    assert torch.equal(generate(G, z), plain)
    with dropped(G, layer, [0, 3]):
        acts = map_activations(G, z, layer)
    assert acts[:, [0, 3]].abs().max() == 0 and acts[:, 1].abs().max() > 0


def test_probe_finds_the_maps_that_carry_a_class():
    g = torch.Generator().manual_seed(0)
    acts = torch.rand(400, 32, generator=g)
    positive = torch.rand(400, generator=g) < 0.3
    acts[positive, 5] += 1.0                                                  # maps 5 and 17 fire for the class
    acts[positive, 17] += 0.6
    assert maps_for_class(acts, positive, top=2) == [5, 17]
    every = maps_for_class(acts, positive, top=None)                         # the paper's rule: all positive weights
    assert every[:2] == [5, 17] and 2 < len(every) < 32
    with pytest.raises(GanzooError, match="both"):
        maps_for_class(acts, torch.zeros(400, dtype=torch.bool), top=2)


def test_ablation_picks_maps_whose_drop_removes_the_class(run_dir):
    """Class 1 = brighter than the median sample: the maps picked on one pool of z's, dropped on another,
    take more samples out of the class than as many random maps do."""
    nets = load_networks(weights_file(run_dir, prefer_checkpoint=True))
    G, config = nets.G, nets.config
    layer = hidden_layers(G, config.z_dim)[-2]
    pool, held_out = latents(config, 0, range(256)), latents(config, 1, range(256))
    threshold = generate(G, pool).mean(dim=(1, 2, 3)).median()

    def scores(images):
        m = images.mean(dim=(1, 2, 3)) - threshold
        return torch.stack([-m, m], 1)

    positive = scores(generate(G, pool)).argmax(1) == 1
    maps = maps_by_ablation(G, layer, scores, pool[positive][:64], pool[~positive][:64], 1, 3)
    assert len(maps) == 3 and all(0 <= m < layer.channels for m in maps)

    def in_class(maps):
        return (scores(generate_dropped(G, held_out, layer, maps)).argmax(1) == 1).float().mean().item()

    g = torch.Generator().manual_seed(0)
    controls = [in_class(torch.randperm(layer.channels, generator=g)[:3].tolist()) for _ in range(5)]
    assert in_class(maps) <= min(controls) and in_class(maps) < sum(controls) / len(controls), (in_class(maps), controls)


# -- the commands -----------------------------------------------------------------------------------

def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sheet_interpolate_arithmetic_filters_featuremaps(run_dir, tmp_path, capsys):
    ckpt, gen = run_dir / "checkpoint.safetensors", run_dir / "dcgan.safetensors"
    code, stdout, err = run_cli(capsys, "sheet", gen, "-n", "10", "--seed", "2")
    assert code == 0, err
    assert (run_dir / "analysis" / "sheet-seed2-0-9.png").is_file()           # named by what it shows

    out = tmp_path / "walk.png"
    code, stdout, err = run_cli(capsys, "interpolate", run_dir, "--path", "0,1,2", "--path", "3,4,5",
                                "--steps", "4", "--out", out)
    assert code == 0, err
    title = 17 + 2 * 2                                                        # one line of title above
    with Image.open(out) as png:                                              # 2 rows of 7 images, upscaled 2x,
        assert png.height == title + 2 * 64 + 3 * 2 and png.width > 7 * 64 + 8 * 2   # after a caption column
    with Image.open(out.with_suffix(".gif")) as gif:
        assert gif.n_frames == 7 + 5                                          # forward, then back without the ends
        width, height = gif.size                                              # the rows side by side, upscaled 2x,
        assert height == title + 64 + 2 * 2 and width >= 2 * 64 + 3 * 2       # under a title saying where it is
    code, _, err = run_cli(capsys, "interpolate", gen, "--path", "0,1", "--path", "2,3,4")
    assert code == 1 and "same number" in err

    code, stdout, err = run_cli(capsys, "arithmetic", gen, "0,1,2 - 3,4 + 5", "--variations", "3",
                                "--out", tmp_path / "arith.png")
    assert code == 0, err
    assert Image.open(tmp_path / "arith.png").height > 4 * 64                 # three terms and the result row

    # each picture says what it shows in its title: drawn above the images, and as the PNG's Title
    for png, words in ((run_dir / "analysis" / "sheet-seed2-0-9.png", ["samples 0..9 of seed 2", "dcgan"]),
                       (tmp_path / "arith.png", ["vector arithmetic 0,1,2 - 3,4 + 5", "seed 0", "3 variations"]),
                       (out, ["walks"])):
        with Image.open(png) as image:
            title = image.text.get("Title", "")
            top = np.asarray(image.convert("RGB"))[:17]
        assert all(w in title for w in words), (png.name, title)
        assert (top != np.array(BACKGROUND)).any(axis=-1).sum() > 50, png.name    # text drawn in the title band

    code, stdout, err = run_cli(capsys, "filters", ckpt, "--out", tmp_path / "filters.png")
    assert code == 0 and "8 of 8 first-layer filters" in stdout, err
    code, stdout, err = run_cli(capsys, "featuremaps", gen, "--index", "3", "--out", tmp_path / "maps.png")
    assert code == 0 and (tmp_path / "maps.png").is_file(), err


def test_sheet_shows_the_samples_of_its_seed(run_dir, tmp_path, capsys):
    """Each cell of a sheet is G's sample for that number of that seed (outside its number's label); another
    seed draws other samples, the same seed the same picture."""
    from ganzoo.checkpoint import load_generator, save_generator

    G, config = load_generator(run_dir / "dcgan.safetensors")
    with torch.no_grad():                           # four steps in, samples are flat grey: make them contrasted
        [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1].weight.mul_(100)
    weights = save_generator(tmp_path / "contrasted.safetensors", G, config)
    nets = load_networks(weights_file(weights, prefer_checkpoint=True))
    sheets = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        code, _, err = run_cli(capsys, "sheet", weights, "-n", "6", "--start", "3", "--seed", seed,
                               "--out", tmp_path / f"{name}.png")
        assert code == 0, err
        sheets[name] = np.asarray(Image.open(tmp_path / f"{name}.png").convert("RGB"))
    assert np.array_equal(sheets["a"], sheets["b"])
    assert not np.array_equal(sheets["a"], sheets["c"])
    cell, pad, per_row = 64, 2, 3                                          # 32x32 shown 2x; ceil(sqrt(6)) a row
    title = 17 + 2 * pad                                                   # one line of title above
    for seed, sheet in ((5, sheets["a"]), (6, sheets["c"])):
        samples = generate(nets.G, latents(nets.config, seed, range(3, 9)))
        for i, sample in enumerate(samples):
            y, x = title + pad + (i // per_row) * (cell + pad), pad + (i % per_row) * (cell + pad)
            shown = sheet[y + cell // 2:y + cell, x:x + cell]                # the lower half: below the label
            expected = np.asarray(to_pil(sample, scale=2))[cell // 2:]
            assert np.array_equal(shown, expected), (seed, i)
            assert shown.std() > 10                                       # a sample, not a blank cell


def test_probe_command_reports_three_feature_sets(run_dir, tmp_path, capsys):
    out = tmp_path / "probe.json"
    code, stdout, err = run_cli(capsys, "probe", run_dir, "--per-class", "10", "--test-size", "200", "--out", out)
    assert code == 0, err
    report = json.loads(out.read_text())
    names = [r["features"] for r in report["results"]]
    assert names == ["trained D", "random D", "raw pixels"]
    assert [r["dim"] for r in report["results"]] == [(8 + 16 + 32) * 16, (8 + 16 + 32) * 16, 32 * 32]
    assert report["test_images"] == 200 and report["classes"] == 4
    assert all(0.5 < r["test_accuracy"] <= 1 for r in report["results"])    # quadrants: chance is 0.25
    assert "trained D" in stdout and "raw pixels" in stdout
    assert "\n\n" not in err and "\n\n" not in stdout, err      # no empty lines where progress bars were


def test_dropout_command_with_a_registered_labeller(run_dir, tmp_path, capsys, monkeypatch):
    nets = load_networks(weights_file(run_dir, prefer_checkpoint=True))
    z = latents(nets.config, 0, range(128))
    threshold = generate(nets.G, z).mean(dim=(1, 2, 3)).median()

    def brighter(images):                        # class 1: brighter than the median sample of the pool
        m = images.mean(dim=(1, 2, 3)) - threshold
        return torch.stack([-m, m], 1)

    with registries().labellers.temporary(Entry("brightness", lambda context: brighter, "brighter than the median",
                                                "tests")):
        code, stdout, err = run_cli(capsys, "dropout", run_dir, "--class", "1", "--labeller", "brightness",
                                    "--top", "3", "--pool", "128", "-n", "8", "--out", tmp_path / "drop.png")
    assert code == 0, err
    maps = [int(m) for m in re.search(r"dropped maps ([\d,]+)", stdout).group(1).split(",")]
    layer = hidden_layers(nets.G, nets.config.z_dim)[-2]
    after = (generate_dropped(nets.G, z, layer, maps).mean(dim=(1, 2, 3)) > threshold).float().mean().item()
    text = " ".join(stdout.split())
    assert f"class 1 in 50.0% of 128 samples; after dropping the maps {after:.1%}" in text   # 64 above the median
    assert "after dropping 3 random maps" in text
    # with, without, and without as many random maps (the control), 8 samples each, under 3 lines of title
    assert Image.open(tmp_path / "drop.png").height == (3 * 17 + 2 * 2) + 3 * 64 + 4 * 2
    code, stdout, err = run_cli(capsys, "dropout", run_dir / "dcgan.safetensors", "--maps", "0,2", "-n", "4",
                                "--out", tmp_path / "drop2.png")
    assert code == 0 and "dropped maps 0,2" in stdout, err
    assert "\n\n" not in err and "\n\n" not in stdout, err


@pytest.mark.parametrize("argv,message", [
    (["filters", "{gen}"], "needs the discriminator"),
    (["probe", "{gen}"], "needs the discriminator"),
    (["arithmetic", "{gen}", "class:3"], "needs the discriminator"),
    (["dropout", "{gen}", "--maps", "0", "--layer", "7"], "hidden layers: 0: net.3"),
    (["dropout", "{gen}", "--maps", "99"], "has maps 0..15"),
    (["dropout", "{gen}", "--maps", "0", "--top", "-1"], "--top must be 0"),
    (["arithmetic", "{run}", "1 +"], "ends with a sign"),
    (["arithmetic", "{run}", "class:2", "--labeller", "mnist-clf"], "Unknown labeller"),
    (["probe", "{run}", "--per-class", "5000"], "lower --per-class"),
    (["interpolate", "{run}", "--path", "1"], "at least two"),
    (["sheet", "{run}", "-n", "0"], "-n must be positive"),
    (["sheet", "{run}/nothing.safetensors"], "No weights file"),
])
def test_analysis_errors_are_one_line(run_dir, capsys, argv, message):
    argv = [a.format(gen=run_dir / "dcgan.safetensors", run=run_dir) for a in argv]
    code, _, err = run_cli(capsys, *argv)
    assert code != 0 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_run_folder_without_checkpoint_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "sheet", tmp_path)
    assert code == 1 and "without checkpoint.safetensors" in err


def test_interpolate_out_without_a_suffix_gets_one(tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    assert main(["run", "dcgan", *POLISH, "--epochs", "1", "--out", str(run)]) == 0
    assert main(["interpolate", str(run), "--rows", "1", "--steps", "3", "--out", str(tmp_path / "walks" / "interp")]) == 0
    assert sorted(p.name for p in (tmp_path / "walks").iterdir()) == ["interp.gif", "interp.png"]
