"""An epoch-aware sampler whose order is a function of (seed, epoch), so training can resume
mid-epoch exactly: skipping the batches already seen yields the same remaining samples."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields `(epoch, index)` keys: a permutation of `range(n)` drawn from (seed, epoch).

    The epoch travels with each key, so datasets can derive per-sample randomness from it even in
    worker processes that never see `set_epoch`. `set_epoch(epoch, start)` skips the first `start`
    keys of that epoch's order (the samples a resumed run has already trained on).
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True) -> None:
        if n < 1:
            raise ValueError(f"cannot sample from an empty dataset (n={n})")
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for index in self.order(epoch)[self.start :]:
            yield (epoch, index)

    def __len__(self) -> int:
        return max(0, self.n - self.start)
