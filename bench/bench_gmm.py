"""Gaussian-mixture EM: genlab vs scikit-learn ``GaussianMixture`` on the same data.

Same training points (float32 values, given to scikit-learn as float64), same number of
components, covariance type, ``tol``, ``reg_covar`` and ``max_iter``; each library with its
default initialisation (both: k-means++ seeds refined by Lloyd's k-means, then one M-step),
plus scikit-learn with ``init_params="k-means++"`` (seeds only) for reference. The
contenders run in turn for every seed, so machine load hits all alike.

Reported per case: median over seeds of the fit time (on digits, where a fit takes a
fraction of a second, the fastest of ``--repeats`` runs per seed), mean and spread of the final
average test log-likelihood (nats per sample) over the seeds, mean EM iterations, and the ratios
(target: genlab's likelihood at least as good, its time at most half of scikit-learn's).

Cases: moons (100k train points, 5k test, 16 components) and digits (64-d, 1350 train / 297
test images uniformly dequantized to [0, 1) with one fixed noise draw shared by both
libraries, 10 components). For digits the bound in bits per pixel is also shown:
``-(log-lik - 64 log 17) / (64 log 2)``.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_gmm.py --out bench/results/histogram_gmm.md
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings

import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

from bench_histogram import machine, update_results
from genlab import load_data
from genlab.errors import GenlabWarning
from genlab.models.gmm import GaussianMixture


def case_data(name: str, n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Train and test points ``(n, D)`` as float32 tensors, and a description."""
    if name == "moons":
        train = load_data("moons", n=n, seed=0).x
        test = load_data("moons", split="test", seed=0).x
        return train, test, f"moons, {len(train):,} train / {len(test):,} test points"
    g = torch.Generator().manual_seed(0)
    train = load_data("digits").x.reshape(-1, 64)
    test = load_data("digits", split="test").x.reshape(-1, 64)
    train = (train + torch.rand(train.shape, generator=g)) / 17  # one shared dequantization
    test = (test + torch.rand(test.shape, generator=g)) / 17
    return train, test, f"digits 8x8 dequantized to [0,1), {len(train)} train / {len(test)} test"


def run_genlab(train, test, k, covariance, seed, args):
    model = GaussianMixture(
        event_shape=(train.shape[1],),
        components=k,
        covariance=covariance,
        tol=args.tol,
        reg_covar=args.reg_covar,
        max_iter=args.max_iter,
        init_seed=seed,
    )
    start = time.perf_counter()
    model.fit_closed_form(train)
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        score = model.log_prob(test).double().mean().item()
    return elapsed, score, int(model.em_iterations[0])


def run_sklearn(train, test, k, covariance, seed, args, init="kmeans"):
    model = SkGaussianMixture(
        k,
        covariance_type=covariance,
        tol=args.tol,
        reg_covar=args.reg_covar,
        max_iter=args.max_iter,
        random_state=seed,
        init_params=init,
    )
    start = time.perf_counter()
    model.fit(train)
    elapsed = time.perf_counter() - start
    return elapsed, float(model.score(test)), int(model.n_iter_)


def fastest(run, repeats: int):
    """Run ``run()`` ``repeats`` times; keep the fastest time (the least disturbed by other
    processes) with its score and iterations (identical across repeats: fits are seeded)."""
    return min((run() for _ in range(repeats)), key=lambda result: result[0])


def bench_case(name, n, k, covariance, args) -> tuple[list[str], dict]:
    train, test, description = case_data(name, n)
    train_np, test_np = train.double().numpy(), test.double().numpy()
    runs: dict[str, list[tuple[float, float, int]]] = {
        "genlab (k-means)": [],
        "scikit-learn (k-means)": [],
        "scikit-learn (k-means++)": [],
    }
    repeats = 1 if name == "moons" else args.repeats  # seconds-long fits need no repeats
    for seed in range(args.seeds):
        runs["genlab (k-means)"].append(
            fastest(lambda s=seed: run_genlab(train, test, k, covariance, s, args), repeats)
        )
        runs["scikit-learn (k-means)"].append(
            fastest(lambda s=seed: run_sklearn(train_np, test_np, k, covariance, s, args), repeats)
        )
        runs["scikit-learn (k-means++)"].append(
            fastest(
                lambda s=seed: run_sklearn(
                    train_np, test_np, k, covariance, s, args, init="k-means++"
                ),
                repeats,
            )
        )
    summary = {}
    for who, values in runs.items():
        times, scores, iters = zip(*values, strict=True)
        summary[who] = {
            "time": statistics.median(times),
            "score": statistics.fmean(scores),
            "spread": statistics.pstdev(scores),
            "iters": statistics.fmean(iters),
        }
    ours, ref = summary["genlab (k-means)"], summary["scikit-learn (k-means)"]
    lines = [
        f"### {name}: {k} components, {covariance} covariance",
        "",
        f"Data: {description}. {args.seeds} seeds"
        + (f", fastest of {repeats} runs per seed." if repeats > 1 else "."),
        "",
        "| library (init) | median fit time (s) | test avg log-lik (nats) | "
        + ("bits/pixel bound | " if name == "digits" else "")
        + "EM iterations | time vs genlab |",
        "|---|---|---|" + ("---|" if name == "digits" else "") + "---|---|",
    ]
    for who, s in summary.items():
        bpd = -(s["score"] - 64 * math.log(17)) / (64 * math.log(2))
        lines.append(
            f"| {who} | {s['time']:.3f} | {s['score']:.4f} ± {s['spread']:.4f} | "
            + (f"{bpd:.4f} | " if name == "digits" else "")
            + f"{s['iters']:.1f} | {s['time'] / ours['time']:.2f}x |"
        )
    verdict = (
        f"Time ratio scikit-learn (default) / genlab: **{ref['time'] / ours['time']:.2f}x** "
        f"(target >= 2); log-likelihood difference genlab - scikit-learn: "
        f"**{ours['score'] - ref['score']:+.4f}** nats (target >= 0 within the seed spread)."
    )
    lines += ["", verdict, ""]
    print("\n".join(lines), flush=True)
    return lines, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="runs per seed on digits")
    parser.add_argument("--moons-n", type=int, default=100_000)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--reg-covar", type=float, default=1e-6)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--covariance", nargs="+", default=["full", "diag"])
    parser.add_argument("--cases", nargs="+", default=["moons", "digits"])
    parser.add_argument("--out", default=None, help="results markdown file to update")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.simplefilter("ignore", GenlabWarning)

    command = (
        f"OMP_NUM_THREADS={args.threads} .venv/bin/python bench/bench_gmm.py --seeds {args.seeds} "
        f"--repeats {args.repeats} "
        f"--moons-n {args.moons_n} --tol {args.tol:g} --reg-covar {args.reg_covar:g} "
        f"--max-iter {args.max_iter} --threads {args.threads} --covariance "
        f"{' '.join(args.covariance)} --cases {' '.join(args.cases)}"
        + (f" --out {args.out}" if args.out else "")
    )
    lines = [
        "## Gaussian mixture: EM vs scikit-learn GaussianMixture",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()}, scikit-learn BLAS limited to {args.threads} thread(s). "
        f"tol={args.tol:g}, reg_covar={args.reg_covar:g}, max_iter={args.max_iter}.",
        "",
    ]
    sizes = {"moons": (args.moons_n, 16), "digits": (None, 10)}
    with threadpool_limits(limits=args.threads):
        for name in args.cases:
            n, k = sizes[name]
            for covariance in args.covariance:
                case_lines, _ = bench_case(name, n, k, covariance, args)
                lines += case_lines
    if args.out:
        update_results(args.out, "bench_gmm", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
