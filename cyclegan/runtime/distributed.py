"""Where this process sits in a DDP job: a pure function of the launcher's environment.

`Place.from_env(os.environ)` reads torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT) or, when those are absent, SLURM's (SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, the
first host of SLURM_JOB_NODELIST, a port derived from SLURM_JOB_ID), or submitit's local executor's
(SUBMITIT_LOCAL_GLOBALID, ..., which runs the SLURM launcher's tasks on this machine). It is a
pure function of the mapping, so the mapping is unit-tested without starting processes.
What a job does with its place (process group, collectives) is `cyclegan.runtime.strategy`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cyclegan.errors import ConfigError

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
