"""Learning-rate values at chosen epochs, through a real optimizer and LambdaLR."""

import itertools
import math

import pytest
import torch

from cyclegan.parts.schedule import LRMultiplier


def lrs(policy: str, n_epochs: int, decay_epoch: int, base: float = 2e-4) -> list[float]:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, LRMultiplier(policy, n_epochs, decay_epoch))
    values = []
    for _ in range(n_epochs + 1):
        values.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return values


def test_linear_decay_matches_the_seed() -> None:
    values = lrs("linear", 200, 100)
    assert values[0] == values[99] == values[100] == pytest.approx(2e-4)
    assert values[150] == pytest.approx(1e-4)
    assert values[199] == pytest.approx(2e-4 / 100)  # last epoch trains at a small, non-zero rate
    assert values[200] == pytest.approx(0.0)
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_constant_and_cosine() -> None:
    assert set(lrs("constant", 10, 5)) == {2e-4}
    cos = lrs("cosine", 10, 4)
    assert cos[4] == pytest.approx(2e-4)
    assert cos[7] == pytest.approx(2e-4 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cos[10] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("n_epochs", "decay_epoch"), [(10, 10), (10, 12), (10, -1), (0, 0)])
def test_invalid_schedules_raise(n_epochs: int, decay_epoch: int) -> None:
    with pytest.raises(ValueError, match="n_epochs"):
        LRMultiplier("linear", n_epochs, decay_epoch)


def test_per_step_decay_matches_the_seed_at_epoch_boundaries() -> None:
    """Stepped per optimizer step at fractional epochs: seed values at each epoch start."""
    rule = LRMultiplier("linear", 4, 2)
    rule.steps_per_epoch = 10
    assert [rule(e * 10) for e in range(5)] == [1.0, 1.0, 1.0, 0.5, 0.0]
    assert rule(25) == pytest.approx(0.75)  # halfway through the first decaying epoch
    assert rule(19) == 1.0
