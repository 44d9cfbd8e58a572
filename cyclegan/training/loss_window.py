"""Loss sums kept on the device between log lines, so a training step never waits for the GPU.

Reading a loss with `float(loss)` after every step makes the host wait until the GPU has finished
that step: the CPU can no longer queue the next step's kernels while the GPU runs this one, which
is most of the time of a small step (256 px, batch 1, is launch-bound on an H200). `LossWindow`
adds each step's losses to device tensors instead and reads them back once per log line:

    sums_k <- sums_k + loss_k                      (one stack + one add per step, on the device)
    mean_k  = sums_k / n                           (read back at the log line: one transfer)

The NaN guard moves with it: each step folds `isfinite` into a flag on the device and remembers
the first non-finite step of the window and its values; the loop reads that flag when it logs
and before it saves a checkpoint, so a non-finite loss is still never saved, and the error still
names the step and the loss (found up to `log_every` steps later, instead of at once).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch


class LossWindow:
    """Sums of named losses since the last `pop_means`, on the losses' device.

    Tensors are summed on their device; plain floats (e.g. the learning rate) are summed on the
    host. Every step must report the same tensor keys (a new key means a programming error).
    """

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.keys: tuple[str, ...] = ()
        self.count = 0  # steps in the window (a host counter: it depends on no tensor value)
        self._sums: torch.Tensor | None = None  # (K,) float64 (float32 on MPS)
        self._host: dict[str, float] = {}
        # First non-finite step of the window: its index (-1: none yet) and its K values.
        self._first_bad: torch.Tensor | None = None  # 0-d long
        self._first_bad_values: torch.Tensor | None = None  # (K,)
        self._loaded: dict[str, float] = {}  # sums from a checkpoint, placed by the next `add`

    def add(self, losses: Mapping[str, torch.Tensor | float]) -> None:
        """Add one step's losses; no value is read back to the host."""
        tensors = {k: v for k, v in losses.items() if isinstance(v, torch.Tensor)}
        keys = tuple(tensors)
        if self._sums is None:
            self.keys = keys
            device = next(iter(tensors.values())).device if tensors else torch.device("cpu")
            loaded, self._loaded = self._loaded, {}
            # float64 where the device has it: the sums then equal summing the float32 losses as
            # Python floats, as the loop did before it kept them on the device (same log lines).
            dtype = torch.float32 if device.type == "mps" else torch.float64
            self._sums = torch.tensor(
                [loaded.get(k, 0.0) for k in keys], dtype=dtype, device=device
            )
            self._host = {k: v for k, v in loaded.items() if k not in keys}
            self._first_bad = torch.full((), -1, dtype=torch.long, device=device)
            self._first_bad_values = torch.zeros(len(keys), dtype=dtype, device=device)
        elif keys != self.keys:
            raise ValueError(
                f"the step's losses changed from {list(self.keys)} to {list(keys)}; a training "
                "step must report the same losses every time"
            )
        assert self._first_bad is not None and self._first_bad_values is not None
        if keys:
            values = torch.stack([tensors[k].detach().float().reshape(()) for k in keys])  # (K,)
            values = values.to(self._sums.dtype)
            self._sums += values
            # Remember the first step whose losses are not all finite (a where, not an `if`).
            new = (self._first_bad < 0) & ~torch.isfinite(values).all()
            self._first_bad = torch.where(new, self.count, self._first_bad)
            self._first_bad_values = torch.where(new, values, self._first_bad_values)
        for k, v in losses.items():
            if not isinstance(v, torch.Tensor):
                self._host[k] = self._host.get(k, 0.0) + float(v)
        self.count += 1

    def first_nonfinite(self) -> tuple[int, dict[str, float]] | None:
        """(index in the window, the non-finite losses) of the first bad step, or None.

        One read of the device (a synchronisation): for log lines and before checkpoints.
        """
        if self._first_bad is None or self._first_bad_values is None:
            return None
        index = int(self._first_bad)
        if index < 0:
            return None
        values = dict(zip(self.keys, self._first_bad_values.tolist(), strict=True))
        return index, {k: v for k, v in values.items() if not math.isfinite(v)}

    def pop_means(
        self, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> dict[str, float]:
        """The mean of each loss over the window (one read of the device), then an empty window.

        `reduce` maps the (K,) sums before they are read, e.g. a mean over DDP ranks: one
        all_reduce per log line instead of one per step.
        """
        if self.count == 0:
            return {}
        means: dict[str, float] = {}
        if self._sums is not None and self.keys:
            sums = self._sums if reduce is None else reduce(self._sums)
            means = dict(zip(self.keys, (s / self.count for s in sums.tolist()), strict=True))
        means.update({k: v / self.count for k, v in {**self._loaded, **self._host}.items()})
        self.reset()
        return means

    def reset(self) -> None:
        self.count = 0
        self._host = {}
        self._loaded = {}
        if self._sums is not None and self._first_bad is not None:
            self._sums.zero_()
            self._first_bad.fill_(-1)

    def state_dict(self) -> dict[str, float]:
        """The trainer's checkpoint format: each key's sum and `_count` (reads the device once)."""
        state: dict[str, float] = dict(self._loaded)
        if self._sums is not None and self.keys:
            state.update(zip(self.keys, self._sums.tolist(), strict=True))
        state.update(self._host)
        if self.count:
            state["_count"] = float(self.count)
        return state

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        """Restore a window saved by `state_dict` or by today's trainer (its `window` entry).

        The sums go to the device with the next `add`, which also tells which keys are tensors.
        Keys starting with `_` other than `_count` (the trainer's timings) are the loop's, not
        losses, and are skipped. Restored sums are finite: a non-finite one is never saved.
        """
        self._clear()
        self._loaded = {k: float(v) for k, v in state.items() if not k.startswith("_")}
        self.count = int(state.get("_count", 0))
