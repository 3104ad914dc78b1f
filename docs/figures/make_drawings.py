"""Draw hand-like digit sketches as PNG files, for the conditioning figures.

The drawings are made here, not taken from the digits data: each digit is a few pen strokes
(polylines through hand-placed points in a unit square), and every drawing gets its own
jitter -- each point moves by a small Gaussian step, the whole drawing is sheared and scaled a
little, and the pen width varies -- so they look drawn rather than typeset. Canvases have
different sizes and most are dark ink on white paper; one is chalk on a blackboard (light on
dark), so :func:`genlab.data.drawings.load_drawing` meets both polarities.

Run from the repository root (same seed, same bytes)::

    python docs/figures/make_drawings.py            # writes docs/figures/drawings/*.png
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from genlab.data.drawings import load_drawing
from genlab.train.checkpoint import atomic_write_bytes

OUT = Path(__file__).parent / "drawings"
SEED = 0


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float,
         k: int = 12) -> list[tuple[float, float]]:
    """Points on an elliptic arc; angles in degrees, 0 = right, 90 = down (image axes)."""
    t = np.radians(np.linspace(start, stop, k))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t), strict=True))


# each digit: a list of strokes, each a list of (x, y) in [0, 1], y downwards
STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "0": [_arc(0.5, 0.5, 0.26, 0.38, -90, 275, 24)],
    "1": [[(0.38, 0.25), (0.55, 0.12), (0.55, 0.88)]],
    "2": [_arc(0.5, 0.32, 0.24, 0.2, 190, 380, 12) + [(0.25, 0.86), (0.78, 0.86)]],
    "3": [_arc(0.48, 0.3, 0.22, 0.18, 200, 450, 12), _arc(0.48, 0.67, 0.25, 0.2, 270, 520, 12)],
    "4": [[(0.62, 0.12), (0.22, 0.62), (0.8, 0.62)], [(0.62, 0.35), (0.62, 0.9)]],
    "7": [[(0.22, 0.15), (0.78, 0.15), (0.42, 0.88)]],
}
# canvas (width, height), pen width in pixels, light on dark
CANVAS = {"0": ((240, 240), 14, False), "1": ((180, 260), 12, False),
          "2": ((300, 300), 18, False), "3": ((256, 256), 16, True),
          "4": ((200, 200), 11, False), "7": ((320, 280), 20, False)}


def draw(digit: str, rng: np.random.Generator) -> Image.Image:
    """One jittered drawing of ``digit``."""
    (width, height), pen, chalk = CANVAS[digit]
    side = min(width, height)
    shear = rng.normal(0.0, 0.08)  # a slight slant, as a hand gives
    scale = 1.0 + rng.normal(0.0, 0.05)
    paper, ink = (20, 235) if chalk else (250, 15)
    image = Image.new("L", (width, height), paper)
    pen_draw = ImageDraw.Draw(image)
    for stroke in STROKES[digit]:
        points = np.array(stroke) + rng.normal(0.0, 0.015, (len(stroke), 2))
        points = (points - 0.5) * scale
        points[:, 0] -= shear * points[:, 1]  # x' = x - shear * y leans the top right
        xy = [((width - side) / 2 + side * (0.5 + x), (height - side) / 2 + side * (0.5 + y))
              for x, y in points]
        width_px = max(2, int(round(pen * (1 + rng.normal(0.0, 0.1)))))
        pen_draw.line(xy, fill=ink, width=width_px, joint="curve")
    return image


def render_all() -> dict[str, bytes]:
    """PNG bytes of every drawing, by file name (one seeded stream, digits in order)."""
    rng = np.random.default_rng(SEED)
    files = {}
    for digit in STROKES:
        buffer = io.BytesIO()
        draw(digit, rng).save(buffer, format="PNG")
        files[f"drawn_{digit}.png"] = buffer.getvalue()
    return files


def main() -> None:
    for name, data in render_all().items():
        path = atomic_write_bytes(OUT / name, data)
        sketch = load_drawing(path)[0].int().tolist()
        rows = "\n".join("  " + "".join("#" if v else "." for v in row) for row in sketch)
        print(f"{path.name}: sketch as genlab reads it\n{rows}", file=sys.stdout)


if __name__ == "__main__":
    main()
