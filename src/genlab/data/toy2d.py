"""2-D toy data sets, generated on the fly from a seed, with the field's standard definitions.

Every set is an i.i.d. sample of a fixed distribution on R^2 (formulas below and in
docs/data.md). Points come with a label ``y``: the mixture component, ring, square, arm or
moon each point was drawn from.

==============  =========================================================================
name            definition (eps ~ N(0, I), u ~ U[0, 1), k uniform over the components)
==============  =========================================================================
moons           scikit-learn make_moons(noise=0.05), standardised with the train split's
                per-axis mean and std (of the default 20,000-point train split for the seed)
circles         r_k (cos t, sin t) + 0.24 eps, r in {3, 1.5}, t ~ U[0, 2 pi)
rings           r_k (cos t, sin t) + 0.08 eps, r in 3 * {1, 0.75, 0.5, 0.25}
8gaussians      (4 (cos, sin)(k pi/4) + 0.5 eps) / 1.414, k = 0..7
25gaussians     (-4 + 2i, -4 + 2j) + 0.05 eps, i, j = 0..4
ring8           2 (cos, sin)(k pi/4) + 0.02 eps, k = 0..7
checkerboard    uniform on the 8 squares [2i, 2i+2) x [2j, 2j+2), i, j in -2..1, i + j even
spirals         s (-t cos t + u1/2, t sin t + u2/2) / 3 + 0.1 eps, t = 3 pi sqrt(u), s = +-1
pinwheel        2 R(a)^T f, f = (1 + 0.3 eps1, 0.1 eps2), a = 2 pi k/5 + 0.25 exp(f1), k = 0..4
==============  =========================================================================

Splits (default 20,000 train / 5,000 val / 5,000 test) are drawn from independent random
streams: numpy ``SeedSequence(seed, spawn_key=(crc32(name), split_index))``. ``n`` changes the
size of the split that is drawn. The global RNG is never used.

Exact log densities and entropies: :func:`log_density`, :func:`entropy`
(see :mod:`genlab.data.toy2d_density`).
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable

import numpy as np
import torch

from genlab.checks import check_choice, check_int, did_you_mean
from genlab.data.dataset import SPLITS, Dataset
from genlab.data.toy2d_density import (
    FFJORD_DIVISOR,
    GAUSSIAN_MIXTURES,
    NOISY_RINGS,
    WITH_DENSITY,
    entropy,
    log_density,
    mixture_spec,
    ring_spec,
)
from genlab.errors import ConfigError, UnknownNameError

__all__ = [
    "DEFAULT_SIZES",
    "TOY_NAMES",
    "check_toy_name",
    "entropy",
    "generate",
    "load",
    "log_density",
    "split_rng",
]

TOY_NAMES = (
    "moons",
    "circles",
    "8gaussians",
    "25gaussians",
    "ring8",
    "checkerboard",
    "spirals",
    "pinwheel",
    "rings",
)
DEFAULT_SIZES = {"train": 20_000, "val": 5_000, "test": 5_000}
_SPLIT_INDEX = {"train": 0, "val": 1, "test": 2}

Generator = Callable[[int, np.random.Generator], "tuple[np.ndarray, np.ndarray]"]


def check_toy_name(name: str) -> None:
    """Raise :class:`UnknownNameError` with close matches unless ``name`` is a toy set."""
    if name not in TOY_NAMES:
        raise UnknownNameError(
            f"Unknown toy data set {name!r}.{did_you_mean(name, TOY_NAMES)} "
            f"Known: {', '.join(TOY_NAMES)}."
        )


def split_rng(name: str, split: str, seed: int) -> np.random.Generator:
    """The independent random stream of one split of one data set.

    ``SeedSequence(seed, spawn_key=(crc32(name), split_index))`` with split_index 0/1/2 for
    train/val/test: distinct spawn keys give statistically independent streams.
    """
    key = (zlib.crc32(name.encode()), _SPLIT_INDEX[split])
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


# --- generators: (n, rng) -> (x (n, 2) float64, y (n,) int64) ------------------------------


def _moons_raw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    # make_moons takes a legacy RandomState; seed it from our stream, never the global one.
    state = np.random.RandomState(int(rng.integers(2**32, dtype=np.uint64)))
    x, y = make_moons(n_samples=n, noise=0.05, random_state=state)
    return x.astype(np.float64), y.astype(np.int64)


def _gaussian_mixture(name: str) -> Generator:
    def draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        centers, std = mixture_spec(name)
        k = rng.integers(len(centers), size=n)
        return centers[k] + std * rng.standard_normal((n, 2)), k.astype(np.int64)

    return draw


def _noisy_rings(name: str) -> Generator:
    def draw(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        radii, std = ring_spec(name)
        k = rng.integers(len(radii), size=n)
        angle = rng.uniform(0.0, 2.0 * math.pi, size=n)
        on_ring = radii[k, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (n, 2)
        return on_ring + std * rng.standard_normal((n, 2)), k.astype(np.int64)

    return draw


def _checkerboard(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # The 8 filled 2x2 squares: lower-left corners 2 (i, j) with i, j in -2..1 and i + j even.
    cells = np.array([(i, j) for i in range(-2, 2) for j in range(-2, 2) if (i + j) % 2 == 0])
    k = rng.integers(len(cells), size=n)
    x = (2.0 * cells[k] + 2.0 * rng.uniform(size=(n, 2))).astype(np.float32)  # (n, 2)
    # A point within float32 rounding of a square's upper edge may round onto the edge, i.e.
    # into an empty square where log p = -inf; step such points back by one float32 ulp.
    outside = np.floor(x / 2.0) != cells[k]
    x[outside] = np.nextafter(x[outside], np.float32(-np.inf))
    return x.astype(np.float64), k.astype(np.int64)


def _spirals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # FFJORD's 2spirals: t = sqrt(u) * 540 degrees; uniform jitter, then the second arm is the
    # point reflection of the first; scaled by 1/3 and blurred with N(0, 0.1^2).
    arm = rng.integers(2, size=n)
    t = np.sqrt(rng.uniform(size=n)) * 3.0 * math.pi
    jitter = 0.5 * rng.uniform(size=(n, 2))
    point = np.stack([-np.cos(t) * t, np.sin(t) * t], axis=1) + jitter  # (n, 2)
    sign = 1.0 - 2.0 * arm[:, None]
    return sign * point / 3.0 + 0.1 * rng.standard_normal((n, 2)), arm.astype(np.int64)


def _pinwheel(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # FFJORD's pinwheel: 5 arms; radial std 0.3 around 1, tangential std 0.1; each point is
    # rotated by its arm's angle plus 0.25 exp(radial coordinate), giving the swirl.
    k = rng.integers(5, size=n)
    f = rng.standard_normal((n, 2)) * np.array([0.3, 0.1]) + np.array([1.0, 0.0])  # (n, 2)
    a = 2.0 * math.pi * k / 5.0 + 0.25 * np.exp(f[:, 0])
    cos, sin = np.cos(a), np.sin(a)
    # Row vector times R(a) = [[cos, -sin], [sin, cos]], as in the reference definition.
    x = np.stack([f[:, 0] * cos + f[:, 1] * sin, -f[:, 0] * sin + f[:, 1] * cos], axis=1)
    return 2.0 * x, k.astype(np.int64)


_GENERATORS: dict[str, Generator] = {
    "moons": _moons_raw,
    "circles": _noisy_rings("circles"),
    "rings": _noisy_rings("rings"),
    "8gaussians": _gaussian_mixture("8gaussians"),
    "25gaussians": _gaussian_mixture("25gaussians"),
    "ring8": _gaussian_mixture("ring8"),
    "checkerboard": _checkerboard,
    "spirals": _spirals,
    "pinwheel": _pinwheel,
}

_NUM_CLASSES = {
    "moons": 2,
    "circles": 2,
    "rings": 4,
    "8gaussians": 8,
    "25gaussians": 25,
    "ring8": 8,
    "checkerboard": 8,
    "spirals": 2,
    "pinwheel": 5,
}

_DEFINITIONS = {
    "moons": "sklearn make_moons(noise=0.05), standardised with the train split's mean/std",
    "circles": "radius 3 or 1.5 (p=1/2), uniform angle, + N(0, 0.24^2 I)",
    "rings": "radius 3*(1, 0.75, 0.5, 0.25) (p=1/4), uniform angle, + N(0, 0.08^2 I)",
    "8gaussians": f"(4 (cos, sin)(k pi/4) + 0.5 eps) / {FFJORD_DIVISOR}, k=0..7",
    "25gaussians": "(-4+2i, -4+2j) + 0.05 eps, i,j=0..4",
    "ring8": "2 (cos, sin)(k pi/4) + 0.02 eps, k=0..7",
    "checkerboard": "uniform on 8 squares [2i,2i+2)x[2j,2j+2), i,j in -2..1, i+j even",
    "spirals": "s(-t cos t + u1/2, t sin t + u2/2)/3 + 0.1 eps, t = 3 pi sqrt(u), s=+-1",
    "pinwheel": "2 R(a)^T (1+0.3 eps1, 0.1 eps2), a = 2 pi k/5 + 0.25 exp(f1), k=0..4",
}


def generate(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` raw points of a toy set (moons not yet standardised).

    Arguments:
        name: A name in :data:`TOY_NAMES`.
        n: Number of points.
        rng: numpy random generator, the only source of randomness.

    Returns:
        ``(x, y)``: float64 array (n, 2) and int64 labels (n,).
    """
    check_toy_name(name)
    return _GENERATORS[name](n, rng)


