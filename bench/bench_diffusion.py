"""Diffusion: sample quality against network evaluations, genlab's samplers against diffusers'
schedulers on the same network, and digits (bits/dim bound, Frechet distance, guidance).

1. Toy 2-D data (moons, checkerboard): one model per data set (T = 1000, linear schedule),
   sampled with DDPM (1000 steps), DDIM (50, 20) and DPM-Solver++(2M) (20, 15, 10 steps);
   MMD^2 and sliced Wasserstein-2 to the held-out test split, averaged over seeds, beside the
   floor (a training subset of the same size against the test split).
2. The moons network driven by diffusers' DDPMScheduler, DDIMScheduler and
   DPMSolverMultistepScheduler (same x_T, same generator): largest output difference, and the
   per-step time of each loop with a network that costs nothing (sampler overhead only) and
   with the real network.
3. Digits: a class-conditional UNet trained with label dropout. Bits/dim of the variational
   bound on the test split (with the true label, and with the "null" label, i.e. the model's
   unconditional p(x)), feature Frechet distance to the test split and class accuracy of the
   samples for several guidance scales, and an inpainting picture. The features come from
   genlab's digits classifier, trained on the training split only; the real-data reference
   row is the validation split (never seen by the classifier nor by the diffusion model), as
   many images as samples are drawn, scored against the same test split.

    OMP_NUM_THREADS=1 python bench/bench_diffusion.py [--quick] [--out DIR]

One thread: the networks are small, and on a busy machine a second OpenMP thread made
training 10x slower (threads wait for each other).

The defaults are far smaller than the sizes this benchmark once used (3000 training steps and
3000 points per estimate, 1500 digits steps, an eps-prediction moons run, all 297 test digits
for the bound) so that a full run fits the shared development machine (a load of 18 on two
cores); ``--quick`` shrinks every size further (same tables).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import genlab  # noqa: F401  (registers every family)
from _report import Report, common_arguments
from genlab import create, fit, load_data
from genlab.metrics import (
    class_accuracy,
    digits_classifier,
    frechet_distance,
    mmd,
    sliced_wasserstein,
)
from genlab.viz.diffusion import plot_forward_process, plot_reverse_trajectory
from genlab.viz.grid import plot_image_grid

SAMPLERS = [("DDPM", "ddpm", 1000), ("DDIM", "ddim", 50), ("DDIM", "ddim", 20),
            ("DPM-Solver++(2M)", "dpm-solver", 20), ("DPM-Solver++(2M)", "dpm-solver", 15),
            ("DPM-Solver++(2M)", "dpm-solver", 10)]
SAME_OUTPUT = 1e-3  # largest |ours - diffusers| (data units) that counts as the same samples


def mean_se(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], float("nan")
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def train_toy(name: str, prediction: str, args) -> tuple[nn.Module, float]:
    data = load_data(name)
    model = create("ddpm", **data.model_kwargs(), num_timesteps=1000, schedule="linear",
                   prediction=prediction, width=args.width, depth=3, seed=0)
    start = time.perf_counter()
    fit(model, data, steps=args.train_steps, batch_size=256, lr=2e-3, seed=0, progress=False)
    return model.eval(), time.perf_counter() - start


def toy_quality(name: str, model, secs: float, args, report: Report
                ) -> dict[str, tuple[float, float]]:
    """MMD and sliced W2 to the test split for every sampler of SAMPLERS, as one table."""
    train, test = load_data(name), load_data(name, split="test")
    ref = test.x[: args.n_eval]
    floor = [mmd(train.x[i * args.n_eval:(i + 1) * args.n_eval], ref) for i in range(args.seeds)]
    rows, results = [], {}
    for label, sampler, steps in SAMPLERS:
        mmds, sws, times = [], [], []
        for seed in range(args.seeds):
            g = torch.Generator().manual_seed(100 + seed)
            start = time.perf_counter()
            x = model.sample(args.n_eval, generator=g, sampler=sampler, steps=steps)
            times.append(time.perf_counter() - start)
            mmds.append(mmd(x, ref))
            sws.append(sliced_wasserstein(x, ref, generator=torch.Generator().manual_seed(seed)))
        (m, m_se), (w, w_se) = mean_se(mmds), mean_se(sws)
        results[f"{sampler}-{steps}"] = (m, m_se)
        rows.append([label, steps, m, m_se, w, w_se, statistics.fmean(times)])
        print(f"  {name} {label} {steps}: mmd {m:.5f} sw {w:.4f}", flush=True)
    f, f_se = mean_se(floor)
    rows.append([f"floor: training points vs test ({args.n_eval} each)", None, f, f_se, None,
                 None, None])
    report.table(
        f"{name}, {model.prediction}-prediction: sample quality against network evaluations",
        ["sampler", "NFE", "MMD^2", "± se", "sliced W2", "± se", "seconds"], rows,
        kind="result",
        note=f"MLP denoiser (width {args.width}, 3 residual blocks), T = 1000 linear schedule, "
             f"{args.train_steps} steps of batch 256, lr 2e-3 with cosine decay ({secs:.0f} s). "
             f"MMD^2 (RBF mixture, unbiased, can be < 0) and sliced W2 of {args.n_eval} samples "
             f"against {args.n_eval} test points, mean ± se over {args.seeds} sample seeds.",
        formats=[None, None, ".5f", ".5f", ".4f", ".4f", ".2f"])
    return results


def solver_target(name: str, fast: tuple[float, float], ddpm: tuple[float, float],
                  report: Report) -> None:
    """The target row: DPM-Solver++ at 15 NFE within 10% of DDPM-1000's MMD^2."""
    diff, se = fast[0] - ddpm[0], math.hypot(fast[1], ddpm[1])
    target = f"{name}: DPM-Solver++(2M) at 15 NFE within 10% of DDPM-1000's MMD^2"
    if ddpm[0] > 3 * ddpm[1]:
        ratio = fast[0] / ddpm[0]
        report.target(target, f"ratio {ratio:.2f} (difference {diff:+.5f} ± {se:.5f})",
                      ratio <= 1.10)
    else:  # DDPM's MMD^2 is within 3 se of 0: a ratio has no meaning at this sample size
        report.target(target, f"difference {diff:+.5f} ± {se:.5f} ({abs(diff) / se:.1f} se)",
                      None, details="DDPM-1000's MMD^2 is within noise of 0, so a 10% ratio "
                                    "cannot be resolved at this sample size")


