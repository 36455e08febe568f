"""MNIST metrics from ganzoo's own evaluator network (the approach of TF-GAN's MNIST score and Fréchet distance).

- mnist_fd: Fréchet distance between the evaluator's penultimate-layer features of
  the samples and of the real MNIST test set (brought to the samples' resolution the
  way training data is; cached);
- mnist_score: the classifier score, exp E_x KL(p(y|x) || p(y)) (the Inception score's
  analogue; 10 at best: every sample a confident digit, every digit equally often);
- mnist_classes: classes covered out of 10 and KL(class histogram || uniform), which
  a mode-collapsed generator cannot hide;
- mnist_agreement: for a conditional generator, how often the evaluator reads the digit each
  sample was asked to show (its accuracy on the requested classes); on real images, its accuracy
  on their labels. Nothing for samples without classes.

All four share one pass of the evaluator over the samples.
"""

from __future__ import annotations

import math

import torch

from ganzoo.api import (FeatureSpace, Samples, class_histogram_kl, file_sha256, frechet_distance,
                        gaussian_statistics, hookimpl)

from .mnist_evaluator import WEIGHTS, load_evaluator

NAME = "ganzoo MNIST evaluator (ganzoo_plugins/weights/mnist_evaluator.safetensors), 128-d penultimate layer"
RESIZE = "ganzoo.data.prepare_images to 28x28 grey (centre square, antialiased bilinear)"
INPUT_RANGE = "uint8, then x / 127.5 - 1 in [-1, 1]"


def evaluator_for(samples: Samples):
    return load_evaluator(str(WEIGHTS), str(samples.device))


def evaluator_space(samples: Samples) -> FeatureSpace:
    """The evaluator's 128-d features: what mnist_fd, mnist_prdc and mnist_memorisation compare."""
    evaluator = evaluator_for(samples)
    return FeatureSpace(NAME, file_sha256(WEIGHTS), RESIZE, INPUT_RANGE, lambda x: evaluator.score(x)[0],
                        batch_size=1000)


def evaluator_outputs(samples: Samples) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, 128], class probabilities [N, 10]) of the samples, computed once per Samples (the features
    are also the samples' features in `evaluator_space`); the evaluator goes into the running metric's protocol."""
    space = evaluator_space(samples)
    samples.note(**space.protocol())
    features, probs = samples.memo("mnist_evaluator", lambda: evaluator_for(samples).score(samples.images,
                                                                                         console=samples.console))
    samples.memo(f"features:{space.key}", lambda: features)        # one pass of the evaluator serves both
    return features, probs


def evaluator_features(samples: Samples) -> torch.Tensor:
    return evaluator_outputs(samples)[0]


def mnist_fd(samples: Samples) -> dict[str, float]:
    """Fréchet distance on the MNIST evaluator's features, to the MNIST test set at the samples' resolution."""
    features = evaluator_features(samples)
    reference = samples.reference(evaluator_space(samples))
    return {"mnist_fd": frechet_distance(*gaussian_statistics(features), reference.mu, reference.sigma)}


def mnist_score(samples: Samples) -> dict[str, float]:
    """Classifier score exp(E KL(p(y|x) || p(y))) from the MNIST evaluator (the Inception score's analogue)."""
    _, probs = evaluator_outputs(samples)
    marginal = probs.mean(0, keepdim=True)                                  # p(y): [1, 10]
    kl = torch.special.xlogy(probs, probs) - probs * torch.log(marginal.clamp_min(1e-30))
    return {"mnist_score": math.exp(kl.sum(1).mean().item())}


def mnist_classes(samples: Samples) -> dict[str, float]:
    """Digit classes covered out of 10 and KL(class histogram || uniform), by the MNIST evaluator's labels."""
    _, probs = evaluator_outputs(samples)
    covered, kl = class_histogram_kl(probs.argmax(1), 10)
    return {"classes_covered": covered, "class_kl": kl}


def mnist_agreement(samples: Samples) -> dict[str, float]:
    """The share of samples whose digit, as the MNIST evaluator reads it, is the class they were drawn as."""
    if samples.labels is None:
        return {}                                   # an unconditional generator's samples ask for no class
    _, probs = evaluator_outputs(samples)
    return {"class_agreement": (probs.argmax(1).cpu() == samples.labels.cpu()).double().mean().item()}


@hookimpl
def register_feature_spaces(register):
    register("mnist_evaluator", evaluator_space,
             description="the MNIST evaluator's 128-d penultimate features (grey images at 28x28)")


@hookimpl
def register_metrics(register):
    register("mnist_fd", mnist_fd, datasets=("mnist",), better={"mnist_fd": "lower"})
    register("mnist_score", mnist_score, datasets=("mnist",), better={"mnist_score": "higher"})
    register("mnist_classes", mnist_classes, datasets=("mnist",),
             better={"classes_covered": "higher", "class_kl": "lower"})
    register("mnist_agreement", mnist_agreement, datasets=("mnist",), better={"class_agreement": "higher"},
             conditional=True)
