"""Embeddings shared by the families: sinusoidal codes of a time or position index."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Embed times ``t`` (shape ``(n,)``) as ``[cos(t w_k), sin(t w_k)]``, shape ``(n, dim)``.

    Frequencies w_k = max_period^(-k / (dim/2)), k = 0..dim/2-1, range geometrically from 1 to
    1/max_period, so nearby steps get nearby codes and distant ones are told apart.
    """
    half = dim // 2
    k = torch.arange(half, device=t.device, dtype=torch.float32)
    freqs = torch.exp(-math.log(max_period) * k / half)  # (half,)
    angles = t.float()[:, None] * freqs[None, :]  # (n, half)
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # (n, 2 half)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb
