"""GAN benchmark: the mode-collapse tests of the GAN literature, and digits sample quality.

Mode collapse (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018): train on the 8-Gaussian
ring (``ring8``, radius 2, std 0.02) and the 5x5 grid (``25gaussians``, spacing 2, std 0.05),
draw 2,500 samples, and count the modes hit and the fraction of high-quality samples (within
3 standard deviations of a mode; ``genlab.metrics.mode_coverage``).

1. Sweep: every configuration tried on the grid (one seed, a short budget), the current
   ``gan`` defaults among them.
2. Seeds: the defaults and the best other configuration of the sweep (chosen by this script:
   high-quality fraction times the fraction of modes hit) on both sets with three seeds,
   sampled plainly from G(z) and, where the discriminator is a logit of Pr(real | x), with
   discriminator rejection sampling (``sample(..., rejection=True)``, same trained model).
3. Digits: a class-conditional DCGAN; Frechet distance in the library's digits-classifier
   features for samples and for real digits the classifier never saw, the same number of each,
   against the same reference (``genlab.metrics.size_matched_frechet``), and class accuracy.

Usage:
    python bench/bench_gan.py [--quick] [--out DIR] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import Report, common_arguments  # noqa: E402

#: 25gaussians anchors, 2,500 samples, ~400,000 iterations: (modes hit, high quality %).
PUBLISHED = {"PacGAN4": (24.8, 94.0), "VEEGAN": (24.6, 40.0)}
DEFAULTS = "gan defaults"
#: The optimiser R3GAN uses: Adam without momentum, one learning rate for both players.
R3GAN_OPT = {"betas": (0.0, 0.99), "g_lr": 2e-4, "d_lr": 2e-4, "pack": 1, "d_repeats": 1}


def rpgan(gamma: float, **extra: Any) -> dict[str, Any]:
    """Relativistic pairing with R1 = R2 = gamma and R3GAN's optimiser, then ``extra``."""
    return {"loss": "rpgan", "r1_weight": gamma, "r2_weight": gamma, **R3GAN_OPT, **extra}


#: Every configuration tried on the grid: name -> ``create("gan", ...)`` settings.
SWEEP: dict[str, dict[str, Any]] = {
    DEFAULTS: {},
    "minimax, no stabiliser": {"loss": "minimax", "pack": 1, "d_repeats": 1, "g_lr": 2e-4,
                               "d_lr": 2e-4},
    "rpgan gamma 0.1, lr 2e-4": rpgan(0.1),
    "rpgan gamma 0.01, lr 2e-4": rpgan(0.01),
    "rpgan gamma 0.01, lr 1e-3": rpgan(0.01, g_lr=1e-3, d_lr=1e-3),
    "rpgan gamma 0.001, lr 1e-3": rpgan(0.001, g_lr=1e-3, d_lr=1e-3),
    "rpgan gamma 0.01, lr 3e-3": rpgan(0.01, g_lr=3e-3, d_lr=3e-3),
    "rpgan gamma 0.01, lr 1e-3 (G), 3e-3 (D)": rpgan(0.01, g_lr=1e-3, d_lr=3e-3),
    "rpgan gamma 0.01, lr 1e-3, betas (0.5, 0.999)": rpgan(0.01, g_lr=1e-3, d_lr=1e-3,
                                                         betas=(0.5, 0.999)),
    "rpgan gamma 0.01, lr 1e-3, width 256": rpgan(0.01, g_lr=1e-3, d_lr=1e-3, width=256),
    "rpgan gamma 0.01, lr 1e-3, R1 only": rpgan(0.01, g_lr=1e-3, d_lr=1e-3, r2_weight=0.0),
    "rpgan gamma 0.01, lr 1e-3, pack 4": rpgan(0.01, g_lr=1e-3, d_lr=1e-3, pack=4),
    "non-saturating + R1 + R2 gamma 0.01, lr 1e-3": {
        **rpgan(0.01, g_lr=1e-3, d_lr=1e-3), "loss": "nonsaturating"},
}
SIZES = {  # full, quick
    "sweep_steps": (800, 150), "steps": (1200, 200), "samples": (2500, 2500),
    "digits_steps": (300, 60), "digits_samples": (1000, 250), "fd_repeats": (5, 2),
}


def toy_run(task: tuple[str, str, dict[str, Any], int, int, int]) -> dict[str, Any]:
    """Train one configuration on one toy set with one seed; score plain (and DRS) samples."""
    import torch

    from genlab import metrics
    from genlab.data import load_data
    from genlab.models.gan.losses import PROBABILISTIC_LOSSES
    from genlab.registry import create
    from genlab.train import fit

    torch.set_num_threads(1)
    warnings.simplefilter("ignore", RuntimeWarning)  # collapse warnings of weak configurations
    data_name, name, params, steps, seed, n = task
    data = load_data(data_name)
    torch.manual_seed(seed)
    model = create("gan", event_shape=data.event_shape, diag_every=steps, **params)
    start = time.process_time()
    fit(model, data, steps=steps, batch_size=256, seed=seed, progress=False)
    out = {"data": data_name, "model": name, "seed": seed, "steps": steps,
           "cpu_s": time.process_time() - start, "num_modes": len(data.info["centers"])}
    for rejection in (False, True):
        key = "rejection" if rejection else "plain"
        if rejection and model.loss not in PROBABILISTIC_LOSSES:
            out[key] = None  # no logit of Pr(real | x) to estimate p_data / p_g with
            continue
        x = model.sample(n, generator=torch.Generator().manual_seed(1000 + seed),
                         rejection=rejection)
        cov = metrics.mode_coverage(x, data.info["centers"], data.info["std"])
        out[key] = (cov["modes_hit"], 100 * cov["high_quality_fraction"])
    print(f"{data_name:12s} {name:40s} seed {seed}: {out['plain'][0]:2d} modes "
          f"{out['plain'][1]:5.1f}% | {out['cpu_s']:5.1f} cpu s", flush=True)
    return out


