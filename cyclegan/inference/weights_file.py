"""Reading a foreign `.pth` weights file: the one place that opens one, unwraps its keys and drops
the InstanceNorm running-stat entries of files saved before PyTorch 0.4."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cyclegan.checkpoints.file import CheckpointError

WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_LEGACY_NORM_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def strip_wrapper_prefixes(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo DataParallel's `module.` and torch.compile's `_orig_mod.` (possibly both, nested)."""
    tensors = dict(tensors)
    changed = True
    while changed and tensors:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in tensors):
                tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
                changed = True
    return tensors


def load_state(path: Path, hint: str) -> Mapping[str, Any]:
    """`torch.load(path, weights_only=True)` of a dict, or a one-line CheckpointError ending in
    `hint` (what file to give instead)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, not a torch file at all
        raise CheckpointError(
            f"'{path}' is not a readable PyTorch weights file ({type(exc).__name__}); {hint}"
        ) from exc
    if not isinstance(state, Mapping):
        raise CheckpointError(f"'{path}' holds a {type(state).__name__}, not a state dict")
    return state


def tensors_of(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a state dict (no `_metadata` and the like), wrapper prefixes removed."""
    return strip_wrapper_prefixes({k: v for k, v in state.items() if isinstance(v, torch.Tensor)})


def drop_legacy_norm_keys(
    tensors: Mapping[str, torch.Tensor], model: nn.Module
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Remove InstanceNorm running stats that the model does not track (pre-0.4 checkpoints).

    Only keys naming an InstanceNorm layer of `model` without running stats are dropped, as the
    official loader's `__patch_instance_norm_state_dict` does; anything else stays and is judged by
    the strict load.
    """
    norms = {
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.InstanceNorm2d) and not module.track_running_stats
    }
    kept, dropped = {}, []
    for key, value in tensors.items():
        owner, _, leaf = key.rpartition(".")
        if leaf in _LEGACY_NORM_SUFFIXES and owner in norms:
            dropped.append(key)
        else:
            kept[key] = value
    return kept, dropped
