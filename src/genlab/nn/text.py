"""A word tokenizer and a small transformer text encoder, trained here (no downloaded weights).

* :class:`Tokenizer` -- words of the prompt vocabulary (:func:`~genlab.data.prompts.
  prompt_vocabulary`) to ids, padded to ``max_length``. Id 0 is ``<pad>``, id 1 ``<unk>``.
  Unknown words raise :class:`~genlab.errors.DataError` naming them (``unknown="error"``,
  the default) or become ``<unk>`` (``unknown="token"``). Empty and over-long prompts are
  refused.
* :class:`TextEncoder` -- token and position embeddings, a pre-norm transformer encoder that
  ignores padding, and a final layer norm. It gives per-token features ``(n, L, d)`` with the
  padding mask ``(n, L)`` (for cross-attention) and a pooled vector ``(n, d)`` (the masked
  mean of the tokens through a linear layer, for FiLM).
* :func:`contrastive_pretrain` -- CLIP's symmetric InfoNCE between prompts and images of the
  same digit, with :class:`ImageEncoder`, so a conditional model can start from a text
  encoder that already tells digits and attributes apart (or train it jointly instead).

References:
    Vaswani et al., "Attention is all you need", NeurIPS 2017; van den Oord et al.,
    "Representation learning with contrastive predictive coding" (InfoNCE), 2018; Radford
    et al., "Learning transferable visual models from natural language supervision" (CLIP),
    ICML 2021.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genlab import rand
from genlab.checks import check_choice, check_int, did_you_mean
from genlab.data.prompts import prompt_vocabulary, split_words
from genlab.errors import ConfigError, DataError, ShapeError

__all__ = ["PAD", "UNK", "ImageEncoder", "TextEncoder", "TextFeatures", "Tokenizer",
           "contrastive_pretrain", "info_nce"]

PAD, UNK = "<pad>", "<unk>"


class Tokenizer:
    """Words to ids and back.

    Arguments:
        vocabulary: The known words (default: every word generated prompts use). Words are
            lower case; ``","`` is a word.
        max_length: Most words in a prompt; shorter prompts are padded to it.
        unknown: ``"error"`` (refuse prompts with unknown words) or ``"token"`` (map them to
            ``<unk>``).

    Example:
        >>> tok = Tokenizer(max_length=8)
        >>> ids, mask = tok.encode(["a thick 7 leaning right"])
        >>> ids.shape, mask.sum().item(), tok.decode(ids, mask)
        (torch.Size([1, 8]), 5, ['a thick 7 leaning right'])
    """

    def __init__(self, vocabulary: Sequence[str] | None = None, *, max_length: int = 24,
                 unknown: str = "error") -> None:
        words = prompt_vocabulary() if vocabulary is None else list(vocabulary)
        if len(set(words)) != len(words) or {PAD, UNK} & set(words):
            raise ConfigError(f"Expected distinct vocabulary words other than {PAD} and {UNK}, "
                              f"but found {len(words)} words with repeats or special names.")
        bad = [w for w in words if split_words(w) != [w]]
        if bad:
            raise ConfigError(f"Expected single lower-case words, but found {bad[:5]}.")
        self.max_length = check_int("max_length", max_length)
        self.unknown = check_choice("unknown", unknown, ("error", "token"))
        self.words = [PAD, UNK, *words]
        self._ids = {w: i for i, w in enumerate(self.words)}

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return len(self.words)

    def config(self) -> dict[str, Any]:
        """JSON-able arguments that rebuild this tokenizer."""
        return {"vocabulary": self.words[2:], "max_length": self.max_length,
                "unknown": self.unknown}

    def tokenize(self, prompt: str) -> list[str]:
        """The words of one prompt, checked.

        Raises:
            DataError: not a string, empty, longer than ``max_length`` words, or (with
                ``unknown="error"``) holding words outside the vocabulary.
        """
        if not isinstance(prompt, str):
            raise DataError(f"Expected a prompt string, but found {type(prompt).__name__}.")
        words = split_words(prompt)
        if not words:
            raise DataError(f"Expected a non-empty prompt, but found {prompt!r}.")
        if len(words) > self.max_length:
            raise DataError(f"Expected a prompt of at most {self.max_length} words, but found "
                            f"{len(words)}: {prompt[:60]!r}.")
        unknown = [w for w in dict.fromkeys(words) if w not in self._ids]
        if unknown and self.unknown == "error":
            hint = did_you_mean(unknown[0], self.words[2:])
            raise DataError(f"Expected words from the prompt vocabulary, but found unknown "
                            f"{', '.join(map(repr, unknown))} in {prompt!r}.{hint}")
        return words

    def encode(self, prompts: str | Sequence[str]) -> tuple[Tensor, Tensor]:
        """Ids and padding mask of a batch of prompts.

        Arguments:
            prompts: One prompt or a sequence of n prompts.

        Returns:
            ``ids`` int64 ``(n, max_length)`` (0 after the last word) and ``mask`` bool
            ``(n, max_length)``, True on words.
        """
        if not isinstance(prompts, (str, Sequence)):
            raise DataError(f"Expected a prompt or a sequence of prompts, but found "
                            f"{type(prompts).__name__}.")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts:
            raise ShapeError("Expected at least one prompt, but found none.")
        ids = torch.zeros(len(prompts), self.max_length, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            words = self.tokenize(prompt)
            ids[row, :len(words)] = torch.tensor([self._ids.get(w, 1) for w in words])
        return ids, ids != 0

    def decode(self, ids: Tensor, mask: Tensor | None = None) -> list[str]:
        """Prompts from ids ``(n, L)``: words joined by spaces, commas attached."""
        mask = ids != 0 if mask is None else mask
        return [" ".join(self.words[i] for i in row[keep].tolist()).replace(" ,", ",")
                for row, keep in zip(ids, mask, strict=True)]


class TextFeatures(NamedTuple):
    """What :class:`TextEncoder` returns.

    Attributes:
        tokens: Per-token features ``(n, L, d)``; zero at padding.
        mask: ``(n, L)`` bool, True on words (attend only there).
        pooled: One vector per prompt ``(n, d)``.
    """

    tokens: Tensor
    mask: Tensor
    pooled: Tensor


class TextEncoder(nn.Module):
    """A small pre-norm transformer over prompt words.

    Arguments:
        tokenizer: The tokenizer (default :class:`Tokenizer`); its ``max_length`` sets the
            number of position embeddings.
        dim: Feature size d.
        depth: Number of transformer layers.
        heads: Attention heads (must divide ``dim``).
        dropout: Dropout inside the layers.

    Example:
        >>> encoder = TextEncoder(dim=16, depth=1, heads=2)
        >>> out = encoder.embed(["a thin upright 3", "seven, bold"])
        >>> out.tokens.shape, out.mask.shape, out.pooled.shape
        (torch.Size([2, 24, 16]), torch.Size([2, 24]), torch.Size([2, 16]))
    """

    def __init__(self, tokenizer: Tokenizer | None = None, *, dim: int = 64, depth: int = 2,
                 heads: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.tokenizer = tokenizer or Tokenizer()
        dim, depth, heads = check_int("dim", dim), check_int("depth", depth), \
            check_int("heads", heads)
        if dim % heads:
            raise ConfigError(f"Expected dim divisible by heads={heads}, but found dim={dim}.")
        self.dim = dim
        self._config = {"dim": dim, "depth": depth, "heads": heads, "dropout": dropout}
        self.token_embedding = nn.Embedding(self.tokenizer.vocab_size, dim, padding_idx=0)
        self.position_embedding = nn.Parameter(torch.randn(self.tokenizer.max_length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        # nested tensors would drop padded positions from the output; keep (n, L, d)
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.pool = nn.Linear(dim, dim)

    def config(self) -> dict[str, Any]:
        """JSON-able arguments that rebuild this encoder (weights not included)."""
        return {"tokenizer": self.tokenizer.config(), **self._config}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextEncoder:
        """The encoder :meth:`config` describes (freshly initialised)."""
        config = dict(config)
        return cls(Tokenizer(**config.pop("tokenizer")), **config)

    def forward(self, ids: Tensor, mask: Tensor) -> TextFeatures:
        """Features of tokenized prompts.

        Arguments:
            ids: int64 ``(n, L)`` with ``L <= max_length``.
            mask: bool ``(n, L)``, True on words; at least one word per row.
        """
        if ids.dim() != 2 or ids.shape != mask.shape or ids.shape[1] > \
                self.tokenizer.max_length:
            raise ShapeError(f"Expected ids and mask of one shape (n, L <= "
                             f"{self.tokenizer.max_length}), but found {tuple(ids.shape)} and "
                             f"{tuple(mask.shape)}.")
        if not mask.any(1).all():
            raise DataError("Expected at least one word per prompt, but found an empty row.")
        length = ids.shape[1]
        h = self.token_embedding(ids) + self.position_embedding[:length]  # (n, L, d)
        h = self.norm(self.layers(h, src_key_padding_mask=~mask))  # (n, L, d)
        h = h * mask[..., None]  # padding carries nothing
        mean = h.sum(1) / mask.sum(1, keepdim=True)  # (n, d)
        return TextFeatures(tokens=h, mask=mask, pooled=self.pool(mean))

    def embed(self, prompts: str | Sequence[str]) -> TextFeatures:
        """Tokenize (with the checks of :meth:`Tokenizer.tokenize`) and encode prompts."""
        ids, mask = self.tokenizer.encode(prompts)
        device = self.position_embedding.device
        return self(ids.to(device), mask.to(device))


class ImageEncoder(nn.Module):
    """A small CNN from digits ``(n, 1, 8, 8)`` (levels 0..16) to vectors ``(n, dim)``."""

    def __init__(self, dim: int = 64, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1, stride=2), nn.GELU(),  # (n, width, 4, 4)
            nn.Flatten(), nn.Linear(width * 16, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x / 8.0 - 1.0)  # levels 0..16 -> [-1, 1]


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.1) -> Tensor:
    r"""Symmetric InfoNCE: row i of ``a`` should match row i of ``b`` among all rows.

    .. math::
        \mathcal{L} = \tfrac12\big(\mathrm{CE}(S, I) + \mathrm{CE}(S^\top, I)\big),\quad
        S_{ij} = \frac{\langle \hat a_i, \hat b_j\rangle}{\tau}

    with unit-normalised rows. Arguments ``(n, d)`` each; returns a scalar.
    """
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature  # (n, n)
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def contrastive_pretrain(text: TextEncoder, images: ImageEncoder, x: Tensor,
                         prompts: Sequence[Sequence[str]], *, steps: int = 300,
                         batch_size: int = 128, lr: float = 3e-3, temperature: float = 0.1,
                         generator: torch.Generator | None = None) -> list[float]:
    """Train both encoders so a prompt's pooled vector points at its image's vector.

    Each step draws ``batch_size`` images and, for each, one of its prompts, and takes an
    Adam step on :func:`info_nce` between ``text(prompt).pooled`` and ``images(x)``. Images
    of the same digit in one batch count as negatives (as in CLIP), so the encoders must also
    read the attribute words to bring the loss down.

    Arguments:
        text: The text encoder (trained in place).
        images: The image encoder (trained in place), output size ``text.dim``.
        x: Images ``(n, 1, 8, 8)``, levels 0..16.
        prompts: ``prompts[v][i]`` is prompt variant v of image i (e.g.
            ``[data.prompts(v) for v in range(4)]`` of a
            :class:`~genlab.data.conditions.PairedDataset`).
        steps, batch_size, lr, temperature: Optimisation settings.
        generator: Source of the batches' randomness.

    Returns:
        The loss of each step.
    """
    steps, batch_size = check_int("steps", steps), check_int("batch_size", batch_size, ge=2)
    if any(len(p) != len(x) for p in prompts) or not prompts:
        raise ShapeError(f"Expected prompt lists of {len(x)} prompts each, but found lengths "
                         f"{[len(p) for p in prompts]}.")
    tokens = [text.tokenizer.encode(p) for p in prompts]  # V x ((n, L), (n, L))
    ids = torch.stack([t[0] for t in tokens])  # (V, n, L)
    masks = torch.stack([t[1] for t in tokens])
    device = text.position_embedding.device
    optimizer = torch.optim.Adam([*text.parameters(), *images.parameters()], lr=lr)
    text.train()
    images.train()
    losses = []
    for _ in range(steps):
        rows = rand.randperm(len(x), generator=generator)[:batch_size]
        variant = rand.randint(len(prompts), (len(rows),), generator=generator)
        batch = text(ids[variant, rows].to(device), masks[variant, rows].to(device))
        loss = info_nce(batch.pooled, images(x[rows].to(device)), temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    text.eval()
    images.eval()
    return losses
