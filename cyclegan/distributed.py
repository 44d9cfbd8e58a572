"""Where this process sits in a DDP job, and the few collectives the trainer needs.

`Place.from_env(os.environ)` reads torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT) or, when those are absent, SLURM's (SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, the
first host of SLURM_JOB_NODELIST, a port derived from SLURM_JOB_ID), or submitit's local executor's
(SUBMITIT_LOCAL_GLOBALID, ..., which runs the SLURM launcher's tasks on this machine). It is a
pure function of the mapping, so the mapping is unit-tested without starting processes.
`session()` joins the process group (gloo on CPU, NCCL on CUDA) and always leaves it, also on
error.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from cyclegan.config import ConfigError

STRATEGIES = ("auto", "single", "ddp")
# Port range for SLURM jobs without MASTER_PORT: one port per job id, so two jobs sharing a first
# node rarely collide (set MASTER_PORT to choose one).
SLURM_PORT_BASE, SLURM_PORT_SPAN = 20000, 20000
_SEED_STRIDE = 1_000_003  # keeps per-rank seed streams apart from neighbouring base seeds


@dataclass(frozen=True)
class Place:
    """This process's place in the job: rank among world_size processes, GPU index on its node."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    source: str = "single"  # single | torchrun | slurm | submitit_local: who started the processes

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, writes samples, checkpoints and summaries."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or self.source != "single"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Place | None:
        """torchrun's variables, else SLURM's, else submitit-local's; None without any."""
        if "RANK" in env and "WORLD_SIZE" in env:
            return cls(
                rank=int(env["RANK"]),
                local_rank=int(env.get("LOCAL_RANK", env["RANK"])),
                world_size=int(env["WORLD_SIZE"]),
                master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
                master_port=int(env.get("MASTER_PORT", 29500)),
                source="torchrun",
            )
        if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
            port = _port_from(env.get("SLURM_JOB_ID", "0"))
            return cls(
                rank=int(env["SLURM_PROCID"]),
                local_rank=int(env.get("SLURM_LOCALID", 0)),
                world_size=int(env["SLURM_NTASKS"]),
                master_addr=env.get("MASTER_ADDR")
                or first_host(env.get("SLURM_JOB_NODELIST", "127.0.0.1")),
                master_port=int(env.get("MASTER_PORT", port)),
                source="slurm",
            )
        if "SUBMITIT_LOCAL_GLOBALID" in env and "SUBMITIT_LOCAL_NTASKS" in env:
            return cls(
                rank=int(env["SUBMITIT_LOCAL_GLOBALID"]),
                local_rank=int(env.get("SUBMITIT_LOCAL_LOCALID", 0)),
                world_size=int(env["SUBMITIT_LOCAL_NTASKS"]),
                master_addr="127.0.0.1",
                master_port=_port_from(env.get("SUBMITIT_LOCAL_JOB_ID", "0")),
                source="submitit_local",
            )
        return None


def _port_from(job_id: str) -> int:
    """A port every task of one job derives alike, different for most concurrent jobs."""
    return SLURM_PORT_BASE + int(re.sub(r"\D", "", job_id) or 0) % SLURM_PORT_SPAN


def resolve_place(strategy: str, env: Mapping[str, str]) -> Place:
    """The place for `trainer.strategy`: auto -> DDP only under torchrun with WORLD_SIZE > 1."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"trainer.strategy={strategy}: use auto, single or ddp")
    if strategy == "single":
        return Place()
    found = Place.from_env(env)
    if strategy == "auto":
        if found is not None and found.source == "torchrun" and found.world_size > 1:
            return found
        return Place()
    if found is None:
        raise ConfigError(
            "trainer.strategy=ddp needs a distributed launch: start with "
            "`torchrun --nproc_per_node=N train.py trainer.strategy=ddp` (or srun under SLURM)"
        )
    return found


def expand_nodelist(nodelist: str) -> list[str]:
    """Expand SLURM's compressed host list: "gpu[003-005,007],cpu1" -> gpu003 ... gpu007, cpu1."""
    groups, depth, current = [], 0, ""
    for char in nodelist:  # split on commas outside brackets
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            groups.append(current)
            current = ""
        else:
            current += char
    groups.append(current)
    hosts: list[str] = []
    for group in filter(None, (g.strip() for g in groups)):
        hosts += _expand_group(group)
    return hosts


