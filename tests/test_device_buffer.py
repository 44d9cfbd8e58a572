"""DeviceReplayBuffer: ReplayBuffer's rule with the draws made on the device and no host read."""

from collections.abc import Iterator

import pytest
import torch

from cyclegan.parts.replay_buffer import DeviceReplayBuffer, ReplayBuffer, replay_rule
from tests.host_reads import forbid_host_reads


def images(ids: list[int]) -> torch.Tensor:
    """One (3, 2, 2) image per id, filled with the id, so every image can be told apart."""
    return torch.tensor(ids, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()


def ids(batch: torch.Tensor) -> list[int]:
    return [int(v) for v in batch[:, 0, 0, 0]]


def batches(seed: int, calls: int, max_batch: int) -> Iterator[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    next_id = 0
    for _ in range(calls):
        n = int(torch.randint(1, max_batch + 1, (), generator=g))
        yield images(list(range(next_id, next_id + n)))
        next_id += n


@pytest.mark.parametrize(("max_size", "swap_prob"), [(3, 0.5), (5, 0.9), (50, 0.5), (4, 1.0)])
def test_same_draws_give_replay_buffers_results(
    max_size: int, swap_prob: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fed the draws the device buffer made, ReplayBuffer's image-by-image loop returns and keeps
    exactly the same images, including when two images of a batch pick the same slot."""
    calls = list(batches(seed=max_size, calls=60, max_batch=6))
    new = DeviceReplayBuffer(max_size, swap_prob, generator=torch.Generator().manual_seed(1))
    draws = torch.Generator().manual_seed(1)  # replays the device buffer's draws
    new_out, per_image = [], []
    for batch in calls:
        n = batch.shape[0]
        u, r = torch.rand(n, generator=draws), torch.randint(max_size, (n,), generator=draws)
        per_image += list(zip(u.tolist(), r.tolist(), strict=True))
        new_out.append(ids(new.push_and_pop(batch)))

    # ReplayBuffer consumes u_j once full and r_j when it swaps: hand it image j's pair.
    old = ReplayBuffer(max_size, swap_prob)
    queue = iter(per_image)
    current = {"r": -1}
    swaps_with_collision = 0

    def fake_rand(*args: object, **kwargs: object) -> torch.Tensor:
        u, current["r"] = next(queue)
        return torch.tensor(u)

    def fake_randint(*args: object, **kwargs: object) -> torch.Tensor:
        return torch.tensor(current["r"])

    old_out = []
    for batch in calls:
        skipped = max(0, min(batch.shape[0], max_size - len(old)))  # images that fill draw nothing
        for _ in range(skipped):
            next(queue)
        with monkeypatch.context() as patch:
            patch.setattr(torch, "rand", fake_rand)
            patch.setattr(torch, "randint", fake_randint)
            got = ids(old.push_and_pop(batch))
        old_out.append(got)
        swaps_with_collision += sum(
            v in ids(batch) and v != b for v, b in zip(got, ids(batch), strict=True)
        )
    assert new_out == old_out
    assert ids(new.state_dict()["images"]) == ids(torch.stack(old.images))
    assert swaps_with_collision > 0  # the sequences do exercise within-batch slot collisions


def test_rule_with_a_collision_by_hand() -> None:
    """Full buffer [10, 11, 12]; images 0, 1, 2 all swap into slot 1: image 0 gets 11, image 1
    gets image 0, image 2 gets image 1, and slot 1 ends with image 2."""
    store = torch.cat([images([10, 11, 12]), images([-1])])  # row 3: scratch
    count = torch.tensor(3)
    out, rows = replay_rule(
        store, count, images([0, 1, 2]), torch.zeros(3), torch.tensor([1, 1, 1]), 0.5
    )
    assert ids(out) == [11, 0, 1]
    assert rows.tolist() == [3, 3, 1]


def test_rule_reads_an_image_stored_earlier_in_the_same_batch() -> None:
    """Slots 0..1 filled; images 0 fills slot 2, image 1 then swaps slot 2 and gets image 0."""
    store = torch.cat([images([10, 11, -1]), images([-1])])
    out, rows = replay_rule(
        store, torch.tensor(2), images([0, 1]), torch.tensor([0.9, 0.1]), torch.tensor([0, 2]), 0.5
    )
    assert ids(out) == [0, 0]
    assert rows.tolist() == [3, 2]


def test_same_as_replay_buffer_from_one_generator_state_while_filling() -> None:
    new = DeviceReplayBuffer(6, generator=torch.Generator().manual_seed(0))
    old = ReplayBuffer(6, generator=torch.Generator().manual_seed(0))
    for batch in (images([0, 1]), images([2, 3, 4]), images([5])):
        assert torch.equal(new.push_and_pop(batch), old.push_and_pop(batch))
    assert torch.equal(new.state_dict()["images"], old.state_dict()["images"])


def test_swaps_about_half_once_full_and_never_grows() -> None:
    buf = DeviceReplayBuffer(50, generator=torch.Generator().manual_seed(0))
    buf.push_and_pop(images([-1] * 50))
    returned_old = 0
    for i in range(100):
        out = buf.push_and_pop(images([4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3]))
        returned_old += sum(a != b for a, b in zip(ids(out), range(4 * i, 4 * i + 4), strict=True))
        assert len(buf) == 50
    assert 0.4 * 400 < returned_old < 0.6 * 400
    assert buf.store is not None and buf.store.shape == (51, 3, 2, 2)


def test_swap_probability_extremes() -> None:
    never = DeviceReplayBuffer(2, swap_prob=0.0)
    always = DeviceReplayBuffer(2, swap_prob=1.0)
    for buf in (never, always):
        buf.push_and_pop(images([0, 1]))
    assert ids(never.push_and_pop(images([7]))) == [7]
    assert ids(always.push_and_pop(images([7]))) in ([0], [1])
    assert sorted(ids(always.state_dict()["images"])) in ([0, 7], [1, 7])


def test_size_zero_passes_through_and_output_is_detached() -> None:
    assert ids(DeviceReplayBuffer(0).push_and_pop(images([3, 4]))) == [3, 4]
    x = images([1]).requires_grad_()
    assert not DeviceReplayBuffer(2).push_and_pop(x * 2).requires_grad


def test_no_host_read_while_filling_and_swapping() -> None:
    buf = DeviceReplayBuffer(3, generator=torch.Generator().manual_seed(0))
    with forbid_host_reads():
        outs = [buf.push_and_pop(images([2 * i, 2 * i + 1])) for i in range(10)]
    assert len(buf) == 3
    assert ids(outs[0]) == [0, 1]  # filling: returned as they are


def test_loads_a_replay_buffer_checkpoint_and_continues_like_it(tmp_path) -> None:
    """Today's checkpoints hold ReplayBuffer.state_dict(); the device buffer loads them (and the
    other way round) through torch.load(weights_only=True)."""
    old = ReplayBuffer(4, generator=torch.Generator().manual_seed(0))
    for i in range(3):
        old.push_and_pop(images([2 * i, 2 * i + 1]))
    torch.save({"buffers": {"A": old.state_dict()}}, tmp_path / "old.pt")
    state = torch.load(tmp_path / "old.pt", weights_only=True)["buffers"]["A"]

    new = DeviceReplayBuffer(4)
    new.load_state_dict(state)
    assert len(new) == 4
    assert ids(new.state_dict()["images"]) == ids(torch.stack(old.images))

    back = ReplayBuffer(4)
    back.load_state_dict(new.state_dict())
    assert ids(torch.stack(back.images)) == ids(torch.stack(old.images))
    # Two device buffers restored from one state, with one generator state, continue identically.
    twin = DeviceReplayBuffer(4, generator=torch.Generator().manual_seed(5))
    new.generator = torch.Generator().manual_seed(5)
    twin.load_state_dict(state)
    for i in range(5):
        batch = images([100 + i, 200 + i])
        assert ids(new.push_and_pop(batch)) == ids(twin.push_and_pop(batch))


def test_partial_and_empty_states_and_a_smaller_buffer() -> None:
    old = ReplayBuffer(5)
    old.push_and_pop(images([0, 1]))
    buf = DeviceReplayBuffer(5, generator=torch.Generator().manual_seed(0))
    buf.load_state_dict(old.state_dict())
    assert len(buf) == 2
    assert ids(buf.push_and_pop(images([2, 3]))) == [2, 3]  # still filling: slots 2 and 3
    assert ids(buf.state_dict()["images"]) == [0, 1, 2, 3]

    smaller = DeviceReplayBuffer(3)
    smaller.load_state_dict(buf.state_dict())
    assert ids(smaller.state_dict()["images"]) == [0, 1, 2]

    buf.load_state_dict(ReplayBuffer(5).state_dict())
    assert len(buf) == 0 and buf.store is None


def test_bad_arguments_name_the_fix() -> None:
    with pytest.raises(ValueError, match="size must be >= 0"):
        DeviceReplayBuffer(-1)
    with pytest.raises(ValueError, match=r"swap_prob must be in \[0, 1\]"):
        DeviceReplayBuffer(4, swap_prob=1.5)
    with pytest.raises(ValueError, match="create it with device='cpu'"):
        DeviceReplayBuffer(4, device="meta").push_and_pop(images([1]))


def test_fakes_of_several_sizes_continue_per_image_and_resume_exactly() -> None:
    """preprocess=scale_width or none (batch 1): each fake keeps its image's shape, which one store
    cannot hold; the buffer hands over to a per-image ReplayBuffer, images kept, state exact."""

    def fake(value: float, size: int) -> torch.Tensor:
        return torch.full((1, 3, size, size + 1), value)

    buf = DeviceReplayBuffer(3, generator=torch.Generator().manual_seed(0))
    buf.push_and_pop(fake(0.0, 2))
    out = buf.push_and_pop(fake(1.0, 4))  # another size: hand-over, still filling
    assert buf.by_image is not None and buf.store is None
    assert torch.equal(out, fake(1.0, 4)) and len(buf) == 2
    for i in range(3):
        buf.push_and_pop(fake(2.0 + i, 2 + 2 * (i % 2)))
    state = buf.state_dict()
    assert isinstance(state["images"], list) and "host_rng" in state

    twin = DeviceReplayBuffer(3, generator=torch.Generator().manual_seed(9))
    twin.load_state_dict(state)
    assert [img.shape for img in twin.by_image.images] == [img.shape for img in buf.by_image.images]
    for i in range(6):  # full: swaps drawn from the restored per-image generator
        batch = fake(10.0 + i, 2 + 2 * (i % 2))
        assert torch.equal(buf.push_and_pop(batch), twin.push_and_pop(batch))