def digits_run(task: tuple[int, int, int, int]) -> dict[str, Any]:
    """Conditional DCGAN on digits; size-matched Frechet distances and class accuracies."""
    import torch

    from genlab import metrics
    from genlab.data import load_data
    from genlab.metrics.features import digits_split
    from genlab.registry import create
    from genlab.train import fit

    torch.set_num_threads(1)
    steps, seed, n, repeats = task
    train = load_data("digits")
    classifier = metrics.digits_classifier()
    torch.manual_seed(seed)
    model = create("dcgan", **train.model_kwargs(conditional=True))
    start = time.process_time()
    fit(model, train, steps=steps, batch_size=64, seed=seed, progress=False)
    cpu = time.process_time() - start
    y = torch.arange(10).repeat_interleave(n // 10)  # class-balanced labels
    x = model.sample(len(y), y=y, generator=torch.Generator().manual_seed(seed))
    fd = metrics.size_matched_frechet(x, repeats=repeats, seed=seed, classifier=classifier)
    accuracy = {split: classifier.accuracy(*digits_split(split))
                for split in ("train", "val", "test")}
    return {"fd": fd, "acc_samples": metrics.class_accuracy(x, y, classifier=classifier),
            "acc": accuracy, "cpu_s": cpu, "steps": steps, "n_samples": len(y),
            "config": model.config}


def sweep_score(run: dict[str, Any]) -> float:
    """High-quality % times the fraction of modes hit: the sweep's ranking."""
    modes, hq = run["plain"]
    return hq * modes / run["num_modes"]


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def settings_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "(none)"


def seed_rows(runs: list[dict[str, Any]]) -> list[list[Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["data"], r["model"]), []).append(r)
    rows = []
    for (data, model), rs in groups.items():
        rs.sort(key=lambda r: r["seed"])
        for key, sampling in (("plain", "G(z)"), ("rejection", "rejection (DRS)")):
            if rs[0][key] is None:
                rows.append([data, model, sampling, None, None, None, None, None, None, None])
                continue
            modes = [r[key][0] for r in rs]
            hq = [r[key][1] for r in rs]
            total = rs[0]["num_modes"]
            rows.append([data, model, sampling, f"{mean_sd(modes)} / {total}",
                         ", ".join(map(str, modes)), mean_sd(hq),
                         ", ".join(f"{v:.1f}" for v in hq), all(m == total for m in modes),
                         all(m == total for m in modes) and min(hq) >= 95.0,
                         statistics.mean(r["cpu_s"] for r in rs)])
    return rows


def grid_summary(runs: list[dict[str, Any]], model: str, key: str = "plain") -> tuple:
    rs = sorted((r for r in runs if r["data"] == "25gaussians" and r["model"] == model),
                key=lambda r: r["seed"])
    return [r[key][0] for r in rs], [r[key][1] for r in rs]


def write_report(report: Report, sweep: list[dict[str, Any]], best: str,
                 runs: list[dict[str, Any]], digits: dict[str, Any], sizes: dict[str, int],
                 seeds: list[int]) -> None:
    by_name = {r["model"]: r for r in sweep}
    rows = [[name, settings_text(SWEEP[name]), by_name[name]["plain"][0],
             by_name[name]["plain"][1], sweep_score(by_name[name]), by_name[name]["cpu_s"]]
            for name in SWEEP]
    report.table(
        f"every configuration tried, 25gaussians, seed {seeds[0]}, {sizes['sweep_steps']} "
        "steps", ["configuration", "settings (beyond the gan defaults)", "modes hit",
                  "high quality %", "score", "train CPU s"], rows,
        note=f"`create('gan', event_shape=(2,), **settings)`, batch 256, cosine schedule, "
             f"{sizes['samples']} samples from G(z). Score = high quality % x modes hit / 25 "
             "ranks the configurations; the best one other than the defaults goes on to the "
             "seeded comparison below.",
        formats=[None, None, "d", ".1f", ".1f", ".0f"])
    report.table(
        f"the defaults and the sweep's best ({best}), seeds {seeds}, {sizes['steps']} steps",
        ["data", "model", "sampling", "modes hit (mean ± sd)", "per seed", "high quality %",
         "per seed", "all modes, every seed", "all modes and >= 95%, every seed",
         "train CPU s / run"], seed_rows(runs),
        note=f"{sizes['samples']} samples per model; a sample is high quality within 3 std of "
             "its nearest mode; a mode is hit by at least one high-quality sample (the "
             "VEEGAN/PacGAN convention). Rejection sampling needs a discriminator that is a "
             "logit of Pr(real | x); the relativistic pairing loss's is not (–).",
        formats=[None] * 9 + [".0f"])
    anchors = "; ".join(f"{k} {m} modes at {q:.0f}%" for k, (m, q) in PUBLISHED.items())
    report.text(f"Published anchors on the grid (2,500 samples, ~400,000 iterations at batch "
                f"100): {anchors}.")
    for model in (best, DEFAULTS):
        modes, hq = grid_summary(runs, model)
        met = all(m == 25 for m in modes) and min(hq) >= 95.0
        report.target(f"25gaussians: all 25 modes with >= 95% high quality from G(z), each "
                      f"of 3 seeds ({model})",
                      f"modes {modes}, high quality {', '.join(f'{v:.1f}' for v in hq)}%",
                      met, details=f"{sizes['steps']} steps; PacGAN4 24.8 / 94%")
    ring = sorted((r for r in runs if r["data"] == "ring8" and r["model"] == best),
                  key=lambda r: r["seed"])
    ring_modes = [r["plain"][0] for r in ring]
    report.target(f"ring8 8/8 modes in every seed ({best}; needed to become the points recipe)",
                  f"modes {ring_modes}", all(m == 8 for m in ring_modes))
    d_modes, d_hq = grid_summary(runs, DEFAULTS)
    b_modes, b_hq = grid_summary(runs, best)
    report.text(
        f"On the grid, {best} against the defaults: modes {statistics.mean(b_modes):.1f} vs "
        f"{statistics.mean(d_modes):.1f}, high quality {statistics.mean(b_hq):.1f}% vs "
        f"{statistics.mean(d_hq):.1f}%; "
        f"ratio of the best's high quality to PacGAN4's 94%: {statistics.mean(b_hq) / 94:.3f}.")
    fd, acc = digits["fd"], digits["acc"]
    report.table(
        "digits, class-conditional DCGAN", ["set", "Frechet distance to the reference",
                                            "set size", "reference size", "class accuracy"],
        [["dcgan samples, class-balanced", f"{fd['samples']:.2f} ± {fd['samples_sd']:.2f}",
          fd["n"], fd["reference_n"], digits["acc_samples"]],
         ["real digits the classifier never saw", f"{fd['real']:.2f} ± {fd['real_sd']:.2f}",
          fd["n"], fd["reference_n"], acc["test"]]],
        note="The feature classifier trains on the digits train split; the "
             f"{fd['n'] + fd['reference_n']} val and test digits, which it never saw, are "
             f"split at random into a reference and a real set, and {fd['n']} of "
             f"{digits['n_samples']} samples are scored "
             f"against the same reference: mean ± sd over {fd['repeats']} random splits. "
             "The real row's class accuracy is the classifier's accuracy on the test split. "
             f"{digits['steps']} steps, batch 64, config `{digits['config']}`, "
             f"{digits['cpu_s']:.0f} train CPU s.",
        formats=[None, None, "d", "d", ".3f"])
    report.text(
        f"Digits classifier accuracy: train split {acc['train']:.3f} (seen in training), val "
        f"{acc['val']:.3f}, test {acc['test']:.3f}. Samples / real Frechet distance "
        f"{fd['samples'] / max(fd['real'], 1e-12):.2f}; sample class accuracy / test accuracy "
        f"{digits['acc_samples'] / acc['test']:.3f}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--workers", type=int, default=2, help="processes (1 thread each)")
    args = parser.parse_args()
    sizes = {k: v[1] if args.quick else v[0] for k, v in SIZES.items()}
    seeds = [0, 1, 2]
    report = Report("gan", "GAN: mode coverage on toy mixtures, digits sample quality",
                    quick=args.quick, description=__doc__.split("\n\n")[1])
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        sweep_f = [pool.submit(toy_run, ("25gaussians", name, params, sizes["sweep_steps"],
                                         seeds[0], sizes["samples"]))
                   for name, params in SWEEP.items()]
        digits_f = pool.submit(digits_run, (sizes["digits_steps"], seeds[0],
                                            sizes["digits_samples"], sizes["fd_repeats"]))
        runs_f: list[Future] = [pool.submit(toy_run, (d, DEFAULTS, {}, sizes["steps"], s,
                                                      sizes["samples"]))
                                for d in ("ring8", "25gaussians") for s in seeds]
        sweep = [f.result() for f in sweep_f]
        best = max((r for r in sweep if r["model"] != DEFAULTS), key=sweep_score)["model"]
        runs_f += [pool.submit(toy_run, (d, best, SWEEP[best], sizes["steps"], s,
                                         sizes["samples"]))
                   for d in ("ring8", "25gaussians") for s in seeds]
        runs = [f.result() for f in runs_f]
        digits = digits_f.result()
    write_report(report, sweep, best, runs, digits, sizes, seeds)
    report.write(args.out)


if __name__ == "__main__":
    main()
