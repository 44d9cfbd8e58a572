"""The training state in a checkpoint: one function packs it, one unpacks it, one writes it.

A checkpoint holds the method's state (networks, optimizers, schedulers, loss scaler), the loop's
counters (epoch, step, loss window, best metrics), and per-rank state (replay buffers, RNG states):
rank 0's at the top level, and under DDP every rank's in `ranks`, so a resume is exact. The keys are
those of format version 1, so files written before the method/loop split load unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from cyclegan.checkpoints.file import (
    CheckpointError,
    link_or_copy,
    prune_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from cyclegan.methods.base import TrainingMethod
from cyclegan.runtime.strategy import SingleProcess

log = logging.getLogger(__name__)

COUNTERS = ("epoch", "step", "epoch_start_step", "window", "last_logged", "best")


def rank_state(method: TrainingMethod) -> dict[str, Any]:
    """This rank's buffers and RNG states (global RNGs plus the method's own generators)."""
    own = method.rank_state()
    return {"buffers": own["buffers"], "rng": {**rng_state(), **own["rng"]}}


def pack(
    method: TrainingMethod,
    counters: Mapping[str, Any],
    meta: Mapping[str, Any],
    ranks: list[Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to continue exactly, as one dict of tensors and primitives."""
    state = {**meta, **method.state_dict(), **rank_state(method), **counters}
    if ranks is not None:
        state["ranks"] = ranks
    return state


def unpack(
    state: Mapping[str, Any], method: TrainingMethod, strategy: SingleProcess
) -> dict[str, Any]:
    """Load `state` into `method` and this rank's RNGs; returns the loop's counters."""
    try:
        method.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(
            f"the checkpoint's networks do not fit this model ({first}); use the model settings it was trained with"
        ) from exc
    _load_rank_state(state, method, strategy)
    return {key: state[key] for key in COUNTERS}


def _load_rank_state(
    state: Mapping[str, Any], method: TrainingMethod, strategy: SingleProcess
) -> None:
    """This rank's buffers and RNG states: exact when the checkpoint was written by as many
    processes; otherwise ranks the file has no state for keep fresh ones (with a warning)."""
    saved = state.get("ranks") or [{"buffers": state["buffers"], "rng": state["rng"]}]
    if len(saved) != strategy.world_size and strategy.is_main:
        log.warning(
            "the checkpoint was written by %d process(es), this run has %d: ranks beyond %d "
            "start with empty replay buffers and fresh RNG states (training continues, not "
            "bit-exactly)",
            len(saved),
            strategy.world_size,
            len(saved),
        )
    if strategy.rank >= len(saved):
        return
    mine = saved[strategy.rank]
    set_rng_state(mine["rng"])
    method.load_rank_state(mine)


def save_training_state(
    directory: Path,
    method: TrainingMethod,
    counters: Mapping[str, Any],
    meta: Mapping[str, Any],
    strategy: SingleProcess,
    name: str,
    numbered_step: int | None,
    keep_last: int,
) -> Path:
    """Write the state atomically as `step_NNNNNNN.pt` (keeping the newest `keep_last`) and `name`.

    With `numbered_step`, every rank must call this (it gathers each rank's buffers and RNG states
    for an exact resume) and rank 0 writes; without it (best.pt, written from rank 0's evaluation)
    the file holds rank 0's state only.
    """
    if numbered_step is None:
        return save_checkpoint(directory / name, pack(method, counters, meta))
    ranks = strategy.gather_rank_states(lambda: _to_cpu(rank_state(method)))
    if not strategy.is_main:
        return directory / name
    state = pack(method, counters, meta, ranks)
    path = save_checkpoint(directory / f"step_{numbered_step:07d}.pt", state)
    link_or_copy(path, directory / name)
    prune_checkpoints(directory, keep_last)
    return directory / name


def _to_cpu(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.cpu()
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_cpu(v) for v in tree)
    return tree
