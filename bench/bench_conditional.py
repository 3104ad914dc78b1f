"""Conditional generation x ~ p(x | y) on the digits, y = a sketch plus a short prompt.

Every model is built with ``create(name, data=train)`` (its recipe, ``conditions=("sketch",
"prompt")`` read from the data) and trained with ``fit`` on the paired training digits
(``paired_digits("train")``: the held-out attribute combinations are not in it). On the test
split, each condition (sketch and prompt of one test digit) is sampled ``--per-condition``
times and scored by :func:`genlab.metrics.obedience.obedience`: label accuracy under genlab's
digits classifier (the digit the prompt names), attribute error (the attributes it names),
sketch IoU and Chamfer distance of the sample's own sketch against the given one (first
sample of each condition), and diversity (mean distance between the samples of one
condition). Seen conditions and the held-out combinations are reported apart. Likelihood
families add their conditional bits/dim on the test digits (exact for ``cond_pixelcnn``; the
dequantization bound for ``cond_realnvp``).

References on the same measures: real test digits under the classifier, and
:func:`~genlab.metrics.obedience.real_sketch_reference` (a digit against another digit's
sketch of the same class: what obeying the label but ignoring the sketch reaches). Conditional
diffusion, where the registry has a ``ddpm`` that reads sketches and prompts, is run the same
way and swept over its guidance scale (obedience against diversity, one figure).

    OMP_NUM_THREADS=1 python bench/bench_conditional.py            # full: ~8 min, one core
    OMP_NUM_THREADS=1 python bench/bench_conditional.py --quick    # < 90 s
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path
from typing import Any

import torch

import genlab  # noqa: F401  (registers every model)
from _report import Report, common_arguments
from genlab import create, fit, load
from genlab.data.conditions import paired_digits
from genlab.metrics.features import class_accuracy
from genlab.metrics.obedience import obedience, real_sketch_reference
from genlab.registry import available, get
from genlab.train.checkpoint import atomic_write_bytes

CONDITIONS = ("sketch", "prompt")
SEED = 0
#: Where trained runs are kept and reused (docs/figures/make_conditional.py reads them too).
RUNS = Path(__file__).resolve().parent / "out" / "conditional-runs"
#: name -> (constructor settings, training settings) beyond the recipe; "quick" variants below.
FULL: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {  # the recipes, but ddpm's steps
    "pix2pix": ({}, {}), "cond_pixelcnn": ({}, {}), "cond_realnvp": ({}, {}),
    "ddpm": ({}, {"steps": 500}),  # a third of its recipe's 1500: one core's budget
}
QUICK: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "pix2pix": ({"width": 8}, {"steps": 60}),
    "cond_pixelcnn": ({"width": 8, "depth": 1, "kernel_size": 3}, {"steps": 30}),
    "cond_realnvp": ({"width": 8, "transforms": 2}, {"steps": 30}),
    "ddpm": ({"width": 8, "num_timesteps": 20}, {"steps": 30}),
}
#: Sampling options per model: diffusion with DPM-Solver++(2M), 20 network calls.
SAMPLING: dict[str, dict[str, Any]] = {"ddpm": {"sampler": "dpm-solver"}}
GUIDANCE = (0.0, 1.0, 2.0, 4.0)


def diffusion_reads_conditions() -> bool:
    """Whether the registry's ``ddpm`` takes sketches and prompts."""
    return "ddpm" in available() and set(CONDITIONS) <= set(get("ddpm").supported_conditions)


def train(name: str, settings: tuple[dict[str, Any], dict[str, Any]], data: Any, val: Any,
          runs: Path | None) -> tuple[Any, float]:
    """The model trained as ``genlab train`` would, with the settings given; reused from
    ``runs`` when a finished run is there."""
    params, training = settings
    folder = None if runs is None else runs / name
    if folder is not None and (folder / "model.safetensors").exists() and \
            (folder / "bench_seconds.txt").exists():
        return load(folder), float((folder / "bench_seconds.txt").read_text())
    model = create(name, data=data, seed=SEED, **params)
    start = time.perf_counter()
    fit(model, data, val_data=val, out=folder, seed=SEED, progress=False, **training)
    seconds = time.perf_counter() - start
    if folder is not None:
        (folder / "bench_seconds.txt").write_text(f"{seconds:.2f}\n")
    return model.eval(), seconds


