"""The host-read guard itself: every kind of read it promises to catch raises, tensor math does not."""

from collections.abc import Callable

import numpy as np
import pytest
import torch

from tests.host_reads import HostReadError, forbid_host_reads

x = torch.tensor([1.0, -2.0, 3.0])

READS: dict[str, Callable[[], object]] = {
    "item": lambda: x.sum().item(),
    "float": lambda: float(x.sum()),
    "int": lambda: int(x[0]),
    "bool": lambda: bool(x.sum() > 0),
    "if": lambda: 1 if x[0] > 0 else 0,
    "tolist": lambda: x.tolist(),
    "numpy": lambda: x.numpy(),
    "np.asarray": lambda: np.asarray(x),
    "equal": lambda: torch.equal(x, x),
    "nonzero": lambda: torch.nonzero(x),
    "mask index": lambda: x[x > 0],
    "mask assign": lambda: x.clone().__setitem__(x > 0, 0.0),
    "masked_select": lambda: torch.masked_select(x, x > 0),
    "unique": lambda: torch.unique(x),
    "repeat_interleave": lambda: torch.repeat_interleave(torch.tensor([1, 2])),
}


@pytest.mark.parametrize("name", sorted(READS))
def test_each_host_read_raises(name: str) -> None:
    with forbid_host_reads(), pytest.raises(HostReadError):
        READS[name]()


def test_device_side_math_passes_and_gives_the_same_values() -> None:
    def work() -> torch.Tensor:
        w = torch.randn(3, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
        y = torch.where(x > 0, x, 0.0) @ w
        y.sum().backward()
        return torch.cat([y.detach(), w.grad.flatten(), x[torch.tensor([2, 0])]])

    expected = work()
    with forbid_host_reads():
        got = work()
    assert torch.equal(got, expected)


def test_guard_is_lifted_after_the_block() -> None:
    with forbid_host_reads():
        pass
    assert x.sum().item() == 2.0
    assert x.tolist() == [1.0, -2.0, 3.0]
