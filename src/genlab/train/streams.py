"""One random stream per shard of a batch, so the noise of training does not depend on how
the batch is split among processes.

A training batch is cut into ``K = processes x accumulate`` equal shards (see
:mod:`genlab.train.distributed`). The noise an objective draws for shard ``k`` (diffusion
time steps and eps, GAN latents, dropout masks) comes from stream ``k``: shard 0 continues
the global stream that seeded the model's initialisation; shard ``k > 0`` starts from a seed
derived from ``(seed, k)``. Two processes that each hold one shard therefore draw exactly what
one process accumulating two shards draws, and their updates agree up to float rounding.

With one shard (one process, no accumulation) nothing is swapped: training draws from the
global stream, as a plain PyTorch loop would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import Tensor

from genlab.errors import ConfigError


def shard_seed(seed: int, k: int) -> int:
    """The seed of shard ``k``'s stream (``k >= 1``): 63 bits of SHA-256 of ``(seed, k)``."""
    digest = hashlib.sha256(f"genlab-shard:{seed}:{k}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class ShardStreams:
    """The random streams of the shards one process computes.

    Arguments:
        seed: The run's seed.
        first: Index of this process's first shard.
        count: Shards this process computes (``accumulate``).
        total: Shards of a batch over all processes.
        device: The training device (its CUDA generator is swapped too).
    """

    def __init__(self, seed: int, first: int, count: int, total: int,
                 device: torch.device) -> None:
        self.first, self.count, self.total = first, count, total
        self.devices = [device] if device.type == "cuda" else []
        self.states: list[list[Tensor]] = []
        for k in range(first, first + count):
            if k == 0:
                self.states.append(self._get())
                continue
            with torch.random.fork_rng(devices=self.devices):
                torch.manual_seed(shard_seed(seed, k))
                self.states.append(self._get())

    def _get(self) -> list[Tensor]:
        return [torch.get_rng_state()] + [torch.cuda.get_rng_state(d) for d in self.devices]

    def _set(self, states: list[Tensor]) -> None:
        torch.set_rng_state(states[0])
        for d, s in zip(self.devices, states[1:], strict=True):
            torch.cuda.set_rng_state(s, d)

    def use(self, i: int) -> AbstractContextManager[None]:
        """Draw from local shard ``i``'s stream inside the block (the global stream outside it
        is left as it was)."""
        return nullcontext() if self.total == 1 else self._swapped(i)

    @contextmanager
    def _swapped(self, i: int) -> Iterator[None]:
        outside = self._get()
        self._set(self.states[i])
        try:
            yield
        finally:
            self.states[i] = self._get()
            self._set(outside)

    def load(self, states: list[list[Tensor]]) -> None:
        """Restore this process's streams from every shard's saved state (``total`` of them).

        Raises:
            ConfigError: the run was saved with another number of shards.
        """
        if len(states) != self.total:
            raise ConfigError(
                f"Expected to resume with {len(states)} batch shards (processes x accumulate) "
                f"as the run was started, but found {self.total}."
            )
        self.states = [list(s) for s in states[self.first : self.first + self.count]]
