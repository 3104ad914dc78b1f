"""Linear probing: how much a model's frozen features help a classifier that sees few labels.

Unlabelled data are cheap and labels are not. A generative model trained on unlabelled images
may have learned features (``model.encode(x)``) in which the classes are easier to separate
than in pixel space. The probe measures that: freeze the features, give a linear classifier
(standardised features, scikit-learn ``LogisticRegression``) ``k`` labelled examples per class,
and score it on the test split. Each ``k`` is drawn ``draws`` times; the table reports the mean
and the standard deviation of the test accuracy over the draws.

Two references get exactly the same labelled subsets (a paired comparison):

* ``pixels``: the raw data, flattened;
* ``pca16``: the first 16 principal components of the unlabelled training split.

Everything unsupervised (the PCA basis, the feature standardisation) is fitted on the whole
training split, labels unseen, the way the generative model itself was; only the classifier
sees the ``k`` labels per class. With every label (``"all"``) the subset is the whole split,
the same for every draw, so it is fitted once (spread 0).

Example:
    >>> import torch
    >>> from genlab.data import Dataset
    >>> x = torch.randn(200, 2); y = (x[:, 0] > 0).long()
    >>> data = Dataset(x=x, y=y, num_classes=2)
    >>> result = probe(None, data, data, labels=[5], draws=3)
    >>> 0.5 < result.scores["pixels"]["5"].mean <= 1.0
    True
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from genlab.base import GenerativeModel
from genlab.data import Dataset
from genlab.errors import ConfigError, DataError

#: Label counts per class of ``genlab probe`` and ``bench/bench_probe.py``; None: every label.
DEFAULT_LABELS: tuple[int | None, ...] = (1, 10, 100, None)
#: Principal components of the PCA reference.
PCA_COMPONENTS = 16
#: Iterations of the solver: enough for lbfgs to converge on standardised features.
MAX_ITER = 2000


@dataclass(frozen=True)
class Score:
    """Test accuracy of one representation at one label budget, over the draws."""

    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        """Standard deviation over the draws (ddof=0; 0 for a single fit)."""
        return float(np.std(self.accuracies))


@dataclass
class ProbeResult:
    """Accuracies of every representation at every label budget.

    Attributes:
        labels: The label budgets, as text: ``"1"``, ``"10"``, ``"all"`` (per class).
        draws: Random labelled subsets per budget (``"all"`` is fitted once).
        seed: Seed of the subsets.
        feature_sizes: Representation name -> number of features k.
        scores: Representation name -> budget text -> :class:`Score`.
    """

    labels: list[str]
    draws: int
    seed: int
    feature_sizes: dict[str, int] = field(default_factory=dict)
    scores: dict[str, dict[str, Score]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary: mean, std and every draw's accuracy."""
        return {
            "labels_per_class": self.labels,
            "draws": self.draws,
            "seed": self.seed,
            "feature_sizes": dict(self.feature_sizes),
            "scores": {
                name: {k: {"mean": s.mean, "std": s.std, "accuracies": list(s.accuracies)}
                       for k, s in by_label.items()}
                for name, by_label in self.scores.items()
            },
        }

    def markdown(self) -> str:
        """A table: one row per representation, one column per label budget (mean ± std)."""
        head = "| features | k | " + " | ".join(f"{b} / class" for b in self.labels) + " |"
        lines = [head, "|---|---:|" + "---:|" * len(self.labels)]
        for name, by_label in self.scores.items():
            cells = [f"{s.mean:.3f} ± {s.std:.3f}" if len(s.accuracies) > 1 else f"{s.mean:.3f}"
                     for s in (by_label[b] for b in self.labels)]
            lines.append(f"| {name} | {self.feature_sizes[name]} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def parse_labels(text: str) -> list[int | None]:
    """``"1,10,100,all"`` -> ``[1, 10, 100, None]`` (labels per class; None: all).

    Raises:
        ConfigError: an entry is neither a positive integer nor ``all``.
    """
    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            out.append(None)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise ConfigError(
                f"Expected labels per class as positive integers or 'all', e.g. 1,10,100,all, "
                f"but found {part!r}."
            )
    return out


def stratified_subset(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of exactly ``k`` examples of every class present in ``y``, drawn without
    replacement, sorted.

    Raises:
        DataError: a class has fewer than ``k`` examples.
    """
    picks = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if len(members) < k:
            raise DataError(
                f"Expected at least {k} labelled examples of class {int(c)}, but found "
                f"{len(members)}."
            )
        picks.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(picks))


def model_features(model: GenerativeModel, x: torch.Tensor, *, batch: int = 256,
                   **options: Any) -> np.ndarray:
    """``model.encode`` of ``x`` in batches, as float64 ``(n, k)``.

    Raises:
        NoRepresentation: the model has no encoder.
        ConfigError: the model is conditional (its features would see the label).
    """
    _check_unconditional(model)
    parts = [model.encode(x[i : i + batch].to(model.device), **options).double().cpu()
             for i in range(0, len(x), batch)]
    return torch.cat(parts).numpy()


def _check_unconditional(model: GenerativeModel) -> None:
    """A conditional model's features see what it is conditioned on (the label, or a prompt
    or sketch made from the image), so a probe of them would not measure what it learned."""
    if model.y_is_conditions:
        raise ConfigError(f"Expected an unconditional model to probe (a conditional one's "
                          f"features see its conditions), but found conditions "
                          f"{model.conditions}.")
    if model.conditional:
        raise ConfigError("Expected an unconditional model to probe (a conditional one's "
                          f"features see the label), but found one conditioned on "
                          f"{model.num_classes} classes.")


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale both by the training split's feature means and standard deviations; constant
    features (blank border pixels) are left at 0."""
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def _accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
              y_test: np.ndarray) -> float:
    clf = LogisticRegression(max_iter=MAX_ITER)
    clf.fit(f_train, y_train)
    return float((clf.predict(f_test) == y_test).mean())