def _expand_group(group: str) -> list[str]:
    match = re.search(r"\[([^\]]*)\]", group)
    if match is None:
        return [group]
    head, tail = group[: match.start()], group[match.end() :]
    items: list[str] = []
    for part in match.group(1).split(","):
        lo, _, hi = part.partition("-")
        if hi:  # a range keeps its zero padding: 003-005 -> 003, 004, 005
            items += [str(i).zfill(len(lo)) for i in range(int(lo), int(hi) + 1)]
        else:
            items.append(lo)
    return [h + rest for h in (head + item for item in items) for rest in _expand_group(tail)]


def first_host(nodelist: str) -> str:
    """The job's first node: where rank 0 runs under SLURM's block distribution."""
    hosts = expand_nodelist(nodelist)
    if not hosts:
        raise ConfigError(f"SLURM_JOB_NODELIST={nodelist!r} names no host; set MASTER_ADDR")
    return hosts[0]


def rank_seed(seed: int, rank: int) -> int:
    """Seed of rank `rank`: rank 0 keeps `seed` (a 1-process run is today's run)."""
    return seed + _SEED_STRIDE * rank


def gpu_index(local_rank: int, visible: int) -> int:
    """GPU LOCAL_RANK of the node; 0 where the launcher binds one GPU to each task (SLURM's
    --gpus-per-task, CUDA_VISIBLE_DEVICES per task)."""
    if visible == 1:
        return 0
    if local_rank >= visible:
        raise ConfigError(
            f"local rank {local_rank} but only {visible} GPU(s) visible: start at most one "
            "process per GPU (torchrun --nproc_per_node, SLURM tasks_per_node = gpus_per_node)"
        )
    return local_rank


def device_for(place: Place, device: torch.device) -> torch.device:
    """Each rank its own GPU (cuda:LOCAL_RANK); CPU stays CPU."""
    if not place.distributed:
        return device
    if device.type == "cuda":
        return torch.device("cuda", gpu_index(place.local_rank, torch.cuda.device_count()))
    if device.type != "cpu":
        raise ConfigError(
            f"trainer.strategy=ddp on {device.type} is not supported; use trainer.device=cuda or cpu"
        )
    return device


@contextlib.contextmanager
def session(place: Place, device: torch.device, timeout_min: float = 30) -> Iterator[None]:
    """Join the process group for the job's duration (NCCL on CUDA, gloo on CPU) and always leave
    it; other ranks log only warnings, so the console shows one copy of each message."""
    if not place.distributed:
        yield
        return
    root = logging.getLogger()
    level = root.level
    # torchrun hosts the rendezvous store itself (env://); SLURM and submitit tasks meet at rank
    # 0's address and the derived port.
    init = (
        "env://" if place.source == "torchrun" else f"tcp://{place.master_addr}:{place.master_port}"
    )
    try:
        if not place.is_main:
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


def wrap_ddp(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel on this rank's device; wrapping broadcasts rank 0's weights."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def barrier(place: Place) -> None:
    if place.distributed:
        dist.barrier()


@contextlib.contextmanager
def main_first(place: Place) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. renders the dataset), the others after it is done."""
    if not place.is_main:
        barrier(place)
    yield
    if place.is_main:
        barrier(place)


def broadcast_object(place: Place, value: Any) -> Any:
    """Rank 0's `value` on every rank (e.g. its Hydra output directory)."""
    if not place.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(place: Place, value: Any) -> list[Any] | None:
    """Every rank's `value` (CPU tensors and primitives), in rank order, on rank 0; None elsewhere."""
    if not place.distributed:
        return [value]
    out: list[Any] | None = [None] * place.world_size if place.is_main else None
    dist.gather_object(value, out, dst=0)
    return out


def reduce_step(
    place: Place,
    losses: dict[str, torch.Tensor],
    signum: int | None,
    signals: tuple[int, ...],
) -> tuple[dict[str, float], int | None]:
    """Mean of each loss over the ranks, and the stop signal any rank received, in one all_reduce.

    The tensor carries the losses followed by one counter per stop signal, so every rank sees the
    same numbers and the same decision: all stop after the same step, and a NaN on one rank stops
    them all.
    """
    if not place.distributed:
        return {k: float(v) for k, v in losses.items()}, signum
    keys = list(losses)
    flags = [float(signum == s) for s in signals]
    device = next(iter(losses.values())).device
    packed = torch.stack([losses[k].detach().float().reshape(()) for k in keys])
    packed = torch.cat([packed, torch.tensor(flags, device=device)])
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    values = packed.tolist()
    mean = {k: v / place.world_size for k, v in zip(keys, values, strict=False)}
    received = [s for s, count in zip(signals, values[len(keys) :], strict=True) if count > 0]
    return mean, received[0] if received else None
