"""LossWindow: per-step losses summed on the device, read back once per log line."""

import math

import pytest
import torch

from cyclegan.training.loss_window import LossWindow
from tests.host_reads import forbid_host_reads


def step_losses(i: int) -> dict[str, torch.Tensor | float]:
    return {"loss_G": torch.tensor(1.0 + i), "loss_D": torch.tensor(0.5 * i), "lr": 1e-3 / (i + 1)}


def test_means_match_host_arithmetic_and_the_window_empties() -> None:
    window = LossWindow()
    for i in range(4):
        window.add(step_losses(i))
    assert window.count == 4
    means = window.pop_means()
    assert means["loss_G"] == pytest.approx((1 + 2 + 3 + 4) / 4)
    assert means["loss_D"] == pytest.approx((0 + 0.5 + 1 + 1.5) / 4)
    assert means["lr"] == pytest.approx(sum(1e-3 / (i + 1) for i in range(4)) / 4)
    assert window.count == 0 and window.pop_means() == {}
    window.add(step_losses(10))
    assert window.pop_means()["loss_G"] == pytest.approx(11.0)


def test_adding_reads_nothing_back() -> None:
    window = LossWindow()
    with forbid_host_reads():
        for i in range(3):
            window.add(step_losses(i))
    assert window.pop_means()["loss_G"] == pytest.approx(2.0)


def test_reduce_is_applied_to_the_sums_before_reading() -> None:
    window = LossWindow()
    window.add(step_losses(1))
    means = window.pop_means(reduce=lambda sums: sums * 3)  # e.g. a sum over three ranks
    assert means["loss_G"] == pytest.approx(6.0)
    assert means["lr"] == pytest.approx(5e-4)  # host values are this process's own


def test_first_nonfinite_step_and_losses() -> None:
    window = LossWindow()
    for i in range(5):
        losses = step_losses(i)
        if i == 2:
            losses["loss_D"] = torch.tensor(float("nan"))
        if i == 3:
            losses["loss_G"] = torch.tensor(float("inf"))  # later: not the first
        window.add(losses)
    index, bad = window.first_nonfinite()
    assert index == 2
    assert list(bad) == ["loss_D"] and math.isnan(bad["loss_D"])
    window.pop_means()
    window.add(step_losses(0))
    assert window.first_nonfinite() is None


def test_state_round_trip_and_todays_trainer_window() -> None:
    window = LossWindow()
    for i in range(2):
        window.add(step_losses(i))
    state = window.state_dict()
    assert state == pytest.approx({"loss_G": 3.0, "loss_D": 0.5, "lr": 1.5e-3, "_count": 2.0})
    # Today's trainer saves the same sums plus its timings; both load.
    for saved in (state, {**state, "_data_s": 0.1, "_step_s": 2.0}):
        restored = LossWindow()
        restored.load_state_dict(saved)
        assert restored.state_dict() == pytest.approx(state)
        restored.add(step_losses(2))
        means = restored.pop_means()
        assert means["loss_G"] == pytest.approx((1 + 2 + 3) / 3)
        assert means["lr"] == pytest.approx((1e-3 + 5e-4 + 1e-3 / 3) / 3)


def test_changed_keys_are_an_error() -> None:
    window = LossWindow()
    window.add({"loss_G": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="must report the same losses"):
        window.add({"loss_G": torch.tensor(1.0), "loss_D": torch.tensor(1.0)})
