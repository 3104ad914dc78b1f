"""The ``genlab`` command line: train, sample, eval, compare, demo, probe and family tools.

Every command fails with one line on standard error and exit code 2 on bad input; nothing on
disk is left half-written (all files go through a temporary name and a rename).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genlab.cli_conditions import add_sample_flags, add_train_flags
from genlab.cli_errors import EXIT_INTERRUPTED, EXIT_USAGE, error_line, one_line
from genlab.cli_flags import UNSET, add_setting_flags
from genlab.errors import ConfigError, GenlabError
from genlab.settings import SettingSpec

DEBUG_FLAG = "--debug"


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
    from genlab.runs import resume_model
    from genlab.train import TrainConfig

    params = parse_params(args.param)
    out = Path(args.out)
    model = resume_model(out, args.model, args.data) if args.resume else None
    if args.condition is not None:  # paired digits with the asked conditions
        from genlab.cli_conditions import training_data

        if args.conditional:
            raise ConfigError("Expected --condition label,... or --conditional, but found both.")
        data, val = (training_data(args.data, args.condition, split, args.data_seed)
                     for split in ("train", "val"))
    else:
        data = load_data(args.data, split="train", seed=args.data_seed)
        val = load_data(args.data, split="val", seed=args.data_seed)
    if model is None:
        # Seeded construction: the same command gives the same run whatever ran before in
        # this process. The family's recipe for this kind of data, then the user's --param.
        model = create(args.model, data=data, conditional=args.conditional,
                       seed=getattr(args, "seed", TrainConfig.seed), **params)
    # only what the user set: fit fills the rest from the same recipe, then TrainConfig
    settings: dict[str, Any] = {name: getattr(args, name) for name in TrainConfig.settings()
                                if getattr(args, name, UNSET) is not UNSET}
    settings["progress"] = not args.quiet
    fit(model, data, val_data=val, out=out, resume=args.resume, **settings)
    print(f"trained {args.model} on {args.data}: {out}{_kept_summary(out, model)}")
    return 0


def _kept_summary(out: Path, model: Any) -> str:
    """'; kept the best weights (best val 1.78 bits/dim at step 480, ...)' from metrics.jsonl."""
    from genlab.train import checkpoint as ckpt

    path = out / ckpt.METRICS_FILE
    if not (out / ckpt.TRAINER_STATE_FILE).is_file():
        return ""  # fitted in closed form: nothing was chosen
    lines = path.read_text().splitlines() if path.is_file() else []
    records = [json.loads(line) for line in lines]
    measure = model.validation_measure
    vals = [r for r in records if measure.bits_key in r]
    if not vals:
        return ""
    best = min(vals, key=lambda r: r[measure.bits_key])
    which = "best" if (out / ckpt.LAST_WEIGHTS_FILE).is_file() else "last"
    text = (f"; kept the {which} weights (best val {best[measure.bits_key]:.4g} "
            f"{measure.words} at step "
            f"{best['step']}, trained {records[-1]['step']} steps)")
    warning = next((r["warning"] for r in reversed(vals) if "warning" in r), None)
    return text + (f"; warning: {warning}" if warning else "")


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from genlab import load
    from genlab.cli_conditions import sample_conditions

    model = load(args.run)
    y = sample_conditions(model, args)
    options = parse_params(args.option)
    options.update({name: getattr(args, name) for name in model.sample_options()
                    if getattr(args, name, UNSET) is not UNSET})
    generator = torch.Generator(device=model.device).manual_seed(args.seed)
    x = model.sample(args.n, y, generator=generator, **options)
    out = Path(args.out)
    if out.suffix == ".npy":
        import io

        from genlab.train.checkpoint import atomic_write_bytes

        buffer = io.BytesIO()
        np.save(buffer, x.cpu().numpy())
        atomic_write_bytes(out, buffer.getvalue())
    elif out.suffix == ".png":
        from genlab.runs import run_data
        from genlab.viz.run import plot_samples

        data = run_data(args.run).x if model.event_shape == (2,) else None
        plot_samples(model, x.cpu(), out, data=data, generator=generator)
    else:
        raise ConfigError(f"Expected --out ending in .png or .npy, but found {out.name!r}.")
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from genlab import load
    from genlab.report.evaluate import evaluate_run, format_table

    model = load(args.run)
    results = evaluate_run(model, Path(args.run), data=args.data, n_samples=args.n_samples,
                           seed=args.seed)
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


def cmd_plot(args: argparse.Namespace) -> int:
    from genlab import load
    from genlab.viz.run import plot_run, run_figures

    run = Path(args.run)
    model = load(run)
    kinds = run_figures(model, run)
    if args.list:
        for name, text in kinds.items():
            print(f"{name:12s} {text}")
        return 0
    out_dir = Path(args.out) if args.out else run / "figures"
    written: list[Path] = []
    for kind in [args.kind] if args.kind else list(kinds):
        written += plot_run(model, run, out_dir / f"{kind}.png", kind, seed=args.seed)
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from genlab.figures import FIGURES, make_figures

    if args.list:
        for name, spec in FIGURES.items():
            print(f"{name:20s} {spec.slide}")
        return 0
    for path in make_figures(args.out, only=args.only, quick=args.quick):
        print(f"wrote {path}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from genlab.probe import parse_labels, probe_run

    result, written = probe_run(args.run, labels=parse_labels(args.labels), draws=args.draws,
                                seed=args.seed, out=args.out, **parse_params(args.option))
    print(result.markdown())
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from genlab.compress import compress_file

    report = compress_file(Path(args.run), Path(args.input), Path(args.output))
    print(report)
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    from genlab.compress import decompress_file

    decompress_file(Path(args.run), Path(args.input), Path(args.output))
    print(f"wrote {args.output}")
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    from genlab.lab import serve

    serve(args.runs, host=args.host, port=args.port)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from genlab import available
    from genlab.data import available_datasets
    from genlab.registry import get
    from genlab.settings import settings_table

    if args.model is None:
        print("models:  ", ", ".join(n for n in available() if not n.startswith("_")))
        print("datasets:", ", ".join(available_datasets()))
        print("`genlab list MODEL` shows a model's settings, sampling options and recipes.")
        return 0
    cls = get(args.model)
    print(f"{args.model}: {(cls.__doc__ or '').strip().splitlines()[0]}\n")
    print("settings (--param KEY=VALUE):")
    print(settings_table(cls.settings(), markdown=False) + "\n")
    options = cls.sample_options()
    if options:
        print("sampling options (genlab sample RUN --NAME VALUE):")
        print(settings_table(options, markdown=False) + "\n")
    for kind, recipe in cls.recipes.items():
        print(f"recipe for {kind}: params {dict(recipe.params)}, training {dict(recipe.train)}")
    return 0


# ------------------------------------------------------------------------------ parser
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block); subcommand parsers inherit it."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see `{self.prog} "
                              "--help`)\n")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``genlab`` parser. ``argv`` lets it add what a named model or run declares:
    ``genlab train MODEL --help`` lists MODEL's settings, ``genlab sample RUN`` takes the
    run's sampling options as flags."""
    from genlab.train import TrainConfig

    parser = _Parser(
        prog="genlab", description="Fit, sample, score and compare generative models."
    )
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="show the full traceback of an error (for bug reports)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model on a data set and write a run folder",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=_model_epilog(argv))
    p.add_argument("model", help="registered model name (see `genlab list`)")
    p.add_argument("--data", required=True, help="data-set name or a .npy/.csv/PNG-folder path")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--data-seed", type=_nonneg_int, default=0, help="seed of generated toy data")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="model setting (repeatable); `genlab list MODEL` or "
                        "`genlab train MODEL --help` lists them")
    p.add_argument("--conditional", action="store_true",
                   help="model p(x | y) over the data's labels")
    add_train_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    group = p.add_argument_group(
        "training settings", "unset ones come from the model's recipe for the data, then "
        "from TrainConfig (`none` turns an optional one off, e.g. --patience none)")
    add_setting_flags(group, TrainConfig.settings(), skip=("progress",))
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run (.png or .npy)")
    p.add_argument("run")
    p.add_argument("-n", type=_positive_int, default=64)
    p.add_argument("--out", required=True, help="output file: .png picture or .npy array")
    p.add_argument("--y", type=_nonneg_int, help="class label for a conditional model")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="sampling option (the run's options are also flags, see --help)")
    add_sample_flags(p)
    options = _run_sample_options(argv)
    if options:
        add_setting_flags(p.add_argument_group("sampling options of this run"), options)
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

    p = sub.add_parser("demo", help="a first look at every family on moons and digits -> report")
    p.add_argument("--out", default="report")
    p.add_argument("--models", help="comma-separated model names (default: every family)")
    p.add_argument("--full", action="store_true",
                   help="train with the full recipes (what `genlab train` gives) instead of "
                        "the quick first look")
    p.add_argument("--scale", type=_positive_float, default=1.0, help="multiply training steps")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("plot", help="draw a run's pictures: samples, curves and its family's own")
    p.add_argument("run")
    p.add_argument("--kind", help="one picture (see --list); default: every one")
    p.add_argument("--list", action="store_true", help="list the pictures this run offers")
    p.add_argument("--out", help="folder for the PNGs (default: RUN/figures)")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("figures", help="train what the course's figures need and draw them all")
    p.add_argument("--out", default="figures", help="folder for the PNGs")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="draw this figure only (repeatable; see --list)")
    p.add_argument("--quick", action="store_true", help="tiny training budgets, a first look")
    p.add_argument("--list", action="store_true", help="list the figures and their slides")
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("probe", help="linear classifier on a run's frozen features, few labels")
    p.add_argument("run")
    p.add_argument("--labels", default="1,10,100,all", help="labels per class, e.g. 1,10,all")
    p.add_argument("--draws", type=_positive_int, default=10, help="labelled subsets per budget")
    p.add_argument("--seed", type=_nonneg_int, default=0)
    p.add_argument("--out", help="folder for probe.md/.json/.png (default: RUN/probe)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="an encoding option of the family, e.g. t=5 (diffusion)")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("compress",
                       help="losslessly compress a .npy of discrete data with a trained model")
    p.add_argument("run")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress",
                       help="restore a .npy from a file written by `genlab compress`")
    p.add_argument("run")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("lab", help="watch models learn in the browser (a local web app)")
    p.add_argument("--runs", default="runs", help="the runs folder it shows and writes")
    p.add_argument("--port", type=_positive_int, default=8765)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (the default serves this machine only)")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("list", help="registered models and data sets; a model's settings")
    p.add_argument("model", nargs="?", help="show this model's settings and recipes")
    p.set_defaults(func=cmd_list)
    return parser


