"""scikit-learn's bundled handwritten digits: 1,797 images of 8 x 8 pixels, 17 grey levels.

The images ship inside scikit-learn (``sklearn.datasets.load_digits``), so nothing is
downloaded. Each pixel is an integer count in 0..16 (the number of "on" pixels in a 4 x 4
block of the original 32 x 32 bitmap), so the data are discrete with L = 17 levels and
D = 64 dimensions; labels are the digits 0..9.

The split is fixed, by position in scikit-learn's order:

* test  = the last 297 images (indices 1500..1796),
* val   = the 150 images before them (indices 1350..1499),
* train = the first 1350 images,
* all   = the 1,797 images.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from genlab.checks import check_choice
from genlab.data.dataset import Dataset

NUM_IMAGES = 1797
NUM_LEVELS = 17
NUM_CLASSES = 10
TEST_SIZE = 297
VAL_SIZE = 150
TRAIN_SIZE = NUM_IMAGES - TEST_SIZE - VAL_SIZE  # 1350

SPLIT_ROWS = {
    "train": slice(0, TRAIN_SIZE),
    "val": slice(TRAIN_SIZE, TRAIN_SIZE + VAL_SIZE),
    "test": slice(TRAIN_SIZE + VAL_SIZE, NUM_IMAGES),
    "all": slice(0, NUM_IMAGES),
}


@functools.lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32)[:, None, :, :]  # (1797, 1, 8, 8)
    labels = bunch.target.astype(np.int64)  # (1797,)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load(split: str = "train") -> Dataset:
    """One split of the digits.

    Arguments:
        split: ``"train"`` (1350), ``"val"`` (150), ``"test"`` (297) or ``"all"`` (1797).

    Returns:
        A discrete :class:`Dataset`: x (n, 1, 8, 8) floats holding integers 0..16,
        y (n,) int64 digits, ``num_levels=17``, ``num_classes=10``.

    Raises:
        ConfigError: unknown split.

    Example:
        >>> from genlab.data.digits import load
        >>> data = load("test")
        >>> len(data), data.event_shape, data.num_levels, data.num_classes
        (297, (1, 8, 8), 17, 10)
    """
    check_choice("split", split, SPLIT_ROWS)
    images, labels = _arrays()
    rows = SPLIT_ROWS[split]
    return Dataset(
        x=torch.tensor(images[rows]),  # copies, so callers may modify it
        y=torch.tensor(labels[rows]),
        kind="discrete",
        num_levels=NUM_LEVELS,
        num_classes=NUM_CLASSES,
        name="digits",
        split=split,
        info={
            "source": "sklearn.datasets.load_digits",
            "indices": [rows.start, rows.stop],
        },
    )
