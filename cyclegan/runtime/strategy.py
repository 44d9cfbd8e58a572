"""One process or many: the strategy object is the only code that knows which.

Everything a training run does differently under DDP goes through these methods: joining the
process group, the device of this rank, per-rank seeds, wrapping modules, the stop-signal vote per
step and the loss all_reduce per log line, gathering per-rank state into a checkpoint, and which
rank writes. `SingleProcess` is the plain case; `DistributedDataParallel` overrides it. Nothing
else branches on "distributed".
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from cyclegan.errors import ConfigError
from cyclegan.runtime.distributed import Place, gpu_index, rank_seed, resolve_place

T = TypeVar("T")


class SingleProcess:
    """One process, one device: every collective is the identity."""

    def __init__(self, place: Place | None = None) -> None:
        self.place = place or Place()

    @property
    def rank(self) -> int:
        return self.place.rank

    @property
    def world_size(self) -> int:
        return self.place.world_size

    @property
    def is_main(self) -> bool:
        """The rank that logs, evaluates, writes samples and checkpoints."""
        return self.place.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This rank's device."""
        return device

    @contextlib.contextmanager
    def session(self, device: torch.device) -> Iterator[None]:
        """The job's lifetime (a process group under DDP)."""
        yield

    def seed(self, seed: int) -> int:
        """This rank's seed; rank 0 keeps `seed`, so a 1-process run is the plain run."""
        return rank_seed(seed, self.rank)

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """The module the training step calls (DDP-wrapped under DDP)."""
        return module

    def on_main(self, build: Callable[[], T]) -> T | None:
        """`build()` on the main rank, None elsewhere (evaluators, sample images, loggers)."""
        return build() if self.is_main else None

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. renders the dataset), the others after it."""
        yield

    def broadcast(self, value: T) -> T:
        """Rank 0's value on every rank."""
        return value

    def gather(self, value: T) -> list[T] | None:
        """Every rank's value in rank order on rank 0; None elsewhere."""
        return [value]

    def gather_rank_states(self, state: Callable[[], T]) -> list[T] | None:
        """Every rank's `state()` for a checkpoint's `ranks` entry (rank 0 gets the list); None in
        one process, whose state at the checkpoint's top level is all there is."""
        return None

    def reduce_window(self, sums: torch.Tensor) -> torch.Tensor:
        """The mean over the ranks of a log line's loss sums (cyclegan.training.loss_window.LossWindow)."""
        return sums

    def agree_on_signal(
        self, signum: int | None, signals: tuple[int, ...], device: torch.device
    ) -> int | None:
        """A stop signal any rank received, so that all stop after the same step. One process
        has nothing to agree on, and reads nothing back from the device."""
        return signum

    def shared_run_dir(self, own: Path) -> Path:
        """The run directory all ranks share."""
        return own

    def describe(self, batch_size: int) -> str:
        """What the start-of-run log line says about the processes."""
        return ""


class DistributedDataParallel(SingleProcess):
    """Several processes (torchrun, SLURM, submitit), one device each; rank 0 writes."""

    def device(self, device: torch.device) -> torch.device:
        """Each rank its own GPU (cuda:LOCAL_RANK); CPU stays CPU."""
        if device.type == "cuda":
            return torch.device("cuda", gpu_index(self.place.local_rank, torch.cuda.device_count()))
        if device.type != "cpu":
            raise ConfigError(
                f"trainer.strategy=ddp on {device.type} is not supported; use trainer.device=cuda or cpu"
            )
        return device

    @contextlib.contextmanager
    def session(self, device: torch.device, timeout_min: float = 30) -> Iterator[None]:
        """Join the process group (NCCL on CUDA, gloo on CPU) and always leave it; other ranks
        log only warnings, so the console shows one copy of each message."""
        place, root = self.place, logging.getLogger()
        level = root.level
        # torchrun hosts the rendezvous store itself (env://); SLURM and submitit tasks meet at
        # rank 0's address and the derived port.
        init = (
            "env://"
            if place.source == "torchrun"
            else f"tcp://{place.master_addr}:{place.master_port}"
        )
        try:
            if not self.is_main:
                root.setLevel(logging.WARNING)
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(
                "nccl" if device.type == "cuda" else "gloo",
                init_method=init,
                rank=place.rank,
                world_size=place.world_size,
                timeout=timedelta(minutes=timeout_min),
                **({"device_id": device} if device.type == "cuda" else {}),
            )
            try:
                yield
            finally:
                dist.destroy_process_group()
        finally:
            root.setLevel(level)

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """DistributedDataParallel on this rank's device; wrapping broadcasts rank 0's weights."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
        return DDP(module, device_ids=ids)

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        if not self.is_main:
            dist.barrier()
        yield
        if self.is_main:
            dist.barrier()

    def broadcast(self, value: T) -> T:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: T) -> list[T] | None:
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, out, dst=0)
        return out

    def gather_rank_states(self, state: Callable[[], T]) -> list[T] | None:
        return self.gather(state())

    def reduce_window(self, sums: torch.Tensor) -> torch.Tensor:
        """One all_reduce per log line (not per step): every rank logs the same means, and a NaN
        on one rank makes every rank's window non-finite, so all stop together."""
        total = sums.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size

    def agree_on_signal(
        self, signum: int | None, signals: tuple[int, ...], device: torch.device
    ) -> int | None:
        """One small all_reduce per step of a counter per stop signal, read back (the one host
        synchronisation of a DDP step), so every rank stops after the same step."""
        flags = torch.tensor([float(signum == s) for s in signals], device=device)
        dist.all_reduce(flags, op=dist.ReduceOp.SUM)
        received = [s for s, count in zip(signals, flags.tolist(), strict=True) if count > 0]
        return received[0] if received else None

    def shared_run_dir(self, own: Path) -> Path:
        """Rank 0's output directory on every rank (Hydra stamps each process's directory with its
        own start time). A directory Hydra made for another rank that holds nothing but Hydra's
        own files is removed, so a torchrun job leaves one run directory."""
        run_dir = Path(self.broadcast(str(own)))
        hydra_only = own.is_dir() and all(
            p.name == ".hydra" or p.suffix == ".log" for p in own.iterdir()
        )
        if run_dir != own and hydra_only:
            shutil.rmtree(own, ignore_errors=True)
        return run_dir

    def describe(self, batch_size: int) -> str:
        return f" x {self.world_size} processes (DDP, global batch {batch_size * self.world_size})"


def build_strategy(name: str, env: Mapping[str, str]) -> SingleProcess:
    """trainer.strategy (auto | single | ddp) and the launcher's environment -> the strategy."""
    return strategy_for(resolve_place(name, env))


def strategy_for(place: Place) -> SingleProcess:
    """The strategy of a known place (tests and benchmarks that start processes themselves)."""
    return DistributedDataParallel(place) if place.distributed else SingleProcess(place)