def probe(
    model: GenerativeModel | None,
    train: Dataset,
    test: Dataset,
    *,
    labels: Sequence[int | None] = DEFAULT_LABELS,
    draws: int = 10,
    seed: int = 0,
    baselines: bool = True,
    name: str | None = None,
    **options: Any,
) -> ProbeResult:
    """Linear-probe test accuracy of ``model``'s frozen features, beside pixels and PCA-16.

    Arguments:
        model: A model with an encoder, or None for the references alone.
        train: Labelled training split ``(n, *event_shape)``: every image feeds the
            unsupervised steps, ``k`` per class of its labels feed the classifier.
        test: Labelled test split.
        labels: Labels per class of each budget; None means every label.
        draws: Random labelled subsets per budget (>= 1).
        seed: Seed of the subsets; budget ``k``'s draw ``d`` uses ``(seed, k, d)``, so every
            representation sees the same subsets.
        baselines: Also score raw pixels and PCA-16.
        name: Row name of the model (default: its registry name).
        **options: The model's encoding options (:meth:`GenerativeModel.encode_options`).

    Returns:
        A :class:`ProbeResult`.

    Raises:
        DataError: a split has no labels, or a class has fewer than ``k`` examples.
        ConfigError: ``draws`` < 1, no budget, or a conditional model.
        NoRepresentation: ``model`` has no encoder.
    """
    if model is not None:
        _check_unconditional(model)
    if train.y is None or test.y is None:
        raise DataError("Expected labelled train and test splits to probe, but found no labels.")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ConfigError(f"Expected draws to be an int >= 1, but found {draws!r}.")
    if not labels:
        raise ConfigError("Expected at least one label budget, but found none.")
    y_train, y_test = train.y.numpy(), test.y.numpy()
    reps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if model is not None:
        row = name or model.name or type(model).__name__
        reps[row] = (model_features(model, train.x, **options),
                     model_features(model, test.x, **options))
    if baselines:
        pixels = (train.x.reshape(len(train), -1).double().numpy(),
                  test.x.reshape(len(test), -1).double().numpy())
        reps["pixels"] = pixels
        pca = PCA(n_components=min(PCA_COMPONENTS, *pixels[0].shape), random_state=0)
        reps[f"pca{PCA_COMPONENTS}"] = (pca.fit_transform(pixels[0]), pca.transform(pixels[1]))

    texts = ["all" if k is None else str(k) for k in labels]
    result = ProbeResult(labels=texts, draws=draws, seed=seed)
    subsets = {
        text: [np.arange(len(y_train))] if k is None else [
            stratified_subset(y_train, k, np.random.default_rng([seed, k, d]))
            for d in range(draws)
        ]
        for k, text in zip(labels, texts, strict=True)
    }
    for row, (f_train, f_test) in reps.items():
        if not (np.isfinite(f_train).all() and np.isfinite(f_test).all()):
            raise DataError(f"Expected finite {row} features, but found NaN or Inf.")
        f_train, f_test = _standardise(f_train, f_test)
        result.feature_sizes[row] = f_train.shape[1]
        result.scores[row] = {
            text: Score(tuple(_accuracy(f_train[idx], y_train[idx], f_test, y_test)
                              for idx in subsets[text]))
            for text in texts
        }
    return result