@functools.lru_cache(maxsize=32)
def _moons_standardization(seed: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-axis mean and std (ddof=0) of the default-size moons train split for ``seed``."""
    raw, _ = _moons_raw(DEFAULT_SIZES["train"], split_rng("moons", "train", seed))
    return tuple(raw.mean(axis=0).tolist()), tuple(raw.std(axis=0).tolist())


def _info(name: str, seed: int) -> dict:
    info: dict = {"seed": seed, "definition": _DEFINITIONS[name]}
    if name in GAUSSIAN_MIXTURES:
        centers, std = mixture_spec(name)
        info.update(centers=centers.tolist(), std=std)
    if name in NOISY_RINGS:
        radii, std = ring_spec(name)
        info.update(radii=radii.tolist(), noise_std=std)
    if name in WITH_DENSITY:
        info["entropy"] = entropy(name)
    return info


def load(name: str, split: str = "train", *, n: int | None = None, seed: int = 0) -> Dataset:
    """One split of a toy data set.

    Arguments:
        name: A name in :data:`TOY_NAMES`.
        split: ``"train"``, ``"val"``, ``"test"``, or ``"all"`` (the three default-size splits
            concatenated in that order).
        n: Number of points to draw for train/val/test (default 20,000 / 5,000 / 5,000).
            Not accepted with ``"all"`` here; :func:`genlab.data.load_data` subsamples it.
        seed: Seed of the data set; each split draws from its own stream (:func:`split_rng`).

    Returns:
        A continuous :class:`Dataset` with x (n, 2), labels y (n,) and ``info`` holding the
        seed, the definition, and where defined "centers"/"std" (Gaussian mixtures),
        "radii"/"noise_std" (rings), "entropy" (nats), "standardize" (moons: mean/std).

    Raises:
        UnknownNameError: unknown name. ConfigError: bad split or size.
    """
    check_toy_name(name)
    if split == "all":
        if n is not None:
            raise ConfigError("Expected n=None with split='all' in toy2d.load, but found n.")
        parts = [load(name, s, seed=seed) for s in ("train", "val", "test")]
        return Dataset(
            x=torch.cat([p.x for p in parts]),
            y=torch.cat([p.y for p in parts if p.y is not None]),
            num_classes=parts[0].num_classes,
            name=name,
            split="all",
            info=parts[0].info,
        )
    check_choice("split", split, SPLITS)
    size = check_int("n", DEFAULT_SIZES[split] if n is None else n)
    x, y = generate(name, size, split_rng(name, split, seed))
    info = _info(name, seed)
    if name == "moons":
        mean, std = _moons_standardization(seed)
        x = (x - np.array(mean)) / np.array(std)
        info["standardize"] = {"mean": list(mean), "std": list(std)}
    return Dataset(
        x=torch.from_numpy(x).float(),
        y=torch.from_numpy(y),
        num_classes=_NUM_CLASSES[name],
        name=name,
        split=split,
        info=info,
    )
