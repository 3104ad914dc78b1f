"""Compare families on the same data with the same metrics: ``genlab compare`` / ``genlab demo``.

Every registered model with a recipe for the data's kind (:mod:`genlab.recipes`) is trained
with it, exactly as ``genlab train`` would, evaluated with
:func:`genlab.report.evaluate.evaluate`, and drawn (every picture of
:func:`genlab.viz.run.run_figures`: samples, the density beside the data for 2-D sets,
training curves, the family's own). The result is a folder with ``report.md``,
``report.html``, ``results.json`` and PNGs.
"""

from __future__ import annotations

import html
import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from genlab.data import load_data
from genlab.errors import ConfigError
from genlab.recipes import Recipe, data_kind, recipe_for, train_settings
from genlab.registry import available, create, get
from genlab.report.evaluate import evaluate, format_table
from genlab.train import checkpoint as ckpt
from genlab.train import fit

__all__ = ["run_report", "evaluate", "format_table"]


def demo_models(dataset: str, *, showcase: bool = False) -> list[str]:
    """Registered models with a recipe for ``dataset``'s kind of data, in registry order;
    with ``showcase``, only the one each family shows first (``Recipe.showcase``)."""
    data = load_data(dataset, split="train", seed=0)
    recipes = {name: recipe_for(get(name), data) for name in available()
               if not name.startswith("_")}
    return [name for name, recipe in recipes.items()
            if recipe is not None and (recipe.showcase or not showcase)]


def train_demo(name: str, dataset: str, out: Path, *, scale: float = 1.0, seed: int = 0,
               quick: bool = False):
    """Train ``name`` on ``dataset`` with its recipe (the defaults ``genlab train`` uses);
    ``quick`` takes the recipe's short first-look budget. Returns (model, seconds)."""
    train = load_data(dataset, split="train", seed=0)
    val = load_data(dataset, split="val", seed=0)
    torch.manual_seed(seed)  # construction too: a report does not depend on its order
    quick_params = (recipe_for(get(name), train) or Recipe()).quick_params if quick else {}
    model = create(name, data=train, **quick_params)  # the recipe's params, then these
    settings = train_settings(model, train, has_val=True, quick=quick, seed=seed, progress=None)
    if "steps" in settings or scale != 1.0:
        settings["steps"] = max(1, int(round(settings.get("steps", 1000) * scale)))
    start = time.perf_counter()
    fit(model, train, val_data=val, out=out, **settings)
    return model, time.perf_counter() - start


def _figures(model, dataset, run_dir: Path, fig_dir: Path, seed: int) -> list[Path]:
    """Every picture of the run (:func:`genlab.viz.run.run_figures`) that draws on its own."""
    from genlab.viz.run import plot_run, run_figures

    figures: list[Path] = []
    stem = f"{dataset}-{model.name}"
    for kind in run_figures(model, run_dir):
        if kind == "curves" and len((run_dir / ckpt.METRICS_FILE).read_text().splitlines()) < 3:
            continue
        try:
            figures.extend(plot_run(model, run_dir, fig_dir / f"{stem}-{kind}.png", kind,
                                    seed=seed, data_name=dataset))
        except ConfigError as err:  # e.g. samples of a shape that has no picture
            warnings.warn(f"{stem}: no {kind!r} picture: {err}", stacklevel=2)
    return figures


