"""Hidden features of any network, and linear models on them (Radford et al. 2015, section 5.1).

A network's hidden features are what its learnable layers read: the input of every Conv/Linear
layer but the first is the previous block's output after its normalisation and activation.
Forward pre-hooks read (or change) those inputs, so nothing here knows an architecture.

Section 5.1 classifies with D's features: every conv layer's output max-pooled to 4x4, flattened
and concatenated, then a regularised L2-SVM (squared hinge, one-vs-rest). Baselines on the same
labels: the same D with fresh random weights, and raw pixels.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from einops import rearrange
from ..terminal import Console, off_terminal
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, track
from torch import nn
from torch.nn import functional as F

from ..data import to_model_range
from ..errors import GanzooError
from ..models import Packed

LEARNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
POOL = 4                                  # the paper's 4x4 grid
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)   # L2 strengths tried on the held-out split


def feature_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The learnable layers whose inputs are hidden features: all but the first, in module order."""
    layers = [(name, m) for name, m in net.named_modules() if isinstance(m, LEARNABLE)]
    if len(layers) < 2:
        raise GanzooError(f"{type(net).__name__} has {len(layers)} learnable layer(s); its hidden features are "
                          f"the inputs of Conv/Linear layers after the first, and it has none.")
    return layers[1:]


@contextlib.contextmanager
def tap(layers: list[nn.Module], fn: Callable[[int, torch.Tensor], torch.Tensor | None]) -> Iterator[None]:
    """Call fn(i, x) on the input x of layers[i] on every forward; a tensor it returns replaces x."""
    def hook_for(i):
        def hook(module, args):
            new = fn(i, args[0])
            return None if new is None else (new, *args[1:])
        return hook

    handles = [layer.register_forward_pre_hook(hook_for(i)) for i, layer in enumerate(layers)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def pool_features(x: torch.Tensor, size: int = POOL) -> torch.Tensor:
    """A feature map [B, C, H, W] max-pooled to [B, C*size*size]; a vector [B, F] stays as it is."""
    if x.ndim == 4:
        return F.adaptive_max_pool2d(x.float(), size).flatten(1)
    return x.float().flatten(1)


@torch.no_grad()
def hidden_features(net: nn.Module, images: torch.Tensor, batch: int = 256, pool: int = POOL,
                    progress: str | None = None) -> tuple[torch.Tensor, list[int]]:
    """Every hidden layer's pooled features for uint8 [N, C, H, W] images: ([N, F] on the CPU, per-layer widths).

    `net` runs in eval mode (BatchNorm's running statistics), so a feature does not depend on its batch.
    """
    if isinstance(net, Packed):           # a PacGAN discriminator: one output per pack of images
        raise GanzooError(f"This discriminator judges packs of {net.pack} images (PacGAN, --pack {net.pack}); its "
                          f"features describe packs, not single images, so they cannot classify one image.")
    layers = [m for _, m in feature_layers(net)]
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    parts, widths = [], None
    captured: list[torch.Tensor | None] = [None] * len(layers)

    def keep(i, x):
        captured[i] = pool_features(x, pool)

    chunks = images.split(batch)
    console = Console(stderr=True)                      # progress goes where ganzoo's progress goes
    iterator = (track(chunks, description=progress, transient=True, console=console, disable=off_terminal(console))
                if progress else chunks)
    try:
        with tap(layers, keep):
            for chunk in iterator:
                net(to_model_range(chunk.to(device)))
                if any(c is None for c in captured):
                    raise GanzooError(f"{type(net).__name__} skipped some of its layers on a forward pass; its "
                                      f"features cannot be read by layer.")
                widths = [c.shape[1] for c in captured]
                parts.append(torch.cat(captured, 1).cpu())
                captured[:] = [None] * len(layers)
    finally:
        net.train(was_training)
    return torch.cat(parts), widths


def pixel_features(images: torch.Tensor) -> torch.Tensor:
    """The raw-pixel baseline: uint8 [N, C, H, W] -> [N, C*H*W] in [-1, 1]."""
    return rearrange(to_model_range(images), "n c h w -> n (c h w)")


# -- linear models --------------------------------------------------------------------------------

@dataclass
class LinearModel:
    """Standardise, then scores = x @ weight + bias: [N, F] -> [N, K]."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.to(self.mean.dtype) - self.mean) / self.std
        return x @ self.weight + self.bias


def standardiser(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std of the training features; a constant feature gets std 1 (it becomes 0)."""
    x = x.double()
    mean, std = x.mean(0), x.std(0, unbiased=False)
    return mean, torch.where(std > 1e-8, std, torch.ones_like(std))


def fit_linear(x: torch.Tensor, targets: torch.Tensor, lam: float, loss: str = "squared_hinge",
               max_iter: int = 100) -> LinearModel:
    """One-vs-rest linear model on standardised features, targets [N, K] in {-1, +1}, L2-regularised.

    squared_hinge (the L2-SVM): mean_n max(0, 1 - y_nk s_nk)^2 + lam |w_k|^2 for each class k, solved
        exactly by finite Newton steps (below);
    logistic: mean_n log(1 + exp(-y_nk s_nk)) + lam |w_k|^2, by full-batch L-BFGS.
    """
    if loss not in ("squared_hinge", "logistic"):
        raise ValueError(f"unknown loss {loss!r}")
    mean, std = standardiser(x)
    xs = (x.double() - mean) / std
    y = targets.double()
    if loss == "logistic":
        w, b = _logistic_lbfgs(xs, y, lam, max_iter)
    else:
        solve = _dual_ridge if len(xs) <= xs.shape[1] else _primal_ridge   # work in the smaller space
        space = solve(xs, lam)
        columns = [_squared_hinge_newton(space, y[:, k], lam, max_iter) for k in range(y.shape[1])]
        w = torch.stack([space.weight(c[0]) for c in columns], 1)
        b = torch.stack([c[1] for c in columns])
    return LinearModel(mean, std, w, b)


def _solve_spd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a^-1 b for a symmetric positive definite a (a Gram matrix plus n lam I) by Cholesky."""
    return torch.cholesky_solve(b[:, None], torch.linalg.cholesky(a))[:, 0]


class _primal_ridge:
    """Parameters are w [d]; lin(w) = X w. For more examples than features."""

    def __init__(self, xs: torch.Tensor, lam: float):
        self.xs, self.lam = xs, lam
        self.size = xs.shape[1]

    def lin(self, w):
        return self.xs @ w

    def weight(self, w):
        return w

    def ridge(self, y, active):
        """argmin_{w,b} (1/n) sum_active (y_i - x_i w - b)^2 + lam |w|^2; centring takes care of b."""
        n, d = self.xs.shape
        xa, ya = self.xs[active], y[active]
        mu, ym = xa.mean(0), ya.mean()
        xc = xa - mu
        w = _solve_spd(xc.T @ xc + n * self.lam * torch.eye(d, dtype=xc.dtype), xc.T @ (ya - ym))
        return w, ym - mu @ w


class _dual_ridge(_primal_ridge):
    """Parameters are c [n] with w = X^T c; lin(c) = K c with the Gram matrix K = X X^T.

    For fewer examples than features (the few-labels regime): every step costs O(n^2), not O(n d).
    """

    def __init__(self, xs: torch.Tensor, lam: float):
        super().__init__(xs, lam)
        self.gram = xs @ xs.T
        self.size = len(xs)

    def lin(self, c):
        return self.gram @ c

    def weight(self, c):
        return self.xs.T @ c

    def ridge(self, y, active):
        # w = Xc^T (Xc Xc^T + n lam I)^-1 (y_A - mean y_A), with Xc = X_A centred; Xc Xc^T from the Gram
        n = len(y)
        g, ya = self.gram[active][:, active], y[active]
        r = g.mean(1)
        beta = _solve_spd(g - r[:, None] - r[None, :] + g.mean() + n * self.lam * torch.eye(len(ya), dtype=g.dtype),
                          ya - ya.mean())
        c = torch.zeros(n, dtype=g.dtype)
        c[active] = beta - beta.mean()       # X_A^T beta - mean(x_A) sum(beta) = X^T c
        return c, ya.mean() - (self.gram[active] @ c).mean()


def _squared_hinge_newton(space, y: torch.Tensor, lam: float, max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The L2-SVM for one class by finite Newton steps (Keerthi & DeCoste 2005; Chapelle 2007).

    On the examples inside the margin the objective is a ridge regression, so each step solves one
    exactly; when the set inside the margin stops changing, that solution is the optimum. A halving
    line search keeps every step downhill. Returns the parameters (in `space`'s terms) and the bias.
    """
    dtype = y.dtype
    theta, b = torch.zeros(space.size, dtype=dtype), torch.zeros((), dtype=dtype)
    u = torch.zeros(len(y), dtype=dtype)                    # u = X w, the scores without the bias

    def objective(theta, u, b):
        # |w|^2 = theta . (X^T X theta) or c . (K c): both are theta . u in their space
        reg = theta @ u if isinstance(space, _dual_ridge) else theta @ theta
        return F.relu(1 - y * (u + b)).square().mean() + lam * reg

    value = objective(theta, u, b)
    for _ in range(max_iter):
        active = y * (u + b) < 1
        if not active.any():                 # every example beyond the margin: only the regulariser pulls
            theta_new, b_new = torch.zeros_like(theta), b
        else:
            theta_new, b_new = space.ridge(y, active)
        u_new = space.lin(theta_new)
        t = 1.0
        while t > 1e-8:
            candidate = objective(theta + t * (theta_new - theta), u + t * (u_new - u), b + t * (b_new - b))
            if candidate <= value:
                break
            t /= 2
        if t <= 1e-8:                        # no downhill step left: converged to rounding
            break
        theta, u, b = theta + t * (theta_new - theta), u + t * (u_new - u), b + t * (b_new - b)
        improvement, value = value - candidate, candidate
        if t == 1.0 and torch.equal(y * (u + b) < 1, active):
            break                            # the active set is stable: the exact optimum
        if improvement <= 1e-15 * max(1.0, float(value)):
            break
    return theta, b


def _logistic_lbfgs(xs: torch.Tensor, y: torch.Tensor, lam: float, max_iter: int):
    w = torch.zeros(xs.shape[1], y.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(y.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-7, tolerance_change=1e-10)

    def objective():
        opt.zero_grad()
        value = F.softplus(-y * (xs @ w + b)).mean(0).sum() + lam * w.square().sum()
        value.backward()
        return value

    with torch.enable_grad():
        opt.step(objective)
    return w.detach(), b.detach()


def one_vs_rest(labels: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Class ids [N] -> targets [N, K] in {-1, +1} for the given classes."""
    return (labels[:, None] == classes[None, :]).double() * 2 - 1


def per_class_subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of `per_class` random examples of every class (sorted by class, then draw order)."""
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().flatten()
        if len(members) < per_class:
            raise GanzooError(f"Class {c} has only {len(members)} labelled examples; lower --per-class "
                              f"(asked for {per_class}).")
        chosen.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.cat(chosen)


@dataclass
class Probe:
    """A linear classifier on some features: the model, its classes, and how its strength was chosen."""

    model: LinearModel
    classes: torch.Tensor
    lam: float
    val_accuracy: float | None
    lambdas: dict[float, float] = field(default_factory=dict)   # lam -> held-out accuracy

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.scores(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.classes[self.scores(x).argmax(1)]

    def accuracy(self, x: torch.Tensor, labels: torch.Tensor, batch: int = 4096) -> float:
        correct = sum((self.predict(part) == lab).sum().item() for part, lab in zip(x.split(batch),
                                                                                     labels.split(batch)))
        return correct / len(labels)


def train_probe(x: torch.Tensor, labels: torch.Tensor, *, lam: float | None = None,
                lambdas: tuple[float, ...] = LAMBDAS, val_fraction: float = 0.2, seed: int = 0,
                loss: str = "squared_hinge", on_fit: Callable[[], None] | None = None) -> Probe:
    """Fit a one-vs-rest linear classifier; without a fixed `lam`, pick it on a held-out split.

    The held-out split takes `val_fraction` of every class; the strength with the best held-out
    accuracy (the stronger one on a tie) is then refitted on all the labelled examples.
    """
    classes = labels.unique()
    if len(classes) < 2:
        raise GanzooError("A classifier needs labelled examples of at least two classes.")
    scores: dict[float, float] = {}
    val_accuracy = None
    if lam is None:
        g = torch.Generator().manual_seed(seed)
        val_mask = torch.zeros(len(labels), dtype=torch.bool)
        for c in classes:
            members = (labels == c).nonzero().flatten()
            n_val = int(round(val_fraction * len(members)))
            if n_val < 1 or n_val >= len(members):
                raise GanzooError(f"Choosing the regularisation needs at least 2 labelled examples of each class "
                                  f"(class {int(c)} has {len(members)}); give more, or fix it with --lambda.")
            val_mask[members[torch.randperm(len(members), generator=g)[:n_val]]] = True
        fit_x, fit_y, val_x, val_y = x[~val_mask], labels[~val_mask], x[val_mask], labels[val_mask]
        for candidate in lambdas:
            model = fit_linear(fit_x, one_vs_rest(fit_y, classes), candidate, loss)
            scores[candidate] = Probe(model, classes, candidate, None).accuracy(val_x, val_y)
            if on_fit:
                on_fit()
        lam = max(scores, key=lambda k: (scores[k], k))      # best held-out accuracy; a tie keeps the stronger
        val_accuracy = scores[lam]
    model = fit_linear(x, one_vs_rest(labels, classes), lam, loss)
    if on_fit:
        on_fit()
    return Probe(model, classes, lam, val_accuracy, scores)


@dataclass
class ProbeResult:
    """One row of the section 5.1 comparison."""

    features: str
    dim: int
    lam: float
    val_accuracy: float | None
    test_accuracy: float


def compare_features(extractors: dict[str, Callable[[torch.Tensor, str], tuple[torch.Tensor, list[int]]]],
                     train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
                     test_labels: torch.Tensor, *, lam: float | None = None, seed: int = 0,
                     per_layer: bool = False, console: Console | None = None) -> list[ProbeResult]:
    """An L2-SVM per feature extractor, all on the same labelled examples, scored on the same test images.

    Each extractor maps (uint8 images, progress text) to (features [N, F], per-layer widths).
    """
    features = {}
    for name, extract in extractors.items():
        train_x, widths = extract(train_images, f"{name}: labelled images")
        test_x, _ = extract(test_images, f"{name}: test images")
        blocks = [(name, slice(0, train_x.shape[1]))]
        if per_layer and len(widths) > 1:
            ends = torch.tensor(widths).cumsum(0).tolist()
            blocks += [(f"{name}, layer {i + 1} only", slice(end - width, end))
                       for i, (width, end) in enumerate(zip(widths, ends))]
        features[name] = (train_x, test_x, blocks)
    fits = sum(len(f[2]) for f in features.values()) * (1 if lam is not None else len(LAMBDAS) + 1)
    results = []
    console = console or Console(stderr=True)
    with Progress(TextColumn("fitting L2-SVMs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=off_terminal(console)) as progress:
        task = progress.add_task("fit", total=fits)
        for train_x, test_x, blocks in features.values():
            for label, cols in blocks:
                probe = train_probe(train_x[:, cols], train_labels, lam=lam, seed=seed,
                                    on_fit=lambda: progress.advance(task))
                results.append(ProbeResult(label, cols.stop - cols.start, probe.lam, probe.val_accuracy,
                                           probe.accuracy(test_x[:, cols], test_labels)))
    return results
