"""The ``genlab`` command line: train, sample, eval, compare, demo and family tools.

Every command fails with one line on standard error and exit code 2 on bad input; nothing on
disk is left half-written (all files go through a temporary name and a rename).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError, GenlabError

EXIT_USAGE = 2


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """Parse repeated ``key=value`` strings; values are JSON where they parse (3, 0.1, true,
    [1,2]) and strings otherwise."""
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Expected --param key=value, but found {item!r}.")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params[key.strip().replace("-", "_")] = value
    return params


def _number(kind: type, what: str, accept):
    """An argparse type: ``kind(text)`` that must satisfy ``accept``, else a clear message."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, found {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, found {value}")
        return value

    return parse


_positive_int = _number(int, "a positive integer", lambda v: v >= 1)
_positive_float = _number(float, "a positive number", lambda v: v > 0)
_nonneg_int = _number(int, "an integer >= 0", lambda v: v >= 0)


# ------------------------------------------------------------------------------ commands
def cmd_train(args: argparse.Namespace) -> int:
    from genlab import create, fit, load_data
    from genlab.train import checkpoint as ckpt

    params = parse_params(args.param)
    out = Path(args.out)
    if args.resume and (out / ckpt.CONFIG_FILE).is_file():
        saved = ckpt.read_config(out)
        if saved["model"] != args.model:
            raise ConfigError(f"{out} holds a {saved['model']!r} run, not {args.model!r}.")
        data_name = (saved.get("data") or {}).get("name", args.data)
        if args.data != data_name:
            raise ConfigError(f"{out} was trained on {data_name!r}, not {args.data!r}.")
    data = load_data(args.data, split="train", seed=args.data_seed)
    val = load_data(args.data, split="val", seed=args.data_seed)
    if args.resume and (out / ckpt.CONFIG_FILE).is_file():
        model = create(args.model, **ckpt.read_config(out)["config"])
    else:
        # the family's recipe for this kind of data (genlab.recipes), then the user's --param
        model = create(args.model, data=data, conditional=args.conditional, **params)
    # only what the user set: fit fills the rest from the same recipe
    settings: dict[str, Any] = {"seed": args.seed, "progress": not args.quiet}
    for name in ("steps", "batch_size", "lr", "clip_grad", "ema_decay", "val_every",
                 "patience", "warmup_steps", "checkpoint_every", "device", "keep"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    if settings.get("patience") == 0:
        settings["patience"] = None
    fit(model, data, val_data=val, out=out, resume=args.resume, **settings)
    print(f"trained {args.model} on {args.data}: {out}{_kept_summary(out)}")
    return 0


def _kept_summary(out: Path) -> str:
    """'; kept the best weights (val 1.80 bits/dim at step 900 of 2000)' from metrics.jsonl."""
    from genlab.train import checkpoint as ckpt

    path = out / ckpt.METRICS_FILE
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    vals = [r for r in records if "val_bpd" in r]
    if not vals:
        return ""
    best = min(vals, key=lambda r: r["val_bpd"])
    last = records[-1]["step"]
    which = "best" if (out / ckpt.LAST_WEIGHTS_FILE).is_file() else "last"
    text = (f"; kept the {which} weights (best val {best['val_bpd']:.4g} bits/dim at step "
            f"{best['step']}, trained {last} steps)")
    warning = next((r["warning"] for r in reversed(vals) if "warning" in r), None)
    return text + (f"; warning: {warning}" if warning else "")


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from genlab import load

    model = load(args.run)
    options = parse_params(args.option)
    for name in ("sampler", "steps", "temperature", "guidance"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    generator = torch.Generator(device=model.device).manual_seed(args.seed)
    x = model.sample(args.n, args.y, generator=generator, **options)
    out = Path(args.out)
    if out.suffix == ".npy":
        import io

        from genlab.train.checkpoint import atomic_write_bytes

        buffer = io.BytesIO()
        np.save(buffer, x.cpu().numpy())
        atomic_write_bytes(out, buffer.getvalue())
    elif out.suffix == ".png":
        from genlab import viz

        if x.dim() == 2 and x.shape[1] == 2:
            from genlab import load_data
            from genlab.train.checkpoint import read_config

            name = (read_config(args.run).get("data") or {}).get("name")
            data = load_data(name, split="train") if name else x
            viz.plot_density_2d(model, data, x, out)
        elif x.dim() == 4:
            viz.plot_image_grid(x, out, num_levels=model.num_levels)
        else:
            raise ConfigError(f"Cannot draw samples of shape {tuple(x.shape[1:])} as PNG; use .npy.")
    else:
        raise ConfigError(f"Expected --out ending in .png or .npy, but found {out.name!r}.")
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from genlab import load
    from genlab.report.evaluate import evaluate_run, format_table

    model = load(args.run)
    results = evaluate_run(model, Path(args.run), data=args.data, n_samples=args.n_samples, seed=args.seed)
    print(format_table(results))
    print(json.dumps(results, indent=2, sort_keys=True))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from genlab.report import run_report

    models = args.models.split(",") if args.models else None
    path = run_report(datasets=args.data.split(","), models=models, out=Path(args.out),
                      scale=args.scale, seed=args.seed)
    print(f"report: {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from genlab.report import run_report

    models = args.models.split(",") if args.models else None
    path = run_report(datasets=["moons", "digits"], models=models, out=Path(args.out),
                      scale=args.scale, seed=args.seed, quick=not args.full)
    print(f"demo report: {path}")
    return 0


def cmd_plot_flow(args: argparse.Namespace) -> int:
    from genlab.viz.flows import plot_flow_stages

    out = plot_flow_stages(Path(args.run), Path(args.out or Path(args.run) / "flow_stages.png"))
    print(f"wrote {out}")
    return 0


def cmd_plot_diffusion(args: argparse.Namespace) -> int:
    from genlab import load_data
    from genlab.models.diffusion.schedule import make_schedule
    from genlab.viz.diffusion import plot_forward_process

    data = load_data(args.data, split="train")
    schedule = make_schedule(args.schedule, args.timesteps)
    out = plot_forward_process(data, Path(args.out), schedule=schedule)
    print(f"wrote {out}")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from genlab.compress import compress_file

    report = compress_file(Path(args.run), Path(args.input), Path(args.output))
    print(report if isinstance(report, str) else f"wrote {args.output}")
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    from genlab.compress import decompress_file

    decompress_file(Path(args.run), Path(args.input), Path(args.output))
    print(f"wrote {args.output}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from genlab import available
    from genlab.data import available_datasets

    print("models:  ", ", ".join(available()))
    print("datasets:", ", ".join(available_datasets()))
    return 0


# ------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genlab", description="Fit, sample, score and compare generative models."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model on a data set and write a run folder")
    p.add_argument("model", help="registered model name (see `genlab list`)")
    p.add_argument("--data", required=True, help="data-set name or a .npy/.csv/PNG-folder path")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--steps", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=_positive_float)
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.add_argument("--data-seed", type=_nonneg_int, default=0, help="seed of generated toy data")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="model setting (repeatable)")
    p.add_argument("--conditional", action="store_true", help="model p(x | y) over the data's labels")
    p.add_argument("--clip-grad", type=_positive_float)
    p.add_argument("--ema-decay", type=float)
    p.add_argument("--val-every", type=_positive_int)
    p.add_argument("--patience", type=_nonneg_int,
                   help="stop after this many validations without improvement (0: never)")
    p.add_argument("--keep", choices=("best", "last"),
                   help="weights the run keeps: best validation NLL (default) or last")
    p.add_argument("--warmup-steps", type=_nonneg_int)
    p.add_argument("--checkpoint-every", type=_positive_int)
    p.add_argument("--device", help="cpu, cuda or auto")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run (.png or .npy)")
    p.add_argument("run")
    p.add_argument("-n", type=_positive_int, default=64)
    p.add_argument("--out", required=True, help="output file: .png picture or .npy array")
    p.add_argument("--y", type=_nonneg_int, help="class label for a conditional model")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.add_argument("--sampler", help="diffusion sampler: ddpm, ddim or dpm-solver")
    p.add_argument("--steps", type=_positive_int, help="diffusion sampling steps")
    p.add_argument("--temperature", type=_positive_float)
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="other sampling option")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="test NLL, bits/dim and sample metrics of a run")
    p.add_argument("run")
    p.add_argument("--data", help="evaluate on this data set's test split (default: the run's)")
    p.add_argument("--n-samples", type=_positive_int, default=2000)
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="train several families on data sets and write a report")
    p.add_argument("--data", default="moons", help="comma-separated data sets")
    p.add_argument("--models", help="comma-separated model names (default: every family)")
    p.add_argument("--out", default="report")
    p.add_argument("--scale", type=_positive_float, default=1.0, help="multiply training steps")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("demo", help="every family on moons and digits -> report folder")
    p.add_argument("--out", default="report")
    p.add_argument("--full", action="store_true",
                   help="train with the full recipes (what `genlab train` gives) instead of "
                        "the quick first look")
    p.add_argument("--models", help="comma-separated model names (default: every family)")
    p.add_argument("--scale", type=_positive_float, default=1.0, help="multiply training steps")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("plot-flow", help="a flow's inverse pass layer by layer, before and after training")
    p.add_argument("run")
    p.add_argument("--out")
    p.set_defaults(func=cmd_plot_flow)

    p = sub.add_parser("plot-diffusion", help="the forward diffusion of a data set, q(x_t) at several t")
    p.add_argument("--data", default="moons")
    p.add_argument("--schedule", default="linear")
    p.add_argument("--timesteps", type=_positive_int, default=1000)
    p.add_argument("--out", default="diffusion_forward.png")
    p.set_defaults(func=cmd_plot_diffusion)

    p = sub.add_parser("compress", help="losslessly compress a .npy of discrete data with a trained model")
    p.add_argument("run")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="restore a .npy from a file written by `genlab compress`")
    p.add_argument("run")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("list", help="registered models and data sets")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GenlabError as err:
        print(f"genlab: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as err:  # numpy/torch/file errors reaching the user
        print(f"genlab: error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("genlab: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