def _model_epilog(argv: Sequence[str]) -> str | None:
    """The settings table of the model named in ``genlab train MODEL ...``, if any."""
    from genlab.registry import available, get
    from genlab.settings import settings_table

    if len(argv) < 2 or argv[0] != "train" or argv[1] not in available():
        return None
    cls = get(argv[1])
    recipes = "".join(f"\n  {kind}: {dict(r.params)}" for kind, r in cls.recipes.items())
    return (f"settings of {argv[1]} (--param KEY=VALUE):\n"
            + settings_table(cls.settings(), markdown=False)
            + (f"\n\nwhat --data sets before your --param, per kind of data:{recipes}"
               if recipes else ""))


def _run_sample_options(argv: Sequence[str]) -> dict[str, SettingSpec]:
    """The sampling options of the run named in ``genlab sample RUN ...``, if readable."""
    from genlab.registry import get
    from genlab.train.checkpoint import CONFIG_FILE, read_config

    if len(argv) < 2 or argv[0] != "sample" or not (Path(argv[1]) / CONFIG_FILE).is_file():
        return {}
    try:
        return get(read_config(argv[1])["model"]).sample_options()
    except (GenlabError, KeyError):
        return {}  # the command itself reports the broken run


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``genlab ARGV``; returns the exit code.

    Every error ends as one line on standard error with a hint (exit 2 for bad input, 1 for
    a bug, 130 when interrupted); ``--debug`` (anywhere before ``--``) shows the traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    head = argv[: argv.index("--")] if "--" in argv else argv
    debug = DEBUG_FLAG in head
    if debug:  # accepted anywhere, so `genlab train ... --debug` works too
        argv.remove(DEBUG_FLAG)
    warnings.formatwarning = _one_line_warning
    args = None
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        training = args is not None and args.command == "train"
        print("genlab: interrupted" + ("; resume with --resume" if training else ""),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the one place every error becomes one line
        if debug:
            traceback.print_exc()
        line, code = error_line(err)
        print(f"genlab: error: {line}", file=sys.stderr)
        return code


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"genlab: warning: {one_line(message)}\n"


if __name__ == "__main__":
    sys.exit(main())
