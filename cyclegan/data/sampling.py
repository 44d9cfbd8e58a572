"""An epoch-aware sampler whose order is a function of (seed, epoch), so training can resume
mid-epoch exactly: skipping the batches already seen yields the same remaining samples. Under DDP
each rank takes a disjoint shard of that order."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields `(epoch, index)` keys: a permutation of `range(n)` drawn from (seed, epoch).

    The epoch travels with each key, so datasets can derive per-sample randomness from it even in
    worker processes that never see `set_epoch`. `set_epoch(epoch, start)` skips the first `start`
    keys of that epoch's order (the samples a resumed run has already trained on).

    With `world_size` > 1 (DDP), rank r takes `order[r::world_size]` of the order wrapped around,
    so every rank gets `shard_size` keys and takes the same number of steps (as torch's
    DistributedSampler pads); `start` then counts within the rank's shard.
    """

    def __init__(
        self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        if n < 1:
            raise ValueError(f"cannot sample from an empty dataset (n={n})")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.start = 0

    @property
    def shard_size(self) -> int:
        """Keys per rank and epoch (n when there is one process)."""
        return -(-self.n // self.world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def shard(self, epoch: int) -> list[int]:
        order = self.order(epoch)
        if self.world_size == 1:
            return order
        total = self.shard_size * self.world_size
        padded = (order * -(-total // self.n))[:total]  # wrap around: equal shards
        return padded[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for index in self.shard(epoch)[self.start :]:
            yield (epoch, index)

    def __len__(self) -> int:
        return max(0, self.shard_size - self.start)
