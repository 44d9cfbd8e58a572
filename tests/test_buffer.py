"""Replay-buffer semantics: fill, then swap with probability p, bounded size, restorable state."""

import torch

from cyclegan.parts.replay_buffer import ReplayBuffer


def batch(value: float, n: int = 1) -> torch.Tensor:
    return torch.full((n, 3, 2, 2), value)


def test_returns_new_images_while_filling_and_never_grows_past_max() -> None:
    buf = ReplayBuffer(max_size=5, generator=torch.Generator().manual_seed(0))
    for i in range(5):
        out = buf.push_and_pop(batch(float(i)))
        assert torch.equal(out, batch(float(i)))
    assert len(buf) == 5
    for i in range(20):
        buf.push_and_pop(batch(100.0 + i, n=2))
        assert len(buf) == 5


def test_swaps_about_half_once_full() -> None:
    buf = ReplayBuffer(max_size=50, generator=torch.Generator().manual_seed(0))
    buf.push_and_pop(batch(-1.0, n=50))  # fill with -1
    returned_old = 0
    trials = 400
    for i in range(trials):
        out = buf.push_and_pop(batch(float(i)))
        returned_old += int(out[0, 0, 0, 0].item() != float(i))
    assert 0.4 * trials < returned_old < 0.6 * trials
    # Every swapped-in image is still stored or was handed out later: values come from the inputs.
    stored = {img[0, 0, 0].item() for img in buf.images}
    assert stored <= {-1.0, *map(float, range(trials))}


def test_swap_probability_extremes() -> None:
    never = ReplayBuffer(max_size=2, swap_prob=0.0, generator=torch.Generator().manual_seed(0))
    always = ReplayBuffer(max_size=2, swap_prob=1.0, generator=torch.Generator().manual_seed(0))
    for buf in (never, always):
        buf.push_and_pop(batch(0.0, n=2))
    assert torch.equal(never.push_and_pop(batch(7.0)), batch(7.0))
    assert torch.equal(always.push_and_pop(batch(7.0)), batch(0.0))
    assert sorted(img[0, 0, 0].item() for img in always.images) == [0.0, 7.0]


def test_returned_batch_is_detached() -> None:
    buf = ReplayBuffer(2)
    x = batch(1.0).requires_grad_()
    assert not buf.push_and_pop(x * 2).requires_grad


def test_size_zero_passes_through() -> None:
    buf = ReplayBuffer(0)
    assert torch.equal(buf.push_and_pop(batch(3.0, n=2)), batch(3.0, n=2))
    assert len(buf) == 0


def test_state_dict_round_trip() -> None:
    buf = ReplayBuffer(4, generator=torch.Generator().manual_seed(0))
    buf.push_and_pop(torch.arange(3 * 12, dtype=torch.float32).view(3, 3, 2, 2))
    restored = ReplayBuffer(4)
    restored.load_state_dict(buf.state_dict())
    assert len(restored) == 3
    assert all(torch.equal(a, b) for a, b in zip(buf.images, restored.images, strict=True))
