"""What a conditional denoiser reads from :class:`~genlab.conditioning.Conditions`.

:class:`ConditionEncoder` turns a batch of conditions into a :class:`Context`:

* **image conditions** (sketch, lowres, mask with the masked image) become extra input
  channels of the denoiser, at the data's resolution, with one presence channel per kind
  (1 where given, 0 where absent), so "no sketch" differs from a blank one;
* the **label** goes through the time embedding's class table, absent labels to its extra
  "null" row;
* the **prompt** is read by a :class:`~genlab.nn.text.TextEncoder` trained with the model:
  its pooled vector is added to the time embedding, which every residual block turns into a
  scale and shift of its features (FiLM), and its word features are the keys and values of
  cross-attention layers at the low resolutions (:class:`CrossAttention`). An absent prompt
  uses a learned null vector, and attends only to a learned null token that every row sees.

References:
    Perez et al., "FiLM: Visual reasoning with a general conditioning layer", AAAI 2018;
    Rombach et al., "High-resolution image synthesis with latent diffusion models" (cross-
    attention to text tokens), CVPR 2022; Ho and Salimans, "Classifier-free diffusion
    guidance" (condition dropout), 2022.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.conditioning import IMAGE_KINDS, Conditions, prompt_tokenizer
from genlab.errors import ConfigError
from genlab.nn.text import TextEncoder


class Context(NamedTuple):
    """A condition as the denoiser takes it; a None field is not used.

    Attributes:
        channels: ``(n, k, H, W)`` image channels concatenated to the input.
        vector: ``(n, emb_dim)`` added to the time embedding (FiLM in every block).
        tokens: ``(n, L + 1, d)`` keys and values of cross-attention (null token first).
        mask: ``(n, L + 1)`` bool, True where a token may be attended to.
    """

    channels: Tensor | None = None
    vector: Tensor | None = None
    tokens: Tensor | None = None
    mask: Tensor | None = None


class CrossAttention(nn.Module):
    """Multi-head attention from the positions of a feature map to condition tokens, with a
    residual: queries from the normalised map, keys and values from the tokens."""

    def __init__(self, channels: int, context_dim: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = nn.GroupNorm(max(g for g in range(1, 9) if channels % g == 0), channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.kv = nn.Linear(context_dim, 2 * channels)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)  # starts as the identity: conditions fade in
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, tokens: Tensor, mask: Tensor) -> Tensor:
        n, c, h, w = x.shape
        d = c // self.heads
        q = self.q(self.norm(x)).reshape(n, self.heads, d, h * w).transpose(-1, -2)
        k, v = self.kv(tokens).reshape(n, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        # (n, heads, h w, d) queries against (n, heads, L + 1, d) keys; padding not attended
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


def image_channel_count(kinds: Sequence[str], channels: int) -> int:
    """Channels :class:`ConditionEncoder` adds for the image kinds among ``kinds`` (data of
    ``channels`` channels): sketch 1, lowres 1, mask 1 + channels, one presence each."""
    sizes = {"sketch": 1, "lowres": 1, "mask": 1 + channels}
    return sum(sizes[k] + 1 for k in kinds if k in IMAGE_KINDS)


def unet_condition_args(kinds: Sequence[str], event_shape: Sequence[int], text_width: int,
                        denoiser: str) -> dict[str, Any]:
    """The UNet's arguments for conditions ``kinds`` (none for the MLP, which reads the
    prompt and label through its embedding only): FiLM blocks, condition channels, and
    cross-attention over prompt tokens of ``text_width`` features.

    Raises:
        ConfigError: image conditions with the MLP denoiser.
    """
    if denoiser != "unet":
        if any(k in IMAGE_KINDS for k in kinds):
            raise ConfigError(f"Expected denoiser 'unet' for image conditions {tuple(kinds)}, "
                              f"but found {denoiser!r}.")
        return {}
    return {"film": True, "extra_channels": image_channel_count(kinds, event_shape[0]),
            "context_dim": text_width if "prompt" in kinds else None}


class ConditionEncoder(nn.Module):
    """Conditions -> (labels for the class table, :class:`Context`).

    Arguments:
        kinds: The model's condition kinds.
        num_classes: Classes of the label condition (its null row is ``num_classes``).
        emb_dim: Size of the denoiser's time embedding (the FiLM vector's size).
        text_width, text_depth: Size and layers of the text encoder (prompt condition).
        cross_attention: Give the prompt's word features to cross-attention too.
    """

    def __init__(self, kinds: Sequence[str], *, num_classes: int | None, emb_dim: int,
                 text_width: int = 32, text_depth: int = 1, cross_attention: bool = True
                 ) -> None:
        super().__init__()
        self.kinds = tuple(kinds)
        self.num_classes = num_classes
        self.image_kinds = [k for k in IMAGE_KINDS if k in self.kinds]
        self.text = None
        self.cross_attention = cross_attention and "prompt" in self.kinds
        if "prompt" in self.kinds:
            heads = next(h for h in (4, 2, 1) if text_width % h == 0)
            self.text = TextEncoder(prompt_tokenizer(), dim=text_width, depth=text_depth,
                                    heads=heads)
            self.text_vector = nn.Linear(text_width, emb_dim)
            self.null_vector = nn.Parameter(torch.zeros(emb_dim))
            if self.cross_attention:
                self.null_token = nn.Parameter(torch.randn(text_width) * 0.02)

    @property
    def context_dim(self) -> int | None:
        """Token size for cross-attention, None without it."""
        return self.text.dim if self.cross_attention and self.text is not None else None

    def forward(self, y: Conditions, level_scale: float) -> tuple[Tensor | None, Context]:
        """Labels ``(n,)`` (None without a label condition) and the context of ``y``.

        Arguments:
            y: The conditions, n rows.
            level_scale: Factor from data values to the network's scale for ``lowres`` and
                ``masked`` (``1 / (num_levels - 1)`` for discrete data).
        """
        labels = None
        if "label" in self.kinds:  # absent rows read the null row
            labels = torch.where(y.present("label"), y["label"], self.num_classes)
        channels = self._channels(y, level_scale) if self.image_kinds else None
        if self.text is None:
            return labels, Context(channels=channels)
        return labels, Context(channels, *self._text(y))

    def _channels(self, y: Conditions, level_scale: float) -> Tensor:
        parts = []
        for kind in self.image_kinds:
            if kind == "sketch":
                parts.append(y["sketch"])
            elif kind == "lowres":
                parts.append(y["lowres"] * level_scale)
            else:
                parts += [y["mask"], y["masked"] * level_scale]
        like = parts[0][:, :1]
        parts += [torch.ones_like(like) * y.present(k)[:, None, None, None] for k in
                  self.image_kinds]
        return torch.cat(parts, dim=1)  # (n, k, H, W)

    def _text(self, y: Conditions) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """FiLM vector ``(n, emb_dim)``, tokens ``(n, L + 1, d)`` and their mask (None
        without cross-attention)."""
        present = y.present("prompt")
        ids, words = y["prompt"], y["prompt_mask"]
        n, length = ids.shape
        d = self.text.dim
        vector = self.null_vector.expand(n, -1)
        tokens = torch.zeros(n, length, d, device=ids.device, dtype=vector.dtype)
        rows = present.nonzero().reshape(-1)
        if len(rows):  # the encoder reads only rows with a prompt (it refuses empty ones)
            features = self.text(ids[rows], words[rows])
            tokens = tokens.index_copy(0, rows, features.tokens)
            vector = vector.index_copy(0, rows, self.text_vector(features.pooled))
        if not self.cross_attention:
            return vector, None, None
        null = self.null_token.expand(n, 1, d)
        mask = torch.cat([torch.ones(n, 1, dtype=torch.bool, device=ids.device),
                          words & present[:, None]], dim=1)
        return vector, torch.cat([null, tokens], dim=1), mask


def pretrain_text(model: nn.Module, x: Tensor, prompts: Sequence[Sequence[str]], *,
                  steps: int = 300, generator: torch.Generator | None = None) -> list[float]:
    """Start a conditional model's text encoder from contrastive pre-training.

    :func:`~genlab.nn.text.contrastive_pretrain` trains the model's prompt encoder with a
    fresh :class:`~genlab.nn.text.ImageEncoder` so that a prompt's pooled vector picks out
    its own image; the diffusion training that follows goes on from there.

    Arguments:
        model: A diffusion model with the prompt condition.
        x: Images ``(n, 1, 8, 8)`` (levels 0..16).
        prompts: ``prompts[v][i]``, wording v of image i's prompt (e.g. ``[paired.prompts(v)
            for v in range(4)]`` of a :class:`~genlab.data.conditions.PairedDataset`).
        steps: Pre-training steps.
        generator: Source of the batches.

    Returns:
        The contrastive loss of each step.

    Raises:
        ConfigError: the model has no prompt condition.
    """
    from genlab.nn.text import ImageEncoder, contrastive_pretrain

    encoder = getattr(getattr(model, "conditioner", None), "text", None)
    if encoder is None:
        raise ConfigError(f"Expected a model with the prompt condition, but found "
                          f"conditions {getattr(model, 'conditions', ())}.")
    was_training = model.training
    images = ImageEncoder(dim=encoder.dim).to(x.device)
    losses = contrastive_pretrain(encoder, images, x, prompts, steps=steps,
                                  generator=generator)
    model.train(was_training)
    return losses
