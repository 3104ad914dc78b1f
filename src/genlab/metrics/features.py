"""A digits classifier genlab trains itself, and the sample metrics built on it.

Image metrics such as FID score samples in the feature space of a pretrained network
(Inception on ImageNet). 8x8 digits need no such network: a small CNN trained on the
digits train split in a few seconds gives features that separate the ten classes, and

* :func:`frechet_distance` -- the Frechet distance between Gaussians fitted to the
  classifier's penultimate features of samples and of reference data (FID's formula);
* :func:`class_accuracy` -- how often the classifier agrees with the label a conditional
  model was asked for.

The classifier is trained deterministically (fixed seed, own generator) and cached as
``digits_classifier_v1.safetensors`` in ``$GENLAB_CACHE`` (default ``~/.cache/genlab``),
written atomically; a missing or corrupt file is retrained.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genlab.errors import DataError, ShapeError
from genlab.metrics.pairwise import as_tensor

#: Bump when the architecture or the training recipe changes: old cache files are ignored.
RECIPE_VERSION = 1
NUM_LEVELS = 17  # digits pixels are integers 0..16
_LOADED: dict[Path, DigitsClassifier] = {}


def cache_dir() -> Path:
    """Folder for genlab's cached files: ``$GENLAB_CACHE``, else ``~/.cache/genlab``."""
    if os.environ.get("GENLAB_CACHE"):
        return Path(os.environ["GENLAB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genlab"


def _as_digits(x: Tensor | np.ndarray, name: str = "samples") -> Tensor:
    """Validate digits in data space and return float32 of shape ``(n, 1, 8, 8)``."""
    x = as_tensor(x, name)
    if x.dim() < 2 or x.shape[0] < 1 or x[0].numel() != 64:
        raise ShapeError(f"Expected {name} of shape (n, 1, 8, 8), but found {tuple(x.shape)}.")
    x = x.detach().reshape(-1, 1, 8, 8).float()  # (n, 1, 8, 8)
    if not torch.isfinite(x).all() or (x < 0).any() or (x > NUM_LEVELS - 1).any():
        raise DataError(f"Expected {name} with values in [0, 16] (digits in data space), but "
                        f"found values in [{x.min().item():g}, {x.max().item():g}].")
    return x


def digits_split(split: str) -> tuple[Tensor, Tensor]:
    """The digits ``split`` as ``(x, y)``: x ``(n, 1, 8, 8)`` floats 0..16, y int64 ``(n,)``."""
    from genlab.data import load_data

    data = load_data("digits", split=split)
    return data.x, data.y


class DigitsClassifier(nn.Module):
    """Small CNN for 8x8 digits; its 64 penultimate features feed :func:`frechet_distance`.

    conv3x3(16) - ReLU - conv3x3(32) - ReLU - maxpool2 - linear(64) - ReLU [features] -
    linear(10). Input: digits in data space, values 0..16, shape ``(n, 1, 8, 8)``.
    """

    feature_dim = 64

    def __init__(self) -> None:
        super().__init__()
        # torch's default layer init draws from the global RNG; fork it so that building
        # (or loading) the classifier leaves the caller's random stream where it was
        with torch.random.fork_rng(devices=[]):
            self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
            self.hidden = nn.Linear(32 * 4 * 4, self.feature_dim)
            self.out = nn.Linear(self.feature_dim, 10)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features, shape ``(n, 64)``, of digits ``x`` of shape ``(n, 1, 8, 8)``."""
        h = x / (NUM_LEVELS - 1) * 2.0 - 1.0  # levels 0..16 -> [-1, 1]
        h = F.relu(self.conv2(F.relu(self.conv1(h))))  # (n, 32, 8, 8)
        h = F.max_pool2d(h, 2).flatten(1)  # (n, 512)
        return F.relu(self.hidden(h))  # (n, 64)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, shape ``(n, 10)``."""
        return self.out(self.features(x))

    @torch.no_grad()
    def predict(self, x: Tensor | np.ndarray) -> Tensor:
        """Predicted class of each digit, int64 of shape ``(n,)``, on the CPU."""
        return self(_as_digits(x).to(self.out.weight.device)).argmax(1).cpu()

    @torch.no_grad()
    def accuracy(self, x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
        """Fraction of digits ``x`` classified as ``y``."""
        y = torch.as_tensor(y).reshape(-1).long().cpu()
        return (self.predict(x) == y).double().mean().item()


def _random_shift(x: Tensor, generator: torch.Generator) -> Tensor:
    """Shift each image by -1, 0 or +1 pixel in each direction (zero fill): augmentation."""
    padded = F.pad(x, (1, 1, 1, 1))  # (n, 1, 10, 10)
    dx, dy = torch.randint(0, 3, (2, x.shape[0]), generator=generator)
    rows = dy[:, None] + torch.arange(8)  # (n, 8)
    cols = dx[:, None] + torch.arange(8)
    n = torch.arange(x.shape[0])[:, None, None]
    return padded[n, 0, rows[:, :, None], cols[:, None, :]][:, None]  # (n, 1, 8, 8)


def train_digits_classifier(*, seed: int = 0, epochs: int = 20, batch_size: int = 128,
                            lr: float = 5e-3) -> DigitsClassifier:
    """Train :class:`DigitsClassifier` on the digits train split (deterministic given seed).

    Adam with a cosine learning-rate decay and +-1 pixel random shifts; all randomness comes
    from one ``torch.Generator`` seeded with ``seed`` (the global RNG is untouched).
    """
    generator = torch.Generator().manual_seed(seed)
    model = DigitsClassifier()
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            nn.init.zeros_(module.bias)
    x, y = digits_split("train")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(x) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(model(_random_shift(x[idx], generator)), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval().requires_grad_(False)


def _save_atomic(model: DigitsClassifier, path: Path, test_accuracy: float) -> None:
    from genlab.train.checkpoint import save_weights

    # readers see the old file or the whole new one, never half
    save_weights(model.state_dict(), path, metadata={
        "recipe_version": str(RECIPE_VERSION), "test_accuracy": f"{test_accuracy:.4f}"})


def _load(path: Path) -> DigitsClassifier | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
        model = DigitsClassifier()
        model.load_state_dict(state, strict=True)
    except (OSError, ValueError, RuntimeError, SafetensorError):
        return None  # missing, truncated, corrupt or from another architecture: retrain
    if not all(torch.isfinite(v).all() for v in state.values()):
        return None
    return model.eval().requires_grad_(False)


def digits_classifier(cache: bool = True) -> DigitsClassifier:
    """The digits classifier, loaded from the cache or trained (a few seconds on CPU).

    Arguments:
        cache: Read and write ``cache_dir() / "digits_classifier_v1.safetensors"`` (and keep
            the model in memory for the session). False trains a fresh model every call.

    Returns:
        A :class:`DigitsClassifier` in eval mode without gradients; >= 95% test accuracy.
    """
    if not cache:
        return train_digits_classifier()
    path = cache_dir() / f"digits_classifier_v{RECIPE_VERSION}.safetensors"
    if path in _LOADED and path.exists():
        return _LOADED[path]
    model = _load(path)
    if model is None:
        model = train_digits_classifier()
        try:
            _save_atomic(model, path, model.accuracy(*digits_split("test")))
        except OSError as error:
            warnings.warn(f"Could not cache the digits classifier at {path}: {error}",
                          stacklevel=2)
    _LOADED[path] = model
    return model


# ---------------------------------------------------------------------------- metrics
def gaussian_frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    r"""Frechet (Wasserstein-2 squared) distance between N(mu1, cov1) and N(mu2, cov2).

    .. math::
        d^2 = |\mu_1 - \mu_2|^2 + \mathrm{tr}\,\Sigma_1 + \mathrm{tr}\,\Sigma_2
              - 2\,\mathrm{tr}\big(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}\big)^{1/2}.

    ``tr((S1 S2)^{1/2})`` is computed as the sum of square roots of the eigenvalues of the
    symmetric PSD matrix ``S1^{1/2} S2 S1^{1/2}`` (same eigenvalues as S1 S2), so no complex
    matrix square root and no imaginary parts arise; eigenvalues at rounding level (including
    small negative ones) are set to 0. Computed in float64.

    References:
        Dowson and Landau, "The Frechet distance between multivariate normal distributions",
        J. Multivariate Analysis 1982; Heusel et al., "GANs Trained by a Two Time-Scale Update
        Rule Converge to a Local Nash Equilibrium" (FID), NeurIPS 2017.
    """
    mu1, mu2, cov1, cov2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, mu2, cov1,
                                                                          cov2))

    def psd_eigh(matrix: Tensor) -> tuple[Tensor, Tensor]:
        # eigenvalues below rounding level (|lambda| < D eps lambda_max) are exact zeros of a
        # rank-deficient covariance; their sqrt would turn 1e-16 noise into 1e-8 errors
        evals, evecs = torch.linalg.eigh(0.5 * (matrix + matrix.T))
        tiny = evals.shape[0] * torch.finfo(evals.dtype).eps * evals.abs().max()
        return torch.where(evals > tiny, evals, torch.zeros_like(evals)), evecs

    evals, evecs = psd_eigh(cov1)
    root1 = evecs @ torch.diag(evals.sqrt()) @ evecs.T  # S1^{1/2}
    trace_sqrt = psd_eigh(root1 @ cov2 @ root1)[0].sqrt().sum()
    value = (mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2.0 * trace_sqrt
    return max(value.item(), 0.0)


@torch.no_grad()
def _feature_stats(x: Tensor, classifier: DigitsClassifier, batch_size: int = 2048
                   ) -> tuple[Tensor, Tensor]:
    x = x.to(classifier.out.weight.device)
    feats = torch.cat([classifier.features(x[i:i + batch_size])
                       for i in range(0, len(x), batch_size)]).double()  # (n, 64)
    return feats.mean(0), torch.cov(feats.T)


def frechet_distance(samples: Tensor | np.ndarray, reference: Tensor | np.ndarray, *,
                     classifier: DigitsClassifier | None = None) -> float:
    """Frechet distance between digits samples and reference digits in classifier features.

    FID's formula (:func:`gaussian_frechet_distance`) on the 64 penultimate features of
    :func:`digits_classifier`. 0 for identical sets, symmetric, grows as the samples move
    away from the reference. It is biased upward for small sets: compare models at equal
    sample sizes, and against the held-out data's own score (e.g. train vs test split).

    Arguments:
        samples: Digits in data space, shape ``(n, 1, 8, 8)``, values 0..16, n >= 2.
        reference: Reference digits, same format (e.g. the test split).
        classifier: A classifier to use instead of the cached one.
    """
    x, r = _as_digits(samples, "samples"), _as_digits(reference, "reference")
    if len(x) < 2 or len(r) < 2:
        raise ShapeError(f"Expected at least 2 samples and 2 reference digits, but found "
                         f"{len(x)} and {len(r)}.")
    if classifier is None:
        classifier = digits_classifier()
    return gaussian_frechet_distance(*_feature_stats(x, classifier),
                                     *_feature_stats(r, classifier))


def class_accuracy(samples: Tensor | np.ndarray, labels: Tensor | np.ndarray | int, *,
                   classifier: DigitsClassifier | None = None) -> float:
    """Fraction of conditional samples the digits classifier assigns to their label.

    Arguments:
        samples: Digits in data space, shape ``(n, 1, 8, 8)``, values 0..16.
        labels: The labels the samples were conditioned on, shape ``(n,)`` or one int.
        classifier: A classifier to use instead of the cached one.

    Returns:
        Accuracy in [0, 1]; the classifier itself scores >= 0.95 on real test digits.
    """
    x = _as_digits(samples)
    y = torch.as_tensor(labels).reshape(-1).long()
    if y.numel() == 1:
        y = y.expand(len(x))
    if y.shape != (len(x),):
        raise ShapeError(f"Expected labels of shape ({len(x)},), but found {tuple(y.shape)}.")
    if classifier is None:
        classifier = digits_classifier()
    return classifier.accuracy(x, y)