def plot_probe(result: ProbeResult, out: Any, *, train_size: int | None = None,
               num_classes: int | None = None) -> Any:
    """Test accuracy against labels per class (log scale), one line per representation with
    its spread over the draws as error bars. ``"all"`` sits at ``train_size / num_classes``.

    Returns:
        The PNG path written.
    """
    from genlab.viz.core import new_figure, save_figure

    numeric = [int(t) for t in result.labels if t != "all"]
    all_at = (train_size / num_classes if train_size and num_classes
              else 10 * max(numeric, default=1))
    xs = [all_at if t == "all" else int(t) for t in result.labels]
    fig = new_figure(640, 420)
    ax = fig.add_subplot(1, 1, 1)
    for row, by_label in result.scores.items():
        means = [by_label[t].mean for t in result.labels]
        stds = [by_label[t].std for t in result.labels]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=row)
    ax.set_xscale("log")
    ax.set_xticks(xs, [f"{t}" if t != "all" else f"all\n(~{math.floor(all_at)})"
                       for t in result.labels])
    ax.minorticks_off()
    ax.set_xlabel("labels per class")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"linear probe, {result.draws} draws of the labelled subset")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


def probe_run(run_dir: Any, *, labels: Sequence[int | None] = DEFAULT_LABELS, draws: int = 10,
              seed: int = 0, out: Any = None, **options: Any) -> tuple[ProbeResult, list[Any]]:
    """``genlab probe``: probe the model of a run folder on its data set's train and test
    splits, and write ``probe.md``, ``probe.json`` and ``probe.png`` into ``out`` (default
    ``RUN/probe``).

    Returns:
        The result and the paths written.
    """
    from genlab.runs import run_data
    from genlab.train.checkpoint import atomic_write_text, load

    run_dir = Path(run_dir)
    model = load(run_dir)
    train, test = run_data(run_dir, "train"), run_data(run_dir, "test")
    result = probe(model, train, test, labels=labels, draws=draws, seed=seed, **options)
    out = run_dir / "probe" if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    document = {"run": str(run_dir), "data": train.name, "options": options,
                **result.to_dict()}
    head = (f"Linear probe of {run_dir} ({train.name}: {len(train)} training, {len(test)} "
            f"test examples), test accuracy, mean ± std over {draws} draws of the labels.\n\n")
    written = [
        atomic_write_text(out / "probe.md", head + result.markdown() + "\n"),
        atomic_write_text(out / "probe.json", json.dumps(document, indent=2) + "\n"),
        plot_probe(result, out / "probe.png", train_size=len(train),
                   num_classes=train.num_classes),
    ]
    return result, written
