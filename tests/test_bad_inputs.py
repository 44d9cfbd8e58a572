"""The bad-input matrix, end to end through `train`: each case is either a one-line error that
names the fix, or a counted, logged skip where training should go on (see README, "Errors")."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException
from PIL import Image

from cyclegan.checkpoints.file import CheckpointError, load_checkpoint
from cyclegan.config.schema import ConfigError
from cyclegan.data.folder import DatasetNotFoundError
from cyclegan.files import DiskFullError
from cyclegan.training.builder import train
from cyclegan.training.exit_policy import OutputDirError

from .conftest import TINY

# A user's own dataset: horse2zebra's config pointed at a folder made here.
OWN = [o for o in TINY if not o.startswith("dataset.")] + [
    "dataset=horse2zebra",
    "dataset.img_size=32",
    "trainer.eval_fid=false",  # FID/KID (on by default without ground truth) would fetch Inception
]


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message
    return message


def rgb(size: tuple[int, int] = (40, 36), seed: int = 0) -> Image.Image:
    return Image.fromarray(
        np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    )


def make_messy_dataset(root: Path) -> None:
    """Every awkward-but-usable file a real folder contains, plus one corrupt image."""
    for split in ("trainA", "trainB", "testA", "testB"):
        (root / split).mkdir(parents=True)
        rgb(seed=1).save(root / split / "rgb.jpg")
    a = root / "trainA"
    rgb(seed=2).convert("L").save(a / "gray.png")
    rgb(seed=3).convert("RGBA").save(a / "rgba.png")
    rgb(seed=4).convert("P").save(a / "palette.png")
    Image.fromarray(np.full((30, 30), 40000, dtype=np.uint16)).save(a / "sixteen.png")
    rgb((12, 9), seed=5).save(a / "tiny.png")  # smaller than the 32 px crop: upscaled first
    (a / "notes.txt").write_text("not an image")
    (a / ".DS_Store").write_bytes(b"\0\1")
    good = a / "rgb.jpg"
    (a / "truncated.jpg").write_bytes(good.read_bytes()[:200])


def test_messy_folder_trains_and_counts_the_skipped_file(compose_cfg, tmp_path: Path) -> None:
    root = tmp_path / "own"
    make_messy_dataset(root)
    train(
        compose_cfg(
            *OWN, f"dataset.root={root}", "trainer.steps_per_epoch=7", "schedule.n_epochs=1"
        )
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["step"] == 7  # all seven A files visited (six usable, the broken one swapped)
    assert summary["data/skipped_images"] == 1


def test_missing_dataset_folder_names_the_download_command(compose_cfg, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        train(compose_cfg(*OWN))
    assert "python -m cyclegan.data.download horse2zebra" in one_line(err.value)


def test_domain_folder_without_images(compose_cfg, tmp_path: Path) -> None:
    root = tmp_path / "own"
    make_messy_dataset(root)
    for f in (root / "trainB").iterdir():
        f.unlink()
    (root / "trainB" / "readme.md").write_text("todo")
    with pytest.raises(DatasetNotFoundError) as err:
        train(compose_cfg(*OWN, f"dataset.root={root}"))
    assert "no images in" in one_line(err.value) and "trainB" in str(err.value)


def test_unknown_dataset_or_model_name(compose_cfg) -> None:
    for override in ("dataset=horse2zebro", "model=unet"):
        with pytest.raises(ConfigCompositionException, match="Could not find"):
            compose_cfg(override)


def test_decay_epoch_not_before_n_epochs(compose_cfg) -> None:
    with pytest.raises(ConfigError) as err:
        train(compose_cfg(*TINY, "schedule.decay_epoch=2"))
    assert "schedule.decay_epoch=2 must be < schedule.n_epochs=2" in one_line(err.value)


def test_output_dir_not_writable(compose_cfg, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OutputDirError) as err:
        train(compose_cfg(*TINY, f"paths.output_dir={blocker / 'run'}"))
    assert "cannot write to the output folder" in one_line(err.value)


@pytest.mark.parametrize("kind", ["foreign", "truncated", "missing"])
def test_resume_from_a_bad_file(kind: str, compose_cfg, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    if kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(1)}}, bad)
    elif kind == "truncated":
        train(compose_cfg(*TINY, "trainer.sample_every=0"))
        whole = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
        bad.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CheckpointError) as err:
        train(compose_cfg(*TINY, f"resume={bad}", f"paths.output_dir={tmp_path / 'other'}"))
    expected = {
        "foreign": "not a training checkpoint",
        "truncated": "not a readable checkpoint",
        "missing": "no such file",
    }
    assert expected[kind] in one_line(err.value)


def test_full_disk_keeps_the_previous_checkpoint(compose_cfg, tmp_path: Path, monkeypatch) -> None:
    train(compose_cfg(*TINY, "trainer.sample_every=0"))
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    before = last.read_bytes()
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:  # the bytes reach the temporary file, then the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(DiskFullError) as err:
        train(compose_cfg(*TINY, "trainer.sample_every=0", "schedule.n_epochs=3", "resume=auto"))
    message = one_line(err.value)
    assert message.startswith("not enough disk space to write '") and "MB are free" in message
    assert message.endswith("the previous file is intact) and continue with resume=auto")
    monkeypatch.setattr(os, "fsync", real_fsync)
    monkeypatch.undo()
    assert last.read_bytes() == before
    assert load_checkpoint(last)["step"] == 6
    assert not [p for p in last.parent.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ found when tried as a new user


@pytest.mark.parametrize(
    ("override", "key"),
    [("seed=-5", "seed=-5"), ("dataset.img_size=1000000", "dataset.img_size=1000000")],
)
def test_values_that_used_to_end_in_a_traceback_fail_first(
    override: str, key: str, compose_cfg, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as err:
        train(compose_cfg(*TINY, override))
    assert one_line(err.value).startswith(key)
    assert not (tmp_path / "data").exists()  # nothing was rendered or written


def test_constant_schedule_ignores_decay_epoch(compose_cfg, tmp_path: Path) -> None:
    train(compose_cfg(*TINY, "schedule=constant", "schedule.n_epochs=1", "logger=file"))
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {r["train/lr"] for r in rows if "train/lr" in r} == {2e-4}


def test_folder_dataset_needs_a_root_with_domain_folders(compose_cfg, tmp_path: Path) -> None:
    own = [o for o in TINY if not o.startswith("dataset.")] + ["dataset=folder"]
    own += ["trainer.eval_fid=false"]  # no Inception (FID/KID are on by default without truth)
    with pytest.raises(ConfigError) as err:
        train(compose_cfg(*own))
    assert "dataset.root" in one_line(err.value) and "dataset=folder dataset.root=PATH" in str(
        err.value
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        train(compose_cfg(*own, f"dataset.root={tmp_path / 'empty'}"))
    assert "trainA" in one_line(err.value)
    make_messy_dataset(tmp_path / "mine")
    train(compose_cfg(*own, f"dataset.root={tmp_path / 'mine'}", "dataset.img_size=32"))
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def test_zero_residual_blocks_train(compose_cfg, tmp_path: Path) -> None:
    """Both references build a generator without residual blocks; so do we."""
    train(compose_cfg(*TINY, "model.n_residual_blocks=0"))
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 6 and not any(".block." in k for k in state["model"])


def test_a_run_removes_stale_temporary_checkpoints(compose_cfg, tmp_path: Path) -> None:
    """kill -9 during a checkpoint write leaves `.step_*.pt.*.tmp`; the next start cleans up."""
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    stale = [checkpoints / ".step_0000003.pt.k2j3h.tmp", checkpoints / ".last.pt.x9.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 1000)
    keep = checkpoints / "notes.txt"
    keep.write_text("mine")
    train(compose_cfg(*TINY, "resume=auto"))
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"
    assert not list(checkpoints.glob(".*.tmp"))


def test_images_too_small_for_the_default_discriminator_fail_first(
    compose_cfg, tmp_path: Path
) -> None:
    """16 px passes the generator's multiple-of-4 rule, but PyTorch-GAN's discriminator would
    normalise a 1x1 map (a traceback at the first step); say so before any work."""
    with pytest.raises(ConfigError) as err:
        train(compose_cfg(*TINY, "dataset.img_size=16"))
    assert "dataset.img_size >= 32" in one_line(err.value)
    assert not (tmp_path / "data").exists()