class FreeNet(nn.Module):
    """A 'network' that costs nothing: returns a fixed tensor, so loops time their overhead."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, x, t, y=None):
        return self.out


def diffusers_loop(scheduler, net, n, steps, data_scale, seed):
    """Sample like model.sample does, with a diffusers scheduler driving the same network."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 2), generator=g)
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        out = net(x, torch.full((n,), int(t)), None)
        x = scheduler.step(out, t, x, generator=g).prev_sample
    return x * data_scale


def compare_diffusers(model, args, report: Report) -> None:
    import diffusers

    pred = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}[model.prediction]
    common = {"num_train_timesteps": 1000, "beta_schedule": "linear", "prediction_type": pred,
              "timestep_spacing": "trailing"}
    cases = [
        ("DDPM", "ddpm", 1000, diffusers.DDPMScheduler(**common, clip_sample=False)),
        ("DDIM", "ddim", 50, diffusers.DDIMScheduler(**common, clip_sample=False)),
        ("DPM-Solver++(2M)", "dpm-solver", 20, diffusers.DPMSolverMultistepScheduler(
            **common, algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero")),
        ("DPM-Solver++(2M)", "dpm-solver", 15, diffusers.DPMSolverMultistepScheduler(
            **common, algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero")),
    ]
    n, scale, net = args.n_compare, model.data_scale.item(), model.net
    rows = []
    for label, sampler, steps, scheduler in cases:
        with torch.no_grad():
            ours = model.sample(n, generator=torch.Generator().manual_seed(7), sampler=sampler,
                                steps=steps)
            theirs = diffusers_loop(scheduler, net, n, steps, scale, seed=7)
        diff = (ours - theirs).abs().max().item()
        timings = {}
        for kind in ("free", "real"):
            model.net = FreeNet(torch.zeros(n, 2)) if kind == "free" else net
            best = {"ours": math.inf, "theirs": math.inf}
            # interleaved, best of; short loops get more repeats (timer and load noise)
            repeats = max(3, 300 // steps) if kind == "free" else 2
            for _ in range(repeats):
                for who in ("ours", "theirs"):
                    start = time.perf_counter()
                    with torch.no_grad():
                        if who == "ours":
                            model.sample(n, generator=torch.Generator().manual_seed(7),
                                         sampler=sampler, steps=steps)
                        else:
                            diffusers_loop(scheduler, model.net, n, steps, scale, seed=7)
                    best[who] = min(best[who], time.perf_counter() - start)
            for who, secs in best.items():
                timings[kind, who] = secs / steps * 1e6  # microseconds per step
        model.net = net
        rows.append([label, steps, diff, timings["free", "ours"], timings["free", "theirs"],
                     timings["free", "ours"] / timings["free", "theirs"],
                     timings["real", "ours"], timings["real", "theirs"]])
        print(f"  diffusers {label} {steps}: max diff {diff:.1e}, {timings}", flush=True)
    report.table(
        "the same network under genlab's samplers and diffusers' schedulers",
        ["sampler", "steps", "max abs diff", "genlab overhead µs/step",
         "diffusers overhead µs/step", "overhead ratio", "genlab real µs/step",
         "diffusers real µs/step"], rows, kind="like-for-like",
        note=f"Same trained moons network, {n} samples, same x_T and generator, float32, "
             f"diffusers {diffusers.__version__} (timestep_spacing='trailing', no clipping). "
             "Overhead = time per step with a network that returns a fixed tensor (best of "
             "max(3, 300 / steps) runs); "
             "real = with the trained MLP (best of 2); the two libraries interleaved.",
        formats=[None, None, ".1e", ".0f", ".0f", ".2f", ".0f", ".0f"])
    worst_ratio, worst_diff = max(r[5] for r in rows), max(r[2] for r in rows)
    report.target("sampler overhead per step <= diffusers' schedulers, same outputs "
                  f"(max abs diff <= {SAME_OUTPUT:g})",
                  f"overhead ratio <= {worst_ratio:.2f}, max abs diff {worst_diff:.1e} "
                  f"({len(rows)} samplers)", worst_ratio <= 1.0 and worst_diff <= SAME_OUTPUT)


def digits_bench(args, report: Report, out_dir: Path) -> None:
    data, val, test = (load_data("digits", split=s) for s in ("train", "val", "test"))
    if args.n_digits > len(val):
        raise SystemExit(f"Expected --n-digits <= {len(val)} (the held-out reference is the "
                         f"validation split), but found {args.n_digits}.")
    model = create("ddpm", **data.model_kwargs(conditional=True),
                   num_timesteps=args.digits_timesteps, schedule="cosine", prediction="v",
                   width=args.digits_width, condition_dropout=0.1, seed=0)
    start = time.perf_counter()
    fit(model, data, steps=args.digits_steps, batch_size=128, lr=3e-3, seed=0, progress=False)
    train_s = time.perf_counter() - start
    model.eval()
    x, y = test.x[: args.n_bound], test.y[: args.n_bound]
    start = time.perf_counter()
    with torch.no_grad():
        cond = model.bits_per_dim(x, y)
        # The "null" label is the unconditional model learnt through label dropout.
        null = torch.full_like(y, model.num_classes)
        uncond = -model._log_prob_bound(x, null) / (model.event_dim * math.log(2))
    bound_s = time.perf_counter() - start
    (bc, bc_se), (bu, bu_se) = mean_se(cond.tolist()), mean_se(uncond.tolist())
    print(f"  digits bound: cond {bc:.3f} uncond {bu:.3f} ({bound_s:.0f}s)", flush=True)
    where = "digits test" if len(x) == len(test) else f"first {len(x)} digits test"
    report.bits("ddpm (class-conditional UNet, null label: p(x))", bu, kind="bound",
                error=bu_se, data=where)
    report.bits("ddpm (class-conditional UNet, given the label: p(x | y))", bc, kind="bound",
                error=bc_se, data=where, note="conditional: not comparable with p(x)")
    report.table("digits: bits/dim of the variational bound", ["label", "bits/dim", "± se"],
                 [["given (p(x | y))", bc, bc_se], ["null (p(x))", bu, bu_se]], kind="result",
                 note=f"Discretized decoder: an upper bound on the 17-level NLL, on {len(x)} "
                      f"test digits ({bound_s:.0f} s). Class-conditional UNet "
                      f"({sum(p.numel() for p in model.parameters())} parameters, width "
                      f"{args.digits_width}), T = {args.digits_timesteps} cosine, "
                      f"v-prediction, label dropout 0.1, {args.digits_steps} steps of batch "
                      f"128, lr 3e-3 ({train_s:.0f} s).", formats=[None, ".3f", ".3f"])

    classifier = digits_classifier()
    n = args.n_digits
    labels = torch.arange(n) % 10
    real, real_y = val.x[:n], val.y[:n]
    rows = [["held-out data: validation split", None, frechet_distance(real, test.x),
             class_accuracy(real, real_y), None]]
    for sampler, steps in [("dpm-solver", 20), ("ddpm", model.schedule.num_timesteps)]:
        for w in args.guidance:
            start = time.perf_counter()
            s = model.sample(n, labels, generator=torch.Generator().manual_seed(0),
                             sampler=sampler, steps=steps, guidance=w)
            secs = time.perf_counter() - start
            rows.append([f"{sampler} {steps}", w, frechet_distance(s, test.x),
                         class_accuracy(s, labels), secs])
            print(f"  {rows[-1]}", flush=True)
            if sampler == "dpm-solver" and w in (0.0, 2.0):
                plot_image_grid(s[:50], out_dir / f"diffusion_digits_w{w:g}.png", nrow=10,
                                num_levels=17)
                report.figure(f"diffusion_digits_w{w:g}.png",
                              f"DPM-Solver++ 20 steps, guidance w = {w:g}")
    report.table(
        f"digits: samples against the test split ({n} samples, labels cycling 0..9)",
        ["sampler", "guidance w", "Frechet distance to test", "class accuracy", "seconds"],
        rows, kind="result",
        note=f"Features and labels from genlab's digits classifier, trained on the training "
             f"split only; its accuracy on the {len(test)} test digits is "
             f"{classifier.accuracy(test.x, test.y):.3f}. The reference row is {n} validation "
             f"digits (seen by neither the classifier nor the diffusion model), the same number "
             f"as the samples, against the same test split. Guidance: eps_u + w (eps_c - eps_u) "
             f"(w = 0 unconditional, w = 1 plain conditional).",
        formats=[None, "g", ".2f", ".3f", ".1f"])
    mask = torch.ones(1, 8, 8)
    mask[..., 4:, :] = 0  # bottom half unknown
    filled = model.inpaint(test.x[:10], mask, test.y[:10], resample=10,
                           generator=torch.Generator().manual_seed(0))
    shown = torch.cat([test.x[:10], test.x[:10] * mask, filled])
    plot_image_grid(shown, out_dir / "diffusion_inpaint.png", nrow=10, num_levels=17)
    report.figure("diffusion_inpaint.png", "rows: originals, bottom half removed, RePaint "
                  "with every step x 10 resamplings, given the label")
    plot_reverse_trajectory(model, out_dir / "diffusion_digits_reverse.png", n=10,
                            sampler="ddpm", guidance=2.0)
    report.figure("diffusion_digits_reverse.png", "reverse process, DDPM, guidance w = 2")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(p)
    p.add_argument("--runs", default="moons:v,checkerboard:v",
                   help="data set:prediction pairs to train and score")
    p.add_argument("--train-steps", type=int, default=600)
    p.add_argument("--width", type=int, default=128, help="MLP width for the toy data")
    p.add_argument("--n-eval", type=int, default=800, help="samples per MMD/SW estimate")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--n-compare", type=int, default=400, help="samples in the diffusers runs")
    p.add_argument("--digits-steps", type=int, default=300)
    p.add_argument("--digits-timesteps", type=int, default=100, help="T for digits")
    p.add_argument("--digits-width", type=int, default=16, help="UNet width for digits")
    p.add_argument("--n-digits", type=int, default=100,
                   help="samples per setting (at most the 150 validation digits)")
    p.add_argument("--n-bound", type=int, default=100)
    p.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0])
    args = p.parse_args()
    if args.quick:
        args.train_steps, args.n_eval, args.seeds, args.n_compare = 150, 300, 2, 200
        args.digits_steps, args.n_digits, args.n_bound = 40, 30, 20
    import diffusers

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report("diffusion", "Diffusion: samplers, diffusers' schedulers, digits",
                    quick=args.quick, description=__doc__.split("\n\n")[1],
                    versions={"diffusers": diffusers.__version__})
    trained = {}
    for run in args.runs.split(","):
        name, prediction = run.split(":")
        model, secs = train_toy(name, prediction, args)
        print(f"{name} {prediction}: trained in {secs:.0f}s", flush=True)
        res = toy_quality(name, model, secs, args, report)
        solver_target(f"{name}, {prediction}-prediction", res["dpm-solver-15"],
                      res["ddpm-1000"], report)
        trained.setdefault(name, model)
    if "moons" in trained:
        plot_forward_process(load_data("moons"), out_dir / "diffusion_forward_moons.png")
        report.figure("diffusion_forward_moons.png", "forward process on moons")
        plot_reverse_trajectory(trained["moons"], out_dir / "diffusion_reverse_moons.png",
                                sampler="dpm-solver", steps=15)
        report.figure("diffusion_reverse_moons.png", "reverse process, DPM-Solver++ 15 steps")
        compare_diffusers(trained["moons"], args, report)
    plot_forward_process(load_data("digits"), out_dir / "diffusion_forward_digits.png")
    report.figure("diffusion_forward_digits.png", "forward process on digits")
    digits_bench(args, report, out_dir)
    report.write(out_dir)


if __name__ == "__main__":
    main()
