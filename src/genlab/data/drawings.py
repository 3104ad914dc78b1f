"""A person's drawing (PNG, JPEG, ... of any size) turned into a sketch condition.

:func:`load_drawing` follows these steps, so the result has the format of
:func:`~genlab.data.conditions.sketch` (binary, one-pixel lines, the digits' size):

1. **Grey levels.** The image is read with Pillow and converted to 8-bit grey (alpha is
   composited on the border colour first, so transparent backgrounds work).
2. **Polarity.** The background is the median grey of the outermost ring of pixels. A light
   background (median >= 128) means dark ink on light paper and the grey levels are inverted;
   either way ink becomes bright: ``ink = |grey - background| / 255``.
3. **Blank check.** A drawing whose strongest ink is below 0.1 has nothing to read.
4. **Framing.** By default the whole canvas, padded with background to a square around its
   centre, stands for the 8 x 8 frame. With ``crop=True`` the ink's bounding box (ink >= 0.5
   of its maximum) is cut out and padded to a square with a margin of 1/8 of its side on each
   side, the way the digits fill their frame.
5. **Centre lines.** Pixels with at least half the strongest ink are stroke; Zhang-Suen
   thinning (:func:`~genlab.data.conditions.thin`) reduces the strokes to their one-pixel
   centre lines, at the drawing's own resolution (canvases above 32 pixels per output cell
   are first box-averaged down to 32), so the pen's width does not matter.
6. **Cells.** A cell of the ``size`` grid is stroke when the centre lines run through it for
   at least 1/4 of its side; a last thinning makes the lines one cell wide, as in the digits'
   own sketches.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data.conditions import thin
from genlab.errors import DataError, ShapeError

__all__ = ["drawing_ink", "load_drawing"]

#: Strongest ink below which a drawing is blank.
BLANK_INK = 0.1
#: Pixels with at least this fraction of the strongest ink are stroke.
STROKE_INK = 0.5
#: A cell is stroke when the strokes' centre line runs through it for at least this fraction
#: of its side.
CELL_LENGTH = 0.25
#: Larger canvases are box-averaged to this many pixels per output cell before thinning.
WORK_CELL = 32


def _read_grey(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"Expected a drawing file, but found no file at {str(path)!r}.")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)  # (h, w, 4)
                grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
                alpha = rgba[..., 3] / 255.0
                ring = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
                ring_alpha = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
                # transparent pixels take the visible border's colour (white if none is)
                paper = np.median(ring[ring_alpha > 0.5]) if (ring_alpha > 0.5).any() else 255.0
                return alpha * grey + (1 - alpha) * paper
            return np.asarray(image.convert("L"), dtype=np.float64)  # (h, w)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"Expected an image file (PNG, JPEG, ...), but found {str(path)!r} "
                        f"unreadable: {message}") from None


def drawing_ink(image: np.ndarray | Tensor | str | os.PathLike) -> np.ndarray:
    """Ink of a drawing in [0, 1], bright on dark whatever the drawing's polarity.

    Arguments:
        image: A file path, or grey levels 0..255 of shape ``(h, w)``.

    Returns:
        float64 ``(h, w)``: ``|grey - background| / 255`` (steps 1-2 of the module's recipe).

    Raises:
        DataError: unreadable file, NaN values; ShapeError: not 2-D or smaller than 2 x 2.
    """
    if isinstance(image, (str, os.PathLike)):
        grey = _read_grey(Path(image))
    else:
        grey = np.asarray(image.detach().cpu() if isinstance(image, Tensor) else image,
                          dtype=np.float64)
        if grey.ndim != 2 or min(grey.shape) < 2:
            raise ShapeError(f"Expected a grey image of shape (h, w) with h, w >= 2, but found "
                             f"{grey.shape}.")
        if not np.isfinite(grey).all():
            raise DataError("Expected finite grey levels, but found NaN or Inf.")
    ring = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    background = np.median(ring)
    return np.clip(np.abs(grey - background) / 255.0, 0.0, 1.0)


def _square(ink: np.ndarray, crop: bool) -> np.ndarray:
    if crop:
        rows, cols = np.nonzero(ink >= 0.5 * ink.max())
        ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = ink.shape
    side = max(h, w)
    margin = side // 8 if crop else 0
    side += 2 * margin
    out = np.zeros((side, side))
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = ink
    return out


def _box_resize(ink: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Mean of ``ink`` over each of ``size`` equal cells (exact area weights)."""
    out = np.empty(size)
    h, w = ink.shape
    # integrate over the pixel grid: cumulative sums on edges at fractional positions
    cum = np.zeros((h + 1, w + 1))
    cum[1:, 1:] = ink.cumsum(0).cumsum(1)

    def integral(r: np.ndarray, c: np.ndarray) -> np.ndarray:  # bilinear in the cumsum
        r0 = np.clip(np.floor(r).astype(int), 0, h - 1)
        c0 = np.clip(np.floor(c).astype(int), 0, w - 1)
        fr, fc = r - r0, c - c0
        top = cum[r0][:, c0] * (1 - fc) + cum[r0][:, c0 + 1] * fc
        bottom = cum[r0 + 1][:, c0] * (1 - fc) + cum[r0 + 1][:, c0 + 1] * fc
        return top * (1 - fr)[:, None] + bottom * fr[:, None]

    edges_r = np.linspace(0, h, size[0] + 1)
    edges_c = np.linspace(0, w, size[1] + 1)
    table = integral(edges_r, edges_c)  # (size0 + 1, size1 + 1)
    out = table[1:, 1:] - table[:-1, 1:] - table[1:, :-1] + table[:-1, :-1]
    return out / ((h / size[0]) * (w / size[1]))


def load_drawing(path: str | os.PathLike | np.ndarray | Tensor, size: tuple[int, int] = (8, 8),
                 *, crop: bool = False) -> Tensor:
    """A drawing as a sketch condition (the module's recipe).

    Arguments:
        path: An image file of any size (PNG, JPEG, ... as Pillow reads), or grey levels
            0..255 of shape ``(h, w)``; dark-on-light and light-on-dark are both accepted.
        size: ``(h, w)`` of the sketch (the digits': 8 x 8).
        crop: Frame the ink's bounding box instead of the whole canvas.

    Returns:
        Float32 ``(1, h, w)`` with values {0, 1}.

    Raises:
        DataError: missing, unreadable or non-image file; a blank drawing.
        ShapeError: an array that is not ``(h, w)``.

    Example:
        >>> canvas = np.full((64, 64), 255.0)
        >>> canvas[8:56, 30:34] = 0.0  # a dark vertical bar on white paper: a "1"
        >>> sketch = load_drawing(canvas)  # rows 8..55 of 64: cells 1..6 of 8
        >>> sketch.shape, sketch.sum().item(), sketch[0, :, 3].tolist()
        (torch.Size([1, 8, 8]), 6.0, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    """
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ShapeError(f"Expected size (h, w) with h, w >= 1, but found {size}.")
    ink = drawing_ink(path)
    if ink.max() < BLANK_INK:
        raise DataError(f"Expected a drawing with visible strokes, but found a blank image "
                        f"(strongest ink {ink.max():.3f} < {BLANK_INK}).")
    canvas = _square(ink, crop)
    side = max(size) * WORK_CELL
    if canvas.shape[0] > side:  # thinning cost grows with the pen width in pixels
        canvas = _box_resize(canvas, (side, side))
    strokes = torch.from_numpy(canvas >= STROKE_INK * canvas.max()).long()[None]
    centre = thin(strokes)[0].double().numpy()  # (s, s) one-pixel centre lines
    cell_side = canvas.shape[0] / max(size)
    length = _box_resize(centre, size) * cell_side  # centre-line pixels per cell / cell side
    return thin(torch.from_numpy(length >= CELL_LENGTH).long()[None]).float()  # (1, h, w)