def draw(model: Any, y: Any, per: int, seed: int, cache: Path | None = None,
         **options: Any) -> tuple[torch.Tensor, float]:
    """``per`` samples of every row of ``y``: ``(rows * per, 1, 8, 8)``, rows repeated in
    place (row i's samples are ``i * per .. i * per + per - 1``), and the seconds taken.

    With ``cache`` (a run folder) the samples and their time are kept there and reused by a
    later run of the same draw."""
    key = "-".join([f"samples-{y.n}x{per}-seed{seed}",
                    *(f"{k}{v}" for k, v in sorted(options.items()))])
    path = None if cache is None else cache / f"{key}.pt"
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=True)
        return saved["x"], float(saved["seconds"])
    rows = torch.arange(y.n).repeat_interleave(per)
    start = time.perf_counter()
    x = model.sample(len(rows), y.index(rows), generator=torch.Generator().manual_seed(seed),
                     **options)
    seconds = time.perf_counter() - start
    if path is not None:
        buffer = io.BytesIO()
        torch.save({"x": x, "seconds": torch.tensor(seconds)}, buffer)
        atomic_write_bytes(path, buffer.getvalue())
    return x, seconds


def score(samples: torch.Tensor, test: Any, rows: torch.Tensor, per: int) -> dict[str, float]:
    """Obedience of the first sample of each of ``rows``' conditions, diversity over all."""
    first = samples[::per][rows]
    picked = [test.conditions["prompt"][i] for i in rows.tolist()]
    out = obedience(first, labels=test.y[rows], prompts=picked,
                    sketches=test.conditions["sketch"][rows])
    all_rows = (rows[:, None] * per + torch.arange(per)).reshape(-1)
    out["diversity"] = obedience(samples[all_rows], groups=all_rows // per)["diversity"]
    return out


def attribute_error(scores: dict[str, float]) -> float:
    """Mean mismatch rate over the attributes the prompts named."""
    errors = [v for k, v in scores.items() if k.endswith("_error")]
    return sum(errors) / len(errors) if errors else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--per-condition", type=int, default=None,
                        help="samples per condition (default 4; 2 with --quick)")
    parser.add_argument("--runs", default=str(RUNS),
                        help="folder for the trained runs, reused when present (default "
                             "bench/out/conditional-runs; the figure script reads them)")
    parser.add_argument("--models", default=None, help="comma-separated subset")
    args = parser.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    per = args.per_condition or (2 if args.quick else 4)
    budget = QUICK if args.quick else FULL
    names = [n for n in (args.models.split(",") if args.models else budget)
             if n != "ddpm" or diffusion_reads_conditions()]
    # quick runs are not kept: they would be reused by a later full run
    runs = None if args.quick else Path(args.runs)
    if runs is not None:
        runs.mkdir(parents=True, exist_ok=True)

    train_pairs = paired_digits("train", CONDITIONS, seed=SEED)
    data = train_pairs.to_dataset(CONDITIONS)
    val = paired_digits("val", CONDITIONS, seed=SEED, held_out="drop").to_dataset(CONDITIONS)
    test = paired_digits("test", CONDITIONS, seed=SEED)
    if args.quick:
        test = test.subset(torch.arange(0, len(test), 3))
    y_test = test.to_dataset(CONDITIONS).y
    groups = {"seen": (~test.held_out).nonzero().reshape(-1),
              "held-out": test.held_out.nonzero().reshape(-1)}

    report = Report("conditional", "Conditional generation from sketches and prompts",
                    quick=args.quick, description=__doc__.split("\n\n")[0])
    reference = real_sketch_reference("test", seed=SEED)
    real_accuracy = class_accuracy(test.x, test.y)
    rows, bits_rows, timing = [], [], []
    for name in names:
        model, train_seconds = train(name, budget[name], data, val, runs)
        cache = None if runs is None else runs / name
        samples, sample_seconds = draw(model, y_test, per, seed=1, cache=cache,
                                       **SAMPLING.get(name, {}))
        timing.append([name, train_seconds, 1000 * sample_seconds / len(samples)])
        for group, members in groups.items():
            if len(members) == 0:
                continue
            s = score(samples, test, members, per)
            rows.append([name, group, len(members), s["label_accuracy"], attribute_error(s),
                         s["sketch_iou"], s["sketch_chamfer"], s["diversity"]])
            if model.has_exact_likelihood or model.has_likelihood_bound:
                with torch.no_grad():
                    bpd = model.bits_per_dim(test.x[members], y_test.index(members))
                bits_rows.append([name, group, bpd.mean().item(),
                                  "exact" if model.has_exact_likelihood and not
                                  name.startswith("cond_realnvp") else "bound"])
        seen = [r for r in rows if r[0] == name and r[1] == "seen"][0]
        report.target(f"{name}: label accuracy >= 0.95 (seen conditions)", f"{seen[3]:.3f}",
                      seen[3] >= 0.95)
        report.target(f"{name}: sketch IoU within 10% of real digits' own (>= 0.9; floor "
                      f"{reference['other_iou']:.2f})", f"{seen[5]:.3f}", seen[5] >= 0.9)
        if name == "ddpm":
            # a sample of the seen conditions, two draws each: four scales cost four runs
            sweep = groups["seen"][: 30 if args.quick else 100]
            guidance_sweep(model, y_test, test, sweep, 2, report, args.out, cache)
        print(name, [f"{v:.3f}" if isinstance(v, float) else v for v in seen], flush=True)

    report.table("obedience and diversity on the test digits' conditions",
                 ["model", "conditions", "n", "label accuracy", "attribute error",
                  "sketch IoU", "sketch Chamfer (px)", "diversity"], rows,
                 formats=[None, None, None, ".3f", ".3f", ".3f", ".3f", ".3f"],
                 note=f"{per} samples per condition; obedience of the first, diversity over "
                      "all of one condition (images scaled to [0, 1]); attribute error: mean "
                      "mismatch over the attributes the prompts name.")
    report.table("references from real test digits", ["measure", "value"], [
        ["label accuracy of the classifier on real test digits", real_accuracy],
        ["sketch IoU, a digit against its own sketch", reference["own_iou"]],
        ["sketch IoU, against another digit of the class (floor)", reference["other_iou"]],
        ["sketch Chamfer (px), against another digit of the class", reference["other_chamfer"]],
        ["diversity among test digits of one class (docs/conditioning.md)", 2.22],
    ], formats=[None, ".3f"])
    if bits_rows:
        report.table("conditional bits/dim on the test digits", ["model", "conditions",
                     "bits/dim", "kind"], bits_rows, formats=[None, None, ".3f", None])
        for name, group, value, kind in bits_rows:
            if group == "seen":
                report.bits(f"{name} | sketch, prompt", value, kind=kind,
                            note="conditional: -log2 p(x | sketch, prompt) / 64")
    report.table("time (one thread)", ["model", "train (s)", "sample (ms per image)"], timing,
                 formats=[None, ".1f", ".2f"])
    report.write(args.out)


