"""Tests of genlab.data: toy sets, exact densities, digits split, file loaders, errors.

Statistical tolerances are derived in comments. Checks use a 5-standard-error band: a normal
deviate exceeds it with probability 5.7e-7, so even the ~150 moment checks below have a
false-alarm rate under 1e-4 (and the seeds are fixed, so the outcome is deterministic).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.data import Dataset, available_datasets, load_data, toy2d
from genlab.data.toy2d_density import GAUSSIAN_MIXTURES, WITH_DENSITY, mixture_spec, ring_spec
from genlab.errors import (
    ConfigError,
    DataError,
    IntractableLikelihood,
    ShapeError,
    UnknownNameError,
)

SPLITS = ("train", "val", "test", "all")
Z = 5.0  # width of the acceptance band in standard errors (see module docstring)


@pytest.mark.parametrize("name", toy2d.TOY_NAMES)
def test_toy_splits_shapes_sizes_and_independence(name):
    splits = {s: load_data(name, s) for s in ("train", "val", "test")}
    for split, size in {"train": 20_000, "val": 5_000, "test": 5_000}.items():
        data = splits[split]
        assert isinstance(data, Dataset)
        assert data.x.shape == (size, 2) and data.x.dtype == torch.float32
        assert data.y.shape == (size,) and data.y.dtype == torch.int64
        assert data.kind == "continuous" and data.num_levels is None
        assert data.split == split and data.event_shape == (2,)
        assert 0 <= int(data.y.min()) and int(data.y.max()) < data.num_classes
    # Disjoint: no point appears in two splits (continuous draws collide only if the streams do).
    rows = np.concatenate([splits[s].x.numpy() for s in ("train", "val", "test")])
    assert len(np.unique(rows, axis=0)) == len(rows)
    # Independent streams: val is not a re-draw of train's first points.
    assert not torch.equal(splits["val"].x, splits["train"].x[:5_000])


@pytest.mark.parametrize("name", ["moons", "8gaussians", "pinwheel"])
def test_toy_determinism_per_seed_and_size(name):
    a, b = load_data(name, seed=3, n=500), load_data(name, seed=3, n=500)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, load_data(name, seed=4, n=500).x)
    assert load_data(name, "test", n=123).x.shape == (123, 2)
    both = load_data(name, "all", n=700, seed=3)
    assert len(both) == 700 and torch.equal(both.x, load_data(name, "all", n=700, seed=3).x)
    assert len(load_data(name, "all")) == 30_000


def test_moons_standardized_with_train_statistics():
    train, test = load_data("moons"), load_data("moons", "test")
    # Train: exactly mean 0 and std 1 (ddof=0) up to float32 rounding (~1e-7 per value).
    assert train.x.double().mean(0).abs().max() < 1e-5
    assert (train.x.double().std(0, unbiased=False) - 1).abs().max() < 1e-5
    stats = train.info["standardize"]
    assert test.info["standardize"] == stats
    # The test split is the raw test draw mapped with the TRAIN mean/std (not its own).
    raw, _ = toy2d.generate("moons", 5_000, toy2d.split_rng("moons", "test", 0))
    expected = (raw - np.array(stats["mean"])) / np.array(stats["std"])
    np.testing.assert_allclose(test.x.numpy(), expected, atol=1e-5)
    raw_train, _ = toy2d.generate("moons", 20_000, toy2d.split_rng("moons", "train", 0))
    np.testing.assert_allclose(stats["mean"], raw_train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], raw_train.std(0), rtol=1e-12)
    # Its own mean is not forced to 0: |mean| ~ 1/sqrt(5000) = 0.014, and exactly 0 is
    # what a per-split standardisation would give.
    assert test.x.double().mean(0).abs().max() > 1e-4
    with pytest.raises(IntractableLikelihood, match="closed-form"):
        toy2d.log_density("moons", test.x)


@pytest.mark.parametrize("name", GAUSSIAN_MIXTURES)
def test_mixture_moments_per_mode(name):
    data = load_data(name, n=40_000, seed=1)
    centers, std = mixture_spec(name)
    assert data.info["centers"] == centers.tolist() and data.info["std"] == std
    k = len(centers)
    x = data.x.double().numpy()
    y = data.y.numpy()
    for j in range(k):
        pts = x[y == j]
        m = len(pts)
        # Counts ~ Binomial(n, 1/K): sd = sqrt(n (1/K)(1 - 1/K)).
        assert abs(m - len(x) / k) < Z * math.sqrt(len(x) * (1 / k) * (1 - 1 / k))
        # Mean of m draws of N(c, s^2): standard error s / sqrt(m) per coordinate.
        assert np.abs(pts.mean(0) - centers[j]).max() < Z * std / math.sqrt(m)
        # Variance estimate: se = s^2 sqrt(2 / (m - 1)); off-diagonal covariance: s^2 / sqrt(m).
        cov = np.cov(pts.T)
        assert np.abs(np.diag(cov) - std**2).max() < Z * std**2 * math.sqrt(2 / (m - 1))
        assert abs(cov[0, 1]) < Z * std**2 / math.sqrt(m)
    if name != "8gaussians":  # modes >= 38 std apart: the label is always the nearest centre
        nearest = ((x[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
        assert (nearest == y).all()


def test_eight_gaussians_matches_ffjord_scaling():
    centers, std = mixture_spec("8gaussians")
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 4 / 1.414)
    assert std == pytest.approx(0.5 / 1.414)
    np.testing.assert_allclose(mixture_spec("25gaussians")[0][[0, 24]], [[-4, -4], [4, 4]])
    np.testing.assert_allclose(np.linalg.norm(mixture_spec("ring8")[0], axis=1), 2.0)


def _grid(name):
    """A grid (spacing h, half-width L) for quadrature of log_density(name)."""
    if name == "checkerboard":
        # Midpoints of 0.05-cells: 0.05 divides the 2x2 squares, so each cell is wholly in or
        # out of the support and the midpoint sum is exact.
        h = 0.05
        axis = np.arange(-4.5 + h / 2, 4.5, h)
        return axis, h
    if name in GAUSSIAN_MIXTURES:
        centers, std = mixture_spec(name)
        reach = np.abs(centers).max() + 10 * std
    else:
        radii, std = ring_spec(name)
        reach = radii.max() + 10 * std
    # Trapezoid sum of a smooth density with spacing h: the error is the density's Fourier
    # transform at the aliased frequencies 2 pi m / h, bounded by 4 exp(-2 pi^2 s^2 / h^2) for
    # Gaussian blur s (|J0| <= 1 for rings); h = s/2 gives ~1e-34. Mass beyond 10 s of the
    # outermost mode is < 1e-22. So the grid sum equals 1 up to float64 round-off (~1e-12).
    h = std / 2
    axis = np.arange(-reach, reach + h / 2, h)
    return axis, h


@pytest.mark.parametrize("name", WITH_DENSITY)
def test_log_density_integrates_to_one(name):
    axis, h = _grid(name)
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    points = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1))  # (m*m, 2) float64
    total = torch.exp(toy2d.log_density(name, points)).sum().item() * h * h
    assert total == pytest.approx(1.0, abs=1e-9)


def _bin_probabilities(name, edges, sub=8):
    """Probability of each square bin by a sub x sub midpoint rule inside the bin."""
    b = edges[1] - edges[0]
    offsets = (np.arange(sub) + 0.5) * b / sub
    pts = (edges[:-1, None] + offsets[None]).ravel()  # midpoints of sub-cells, bin-major
    gx, gy = np.meshgrid(pts, pts, indexing="ij")
    dens = torch.exp(
        toy2d.log_density(name, torch.from_numpy(np.stack([gx, gy], -1).reshape(-1, 2)))
    )
    nb = len(edges) - 1
    dens = dens.numpy().reshape(nb, sub, nb, sub)
    return dens.sum(axis=(1, 3)) * (b / sub) ** 2  # (nb, nb)


def _chi_square(name, x, edges):
    """Pearson X^2 of binned samples against the exact bin probabilities, and its dof.

    Bins expecting fewer than 5 points are pooled with the mass outside the grid into one
    bin, so the chi-square approximation holds. Midpoint-rule error in the expectations is a
    relative ~d^2/(24 s^2) <= 0.4% (sub-cell d <= s/3), far below the counting noise
    1/sqrt(E) of any bin (E <= ~2000), so it adds nothing measurable to X^2.
    """
    n = len(x)
    probs = _bin_probabilities(name, edges).ravel()
    counts = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])[0].ravel()
    keep = probs * n >= 5
    expected, observed = probs[keep] * n, counts[keep]
    rest_expected, rest_observed = n - expected.sum(), n - observed.sum()
    if rest_expected >= 1:
        expected, observed = np.append(expected, rest_expected), np.append(observed, rest_observed)
    else:  # (checkerboard: all mass inside the kept bins) Poisson(<1) exceeds 9 w.p. < 1e-7
        assert rest_observed < 10
    stat = ((observed - expected) ** 2 / expected).sum()
    return stat, len(expected) - 1


# (name, bin width): widths <= 3 blur stds so the histogram resolves the modes.
HISTOGRAM_CASES = [("8gaussians", 0.25), ("circles", 0.25), ("rings", 0.2), ("checkerboard", 0.5)]


@pytest.mark.parametrize("name, width", HISTOGRAM_CASES)
def test_log_density_matches_sample_histogram(name, width):
    x = load_data(name, "test", n=20_000, seed=2).x.double().numpy()
    edges = np.arange(-4.5, 4.5 + width / 2, width)
    stat, dof = _chi_square(name, x, edges)
    # X^2 ~ chi2(dof): mean dof, sd sqrt(2 dof); accept within Z sd (dof is in the hundreds,
    # where the normal approximation of the chi-square tail is close).
    assert stat < dof + Z * math.sqrt(2 * dof), (stat, dof)


def test_histogram_check_detects_a_wrong_density():
    # Control: samples 5% too spread must fail the same check, so it is not vacuous.
    x = 1.05 * load_data("8gaussians", "test", n=20_000, seed=2).x.double().numpy()
    edges = np.arange(-4.5, 4.625, 0.25)
    stat, dof = _chi_square("8gaussians", x, edges)
    assert stat > dof + Z * math.sqrt(2 * dof)


@pytest.mark.parametrize("name", WITH_DENSITY)
def test_entropy_matches_monte_carlo(name):
    lp = toy2d.log_density(name, load_data(name, "test", n=20_000, seed=5).x.double())
    assert torch.isfinite(lp).all()
    # -mean log p estimates H with standard error sd(log p) / sqrt(n).
    se = lp.std().item() / math.sqrt(len(lp))
    assert abs(-lp.mean().item() - toy2d.entropy(name)) < Z * se + 1e-12
    assert load_data(name, n=10).info["entropy"] == toy2d.entropy(name)


def test_entropy_closed_forms():
    assert toy2d.entropy("checkerboard") == math.log(32)
    for name in ("25gaussians", "ring8"):
        # Modes >= 38 std apart: overlap terms are ~exp(-180), so H = log K + log(2 pi e s^2).
        centers, std = mixture_spec(name)
        exact = math.log(len(centers)) + math.log(2 * math.pi * math.e * std**2)
        assert toy2d.entropy(name) == pytest.approx(exact, abs=1e-9)
    # 8gaussians overlaps: between one Gaussian's entropy and that plus log 8.
    h_gauss = math.log(2 * math.pi * math.e * mixture_spec("8gaussians")[1] ** 2)
    assert h_gauss < toy2d.entropy("8gaussians") < h_gauss + math.log(8)


def test_checkerboard_support():
    inside = torch.tensor([[0.5, 0.5], [-3.5, -3.5], [2.5, 2.5], [-1.0, 2.5]])
    outside = torch.tensor([[2.5, 0.5], [4.0, 0.5], [0.5, -4.5], [-0.5, 0.5]])
    assert torch.allclose(toy2d.log_density("checkerboard", inside), torch.tensor(-math.log(32)))
    assert torch.isneginf(toy2d.log_density("checkerboard", outside)).all()


def test_log_density_errors():
    for name in ("moons", "spirals", "pinwheel"):
        with pytest.raises(IntractableLikelihood):
            toy2d.log_density(name, torch.zeros(3, 2))
        with pytest.raises(IntractableLikelihood):
            toy2d.entropy(name)
    with pytest.raises(UnknownNameError, match="'ring8'"):
        toy2d.log_density("ring9", torch.zeros(3, 2))
    with pytest.raises(ShapeError, match=r"\(n, 2\)"):
        toy2d.log_density("ring8", torch.zeros(3, 3))
    x64 = torch.zeros(2, 2, dtype=torch.float64)
    assert toy2d.log_density("rings", x64).dtype == torch.float64


def test_digits_split_is_exactly_as_specified():
    from sklearn.datasets import load_digits

    ref = load_digits()
    images, labels = ref.images, ref.target
    expected = {"train": slice(0, 1350), "val": slice(1350, 1500), "test": slice(1500, 1797)}
    for split, rows in expected.items():
        data = load_data("digits", split)
        assert data.x.shape == (rows.stop - rows.start, 1, 8, 8)
        assert data.kind == "discrete" and data.num_levels == 17 and data.num_classes == 10
        np.testing.assert_array_equal(data.x[:, 0].numpy(), images[rows])
        np.testing.assert_array_equal(data.y.numpy(), labels[rows])
    everything = load_data("digits", "all")
    assert len(everything) == 1797 and everything.x.max() == 16 and everything.x.min() == 0
    assert everything.model_kwargs() == {"event_shape": (1, 8, 8), "num_levels": 17}


def test_digits_subset_with_n():
    part = load_data("digits", n=100, seed=7)
    assert len(part) == 100 and torch.equal(part.x, load_data("digits", n=100, seed=7).x)
    train = load_data("digits").x.reshape(1350, -1)
    match = (part.x.reshape(100, 1, -1) == train[None]).all(-1).any(1)
    assert match.all()  # every subset image comes from the train split
    with pytest.raises(ConfigError, match="n <= 297"):
        load_data("digits", "test", n=298)


def test_npy_round_trip_and_splits(tmp_path):
    arr = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", arr)
    train, val, test, everything = (load_data(tmp_path / "x.npy", s) for s in SPLITS)
    assert (len(train), len(val), len(test)) == (40, 5, 5)
    assert everything.kind == "continuous" and torch.equal(everything.x, torch.from_numpy(arr))
    union = torch.cat([train.x, val.x, test.x]).numpy()
    np.testing.assert_array_equal(np.unique(union, axis=0), np.unique(arr, axis=0))
    assert torch.equal(train.x, load_data(str(tmp_path / "x.npy")).x)  # deterministic
    assert not torch.equal(train.x, load_data(tmp_path / "x.npy", seed=1).x)
    np.save(tmp_path / "v.npy", arr[:, 0])
    assert load_data(tmp_path / "v.npy", "all").x.shape == (50, 1)


def test_npy_integers_are_discrete(tmp_path):
    arr = np.random.default_rng(0).integers(0, 7, size=(30, 1, 2, 2))
    arr[0, 0, 0, 0] = 6
    np.save(tmp_path / "d.npy", arr)
    data = load_data(tmp_path / "d.npy", "all")
    assert data.kind == "discrete" and data.num_levels == 7 and data.event_shape == (1, 2, 2)
    np.testing.assert_array_equal(data.x.numpy(), arr)
    assert load_data(tmp_path / "d.npy", "all", num_levels=10).num_levels == 10
    with pytest.raises(DataError, match="num_levels=5"):
        load_data(tmp_path / "d.npy", num_levels=5)


def test_csv_header_labels_and_categories(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1.5,2,3\n-1,0.25,0\n\n2,2,1\n")
    data = load_data(path, "all", label_column="label")
    np.testing.assert_array_equal(data.x.numpy(), [[1.5, 2], [-1, 0.25], [2, 2]])
    assert data.y.tolist() == [3, 0, 1] and data.num_classes == 4
    assert data.info["columns"] == ["a", "b"]
    path.write_text("1,2,cat\n3,4,dog\n5,6,cat\n")
    data = load_data(path, "all", label_column=-1)
    assert data.y.tolist() == [0, 1, 0] and data.info["classes"] == ["cat", "dog"]
    path.write_text("1,2\n3,4\n")
    assert load_data(path, "all").y is None and load_data(path, "all").x.shape == (2, 2)


def _write_png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_png_folder_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(4, 6, 5), dtype=np.uint8)
    for i, img in enumerate(gray):
        _write_png(tmp_path / "g" / f"{i}.png", img)
    data = load_data(tmp_path / "g", "all")
    assert data.num_levels == 256 and data.kind == "discrete" and data.y is None
    np.testing.assert_array_equal(data.x.numpy(), gray[:, None])  # (n, 1, h, w)
    rgb = rng.integers(0, 256, size=(3, 4, 4, 3), dtype=np.uint8)
    for i, img in enumerate(rgb):
        _write_png(tmp_path / "c" / ("cat" if i < 2 else "dog") / f"{i}.png", img)
    data = load_data(tmp_path / "c", "all")
    np.testing.assert_array_equal(data.x.numpy(), rgb.transpose(0, 3, 1, 2))
    assert data.y.tolist() == [0, 0, 1] and data.info["classes"] == ["cat", "dog"]
    _write_png(tmp_path / "m" / "a.png", gray[0])
    _write_png(tmp_path / "m" / "b.png", rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    mixed = load_data(tmp_path / "m", "all")
    assert mixed.event_shape == (3, 6, 5)
    np.testing.assert_array_equal(mixed.x[0].numpy(), np.repeat(gray[0][None], 3, 0))


# file name -> (bytes or text written, or None when created by hand below; message fragment)
BAD_FILES = {
    "corrupt.npy": (b"not an array", "Cannot read"),
    "x.txt": ("1,2\n", "Expected a .npy or .csv"),
    "missing.npy": (None, "no "),
    "ragged.csv": ("1,2\n3\n", "line 2"),
    "word.csv": ("1,2\n3,x\n", "'x'"),
    "nan.csv": ("1,2\nnan,4\n", "NaN"),
    "few.csv": ("1\n2\n3\n", "non-empty 'val'"),
    "nan.npy": (None, "NaN"),
    "obj.npy": (None, "allow_pickle"),
    "sizes": (None, "one size"),
    "empty": (None, "found none"),
    "broken": (None, "Cannot read image"),
}


def test_bad_files_raise_one_line_data_errors(tmp_path):
    for name, (content, _) in BAD_FILES.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        elif content is not None:
            (tmp_path / name).write_text(content)
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _write_png(tmp_path / "sizes" / "a.png", np.zeros((4, 4), np.uint8))
    _write_png(tmp_path / "sizes" / "b.png", np.zeros((5, 4), np.uint8))
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"junk")
    for name, (_, fragment) in BAD_FILES.items():
        split = "val" if name == "few.csv" else "train"
        with pytest.raises(DataError, match=fragment) as info:
            load_data(tmp_path / name, split)
        assert "\n" not in str(info.value), name


def test_bad_arguments_raise_typed_errors(tmp_path):
    assert available_datasets() == [*toy2d.TOY_NAMES, "digits"]
    with pytest.raises(UnknownNameError, match="Did you mean 'moons'"):
        load_data("moon")
    for split in ("training", "", None):
        for name in ("moons", "digits"):
            with pytest.raises(ConfigError):
                load_data(name, split)
    for n in (-1, 0, 2.5, True):
        with pytest.raises(ConfigError, match="n to be"):
            load_data("moons", n=n)
    with pytest.raises(ConfigError, match=r"^Expected seed to be an int >= 0, but found -1\.$"):
        load_data("moons", seed=-1)
    assert len(load_data("digits", n=np.int64(10), seed=np.int64(1))) == 10  # NumPy ints
    with pytest.raises(ConfigError, match="files"):
        load_data("moons", label_column=0)
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="label_column"):
        load_data(path, "all", label_column="c")
    with pytest.raises(ConfigError, match="label_column"):
        load_data(path, "all", label_column=2)
    with pytest.raises(ConfigError, match="num_levels"):
        load_data(path, "all", num_levels=1)
