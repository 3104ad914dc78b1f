"""Evaluate a trained model the same way for every family: likelihood where defined, then
sample quality, mode coverage and memorization against held-out data."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from genlab.base import GenerativeModel
from genlab.data import Dataset, load_data
from genlab.errors import CheckpointError
from genlab.metrics import nll, sample_metrics
from genlab.metrics.likelihood import nll_estimate
from genlab.train import checkpoint as ckpt


def draw_samples(model: GenerativeModel, n: int, *, labels: torch.Tensor | None = None,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples (for a conditional model, one per label of ``labels``, cycled)."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    y = None
    if model.y_is_conditions:  # the conditions of the first n test rows
        y = labels[:n]
    elif model.conditional:
        source = labels if labels is not None and len(labels) else torch.arange(model.num_classes)
        y = source.repeat(math.ceil(n / len(source)))[:n]
    return model.sample(n, y, generator=generator).cpu(), y


def evaluate(model: GenerativeModel, test: Dataset, *, train: Dataset | None = None,
             n_samples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Metrics of ``model`` on the ``test`` split (and memorization against ``train``).

    Returns a flat dict: ``nll_nats``, ``bits_per_dim`` and ``bound`` where the family has a
    likelihood or a bound, or ``estimate`` and the estimate's own error where it is estimated
    (:func:`~genlab.metrics.likelihood.nll_estimate`); ``sample_seconds`` and the sample
    metrics of :func:`genlab.metrics.sample_metrics`; for conditional digit models
    ``class_accuracy``.
    """
    results: dict[str, Any] = {"model": model.name, "data": test.name}
    model.eval()
    if model.has_exact_likelihood or model.has_likelihood_bound:
        torch.manual_seed(seed)  # dequantization noise of continuous models on discrete data
        with torch.no_grad():
            results.update(nll(model, test))
    elif getattr(model, "has_likelihood_estimate", False):  # e.g. an RBM: AIS for log Z
        results.update(nll_estimate(model, test, generator=torch.Generator(
            device=model.device).manual_seed(seed)))
    n = min(n_samples, len(test))
    start = time.perf_counter()
    samples, y = draw_samples(model, n, labels=test.y, seed=seed)
    results["sample_seconds"] = round(time.perf_counter() - start, 4)
    reference = test.subset(slice(0, n))
    results.update(sample_metrics(samples, reference, train=train, info=test.info,
                                  generator=torch.Generator().manual_seed(seed)))
    if model.y_is_conditions and test.event_shape == (1, 8, 8) and test.num_levels == 17:
        results.update(_obedience(samples, y))
    elif model.conditional and test.event_shape == (1, 8, 8) and test.num_levels == 17:
        from genlab.metrics.features import class_accuracy

        results["class_accuracy"] = class_accuracy(samples, y)
    return results


def _obedience(samples: torch.Tensor, y: Any) -> dict[str, float]:
    """How well digits drawn under conditions ``y`` obey their label, prompt and sketch
    (:func:`genlab.metrics.obedience.obedience`), keys prefixed ``obey_``."""
    from genlab.conditioning import prompt_tokenizer
    from genlab.metrics.obedience import obedience

    given = {"labels": y["label"].cpu() if "label" in y.kinds else None,
             "sketches": y["sketch"].cpu() if "sketch" in y.kinds else None,
             "prompts": prompt_tokenizer().decode(y["prompt"].cpu(), y["prompt_mask"].cpu())
             if "prompt" in y.kinds else None}
    out = obedience(samples, **given)
    return {f"obey_{k}": v for k, v in out.items() if k != "n"}


def evaluate_run(model: GenerativeModel, run: Path, *, data: str | None = None,
                 n_samples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Evaluate a run folder's model on its data set's test split; writes ``eval.json``."""
    document = ckpt.read_config(run)
    name = data or (document.get("data") or {}).get("name")
    if not name:
        raise CheckpointError(f"{run / ckpt.CONFIG_FILE} names no data set; pass --data.")
    if data is None and (document.get("data") or {}).get("conditions"):
        from genlab.runs import run_data

        test, train = run_data(run, "test"), run_data(run, "train")  # paired with conditions
    else:
        test = load_data(name, split="test")
        train = load_data(name, split="train")
    results = evaluate(model, test, train=train, n_samples=n_samples, seed=seed)
    ckpt.atomic_write_text(run / "eval.json", json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


#: Columns of the results table, in order, with their headings and number formats.
COLUMNS = [
    ("nll_nats", "test NLL (nats)", "{:.3f}"),
    ("bits_per_dim", "bits/dim", "{:.3f}"),
    ("mmd2", "MMD^2", "{:.4f}"),
    ("sliced_wasserstein", "sliced W", "{:.4f}"),
    ("energy_distance", "energy", "{:.4f}"),
    ("precision", "precision", "{:.2f}"),
    ("recall", "recall", "{:.2f}"),
    ("modes_hit", "modes", "{:.0f}"),
    ("high_quality_fraction", "high quality", "{:.2f}"),
    ("memorization_ratio", "memorization", "{:.2f}"),
    ("frechet_distance", "Frechet", "{:.2f}"),
    ("class_accuracy", "class acc.", "{:.2f}"),
    ("probe_10", "probe (10/class)", "{:.2f}"),
    ("train_seconds", "train s", "{:.1f}"),
]


def format_table(rows: dict[str, Any] | list[dict[str, Any]]) -> str:
    """A Markdown table of results (one row per model); columns nobody has are left out."""
    rows = [rows] if isinstance(rows, dict) else rows
    columns = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    header = "| model | " + " | ".join(c[1] for c in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for r in rows:
        cells = []
        for key, _, fmt in columns:
            value = r.get(key)
            text = "—" if value is None else fmt.format(value)
            if key in ("nll_nats", "bits_per_dim") and r.get("bound"):
                text = "≤ " + text
            if key in ("nll_nats", "bits_per_dim") and r.get("estimate"):
                error = r["estimate_stderr_nats" if key == "nll_nats"
                          else "bits_per_dim_estimate_stderr"]
                text = f"≈ {text} ± {error:.2g}"  # the estimate and its error bar
            cells.append(text)
        lines.append(f"| {r.get('model', '?')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
