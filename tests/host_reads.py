"""A guard that fails on any read of a tensor's value by the host, for checking on the CPU that a
training step would never wait for the GPU.

On CUDA such reads are synchronisations (the host stops until the GPU has caught up), which
`torch.cuda.set_sync_debug_mode("error")` catches on a GPU. On the CPU there is no device to wait
for, so the guard looks for the operations themselves: `.item()`, `float()`, `int()`, `bool()`
(all dispatch to `aten._local_scalar_dense`), `torch.equal`, ops whose output shape depends on the
values (`nonzero`, boolean-mask indexing, `masked_select`, `unique`, `repeat_interleave` without an
output size), and the Python-level copies `.tolist()`, `.numpy()` and `__array__`.

    with forbid_host_reads():
        method.training_step(real_A, real_B)   # raises HostReadError at the first read
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Ops that hand a value to the host (or size their output by values, which needs one).
_READS = {
    aten._local_scalar_dense,  # .item(), float(), int(), bool(), tensor in `if`
    aten.is_nonzero,
    aten.equal,
    aten.nonzero,
    aten.masked_select,
    aten._unique,
    aten._unique2,
    aten.unique_dim,
    aten.unique_consecutive,
    aten.unique_dim_consecutive,
}


class HostReadError(AssertionError):
    """A tensor value was read by the host inside a guarded region."""


class _ForbidHostReads(TorchDispatchMode):
    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        packet = func.overloadpacket
        if packet in _READS:
            raise HostReadError(f"host read of a tensor value: {func}")
        if (
            packet is aten.repeat_interleave
            and func._overloadname in ("Tensor", "self_Tensor")
            and kwargs.get("output_size") is None
        ):
            raise HostReadError(f"output sized by tensor values: {func} without output_size")
        if packet in (aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_):
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(
                isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                for i in indices
            ):
                raise HostReadError(f"boolean-mask indexing (a nonzero on the host): {func}")
        return func(*args, **kwargs)


def _refuse(name: str) -> Any:
    def method(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        raise HostReadError(f"host read of a tensor value: Tensor.{name}()")

    return method


@contextlib.contextmanager
def forbid_host_reads() -> Iterator[None]:
    """Raise `HostReadError` at the first host read of a tensor's value inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("tolist", "numpy", "__array__"):
            patch.setattr(torch.Tensor, name, _refuse(name))
        with _ForbidHostReads():
            yield