def guidance_sweep(model: Any, y: Any, test: Any, rows: torch.Tensor, per: int,
                   report: Report, out: str, cache: Path | None) -> None:
    """Obedience and diversity of the diffusion model as its guidance scale grows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for w in GUIDANCE:
        samples, _ = draw(model, y.index(rows), per, seed=2, cache=cache, guidance=w,
                          **SAMPLING["ddpm"])
        s = score(samples, test.subset(rows), torch.arange(len(rows)), per)
        points.append([w, s["label_accuracy"], s["sketch_iou"], s["diversity"]])
    report.table("diffusion: obedience against diversity as the guidance scale grows",
                 ["guidance", "label accuracy", "sketch IoU", "diversity"], points,
                 formats=[".1f", ".3f", ".3f", ".3f"],
                 note=f"{len(rows)} seen test conditions, {per} samples each; one scale w "
                      "for both conditions (eps_u + w (eps_c - eps_u)); w = 1 is the plain "
                      "conditional model, w = 0 ignores the conditions.")
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    div = [p[3] for p in points]
    ax.plot(div, [p[1] for p in points], "o-", label="label accuracy")
    ax.plot(div, [p[2] for p in points], "s-", label="sketch IoU")
    for w, d, a in zip(GUIDANCE, div, (p[1] for p in points), strict=True):
        ax.annotate(f"w={w:g}", (d, a), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("diversity (mean distance within a condition)")
    ax.set_ylabel("obedience")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(out).mkdir(parents=True, exist_ok=True)
    fig.savefig(Path(out) / "conditional_guidance.png", dpi=120)
    plt.close(fig)
    report.figure("conditional_guidance.png", "Diffusion on seen test conditions: obedience "
                  "against diversity as the guidance scale w grows")


if __name__ == "__main__":
    main()
