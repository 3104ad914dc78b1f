"""Digits the conditional models draw from hand-made sketches and prompts.

Two pictures, from the runs ``bench/bench_conditional.py`` trained (``--runs``, the same
folder as the benchmark's; a missing run is trained here with the benchmark's settings):

* ``conditional_drawings.png``: the drawings of ``docs/figures/drawings/`` (made by
  ``make_drawings.py``; none of them is training data), the 8 x 8 sketch
  :func:`~genlab.data.drawings.load_drawing` reads from each, and per model the digits it
  draws from that sketch with the prompt "a <digit>" (two samples each);
* ``conditional_prompts.png``: one sketch (the drawn 7) under several prompts, per model
  (conditional diffusion, ``ddpm``, is drawn too where its run is there);
  "leaning left" is a held-out combination for a 7 (never seen in training).

Run from the repository root (same runs, same bytes)::

    python docs/figures/make_conditional.py [--runs bench/out/conditional-runs]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from genlab.data.conditions import paired_digits  # noqa: E402
from genlab.data.drawings import load_drawing  # noqa: E402
from genlab.train.checkpoint import atomic_write_bytes  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_conditional import CONDITIONS, FULL, RUNS, SAMPLING, SEED, train  # noqa: E402

MODELS = ("pix2pix", "cond_pixelcnn", "cond_realnvp", "ddpm")
SAMPLES = 2
PROMPTS = ("a 7", "a thin 7", "a thick 7", "a small 7", "a 7 leaning right",
           "a 7 leaning left")


def models(runs: Path) -> dict[str, torch.nn.Module]:
    """The benchmark's trained models (trained now where a run is missing; diffusion only
    where the benchmark trained it)."""
    data = val = None
    out = {}
    for name in MODELS:
        if name == "ddpm" and not (runs / name / "model.safetensors").exists():
            continue
        if data is None and not (runs / name / "model.safetensors").exists():
            data = paired_digits("train", CONDITIONS, seed=SEED).to_dataset(CONDITIONS)
            val = paired_digits("val", CONDITIONS, seed=SEED,
                                held_out="drop").to_dataset(CONDITIONS)
        out[name] = train(name, FULL[name], data, val, runs)[0]
    return out


def generate(name: str, model: torch.nn.Module, sketches: torch.Tensor, prompts: list[str]
             ) -> torch.Tensor:
    """``SAMPLES`` digits per (sketch, prompt) row: ``(rows, SAMPLES, 8, 8)``."""
    rows = torch.arange(len(prompts)).repeat_interleave(SAMPLES)
    y = {"sketch": sketches[rows], "prompt": [prompts[i] for i in rows.tolist()]}
    x = model.sample(len(rows), y, generator=torch.Generator().manual_seed(SEED),
                     **SAMPLING.get(name, {}))
    return x.reshape(len(prompts), SAMPLES, 8, 8)


def save(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    print(f"wrote {path}")


def show(ax: plt.Axes, image: torch.Tensor, title: str = "", vmax: float = 16) -> None:
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def drawings_figure(trained: dict[str, torch.nn.Module], out: Path) -> None:
    files = sorted((HERE / "drawings").glob("drawn_*.png"))
    digits = [f.stem.split("_")[1] for f in files]
    sketches = torch.stack([load_drawing(f) for f in files])  # (k, 1, 8, 8)
    prompts = [f"a {d}" for d in digits]
    rows = 2 + len(trained) * SAMPLES
    fig, axes = plt.subplots(rows, len(files), figsize=(1.1 * len(files), 1.1 * rows))
    for j, path in enumerate(files):
        with Image.open(path) as drawing:
            axes[0, j].imshow(drawing.convert("L"), cmap="gray")
        axes[0, j].set_xticks([])
        axes[0, j].set_yticks([])
        axes[0, j].set_title(f'"{prompts[j]}"', fontsize=7)
        show(axes[1, j], sketches[j, 0], vmax=1)
    axes[0, 0].set_ylabel("drawing", fontsize=7)
    axes[1, 0].set_ylabel("sketch", fontsize=7)
    for m, (name, model) in enumerate(trained.items()):
        samples = generate(name, model, sketches, prompts)  # (k, SAMPLES, 8, 8)
        for s in range(SAMPLES):
            row = 2 + m * SAMPLES + s
            for j in range(len(files)):
                show(axes[row, j], samples[j, s])
            axes[row, 0].set_ylabel(name if s == 0 else "", fontsize=7)
    fig.suptitle("From a hand drawing and a prompt to digits", fontsize=9)
    fig.tight_layout()
    save(fig, out / "conditional_drawings.png")


def prompts_figure(trained: dict[str, torch.nn.Module], out: Path) -> None:
    sketch = load_drawing(HERE / "drawings" / "drawn_7.png")[None]  # (1, 1, 8, 8)
    sketches = sketch.expand(len(PROMPTS), -1, -1, -1)
    fig, axes = plt.subplots(len(trained) * SAMPLES, len(PROMPTS) + 1,
                             figsize=(1.1 * (len(PROMPTS) + 1), 1.1 * len(trained) * SAMPLES))
    for m, (name, model) in enumerate(trained.items()):
        samples = generate(name, model, sketches, list(PROMPTS))
        for s in range(SAMPLES):
            row = m * SAMPLES + s
            show(axes[row, 0], sketch[0, 0], "sketch" if row == 0 else "", vmax=1)
            axes[row, 0].set_ylabel(name if s == 0 else "", fontsize=7)
            for j, prompt in enumerate(PROMPTS):
                title = f'"{prompt}"'.replace(" leaning", "\nleaning")
                title += " (held out)" if "left" in prompt else ""
                show(axes[row, j + 1], samples[j, s], title if row == 0 else "")
    fig.suptitle("One sketch under several prompts", fontsize=9)
    fig.tight_layout()
    save(fig, out / "conditional_prompts.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=str(RUNS), help="the benchmark's run folder")
    parser.add_argument("--out", default=str(HERE), help="folder for the PNGs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    trained = models(Path(args.runs))
    drawings_figure(trained, Path(args.out))
    prompts_figure(trained, Path(args.out))


if __name__ == "__main__":
    main()