def run_report(*, datasets: list[str], models: list[str] | None, out: Path,
               scale: float = 1.0, seed: int = 0, quick: bool = False) -> Path:
    """Train, evaluate and draw every requested family on every data set; returns report.md."""
    out = Path(out)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    all_rows: dict[str, list[dict[str, Any]]] = {}
    all_figs: dict[str, list[Path]] = {}
    for dataset in datasets:
        names = models if models is not None else demo_models(dataset, showcase=quick)
        for name in names:
            get(name)  # unknown names fail before any training
        train = load_data(dataset, split="train", seed=0)
        runnable = [n for n in names if recipe_for(get(n), train) is not None]
        skipped = sorted(set(names) - set(runnable))
        if skipped:
            warnings.warn(f"No recipe for {skipped} on {dataset!r} ({data_kind(train)}); "
                          "skipped.", stacklevel=2)
        if not runnable:
            raise ConfigError(f"No requested model has a recipe for {dataset!r}.")
        test = load_data(dataset, split="test", seed=0)
        if quick:  # the first look scores on the first QUICK_TEST points of the test split
            test = test.subset(slice(0, QUICK_TEST))
        rows, figs = [], []
        for name in runnable:
            run_dir = out / "runs" / f"{dataset}-{name}"
            print(f"[{dataset}] training {name} ...", flush=True)
            model, seconds = train_demo(name, dataset, run_dir, scale=scale, seed=seed,
                                        quick=quick)
            row = evaluate(model, test, train=train, n_samples=len(test) if quick else 2000,
                           seed=seed)
            row["train_seconds"] = round(seconds, 2)
            row.update(_probe_column(model, train, test, seed))
            rows.append(row)
            figs.extend(_figures(model, dataset, run_dir, fig_dir, seed))
            print(f"[{dataset}] {name}: " + ", ".join(
                f"{k}{_relation(row, k)}{row[k]:.4g}"
                for k in ("bits_per_dim", "mmd2", "frechet_distance")
                if isinstance(row.get(k), float)), flush=True)
        all_rows[dataset], all_figs[dataset] = rows, figs
    results = json.dumps(all_rows, indent=2, sort_keys=True) + "\n"
    ckpt.atomic_write_text(out / "results.json", results)
    intro = _INTRO + (_QUICK if quick else "")
    ckpt.atomic_write_text(out / "report.html", _html(all_rows, all_figs, out, intro))
    return ckpt.atomic_write_text(out / "report.md", _markdown(all_rows, all_figs, out, intro))


#: Draws of the labelled subset behind the report's probe column (``genlab probe`` uses 10).
PROBE_DRAWS = 3


def _relation(row: dict[str, Any], key: str) -> str:
    """``=``, or ``≈`` for an estimated likelihood (an RBM's AIS) and ``<=`` for a bound."""
    if key == "bits_per_dim" and row.get("estimate"):
        return "≈"
    if key == "bits_per_dim" and row.get("bound"):
        return "<="
    return "="


def _probe_column(model, train, test, seed: int) -> dict[str, float]:
    """``probe_10``: linear-probe test accuracy of the frozen features with 10 labels per
    class, mean of ``PROBE_DRAWS`` draws; empty for models without an encoder, conditional
    models (their features see the label) and unlabelled data."""
    from genlab.probe import probe

    if not model.has_encoder or model.conditional or train.y is None or test.y is None:
        return {}
    result = probe(model, train, test, labels=[10], draws=PROBE_DRAWS, seed=seed,
                   baselines=False, name="model")
    return {"probe_10": result.scores["model"]["10"].mean}


#: Test points the quick demo scores on (the full comparison uses the whole test split).
QUICK_TEST = 500

_INTRO = ("Each family trained on the same split, scored on the same held-out test split. "
          "NLL and bits/dim are exact where the family allows, '≤' marks a variational bound "
          "(diffusion), '—' a family without likelihood (GAN). Sample metrics compare 2,000 "
          "samples (or the whole test split) with held-out data; memorization near 1 means "
          "samples are no closer to training points than held-out data are. 'probe' is the "
          "test accuracy of a logistic regression on the model's frozen features given 10 "
          f"labels per class (mean of {PROBE_DRAWS} draws; `genlab probe RUN` gives the whole "
          "table beside raw pixels).")
_QUICK = (" This is the quick first look (genlab demo): short training budgets, one model per "
          f"family, scored on the first {QUICK_TEST} test points with as many samples; "
          "genlab demo --full trains every model with its full defaults.")


def _markdown(rows: dict[str, list[dict]], figs: dict[str, list[Path]], out: Path,
              intro: str) -> str:
    parts = ["# genlab report", "", intro, ""]
    for dataset, table in rows.items():
        parts += [f"## {dataset}", "", format_table(table), ""]
        parts += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in figs[dataset]]
        parts.append("")
    return "\n".join(parts)


def _html(rows: dict[str, list[dict]], figs: dict[str, list[Path]], out: Path,
          intro: str) -> str:
    body = [f"<h1>genlab report</h1><p>{html.escape(intro)}</p>"]
    for dataset, table in rows.items():
        lines = format_table(table).splitlines()
        head = [c.strip() for c in lines[0].strip("|").split("|")]
        body.append(f"<h2>{html.escape(dataset)}</h2><table><tr>"
                    + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
        for line in lines[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        body.append("</table>")
        body += [f'<figure><img src="{html.escape(p.relative_to(out).as_posix())}" '
                 f'alt="{html.escape(p.stem)}"><figcaption>{html.escape(p.stem)}</figcaption></figure>'
                 for p in figs[dataset]]
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto}"
             "table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>genlab report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
