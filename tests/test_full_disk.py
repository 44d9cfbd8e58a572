"""A full disk is one line: the file, the space it needed and the space free; no temporary file is
left, the previous checkpoint stays whole, and the run resumes cleanly once space is freed.

The space is taken away by injection (the free-space probe, or a write that raises ENOSPC); the
slow test fills a real tmpfs where this machine lets the tests mount one.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cyclegan import files
from cyclegan.checkpoints.file import load_checkpoint, save_checkpoint
from cyclegan.files import DiskFullError, atomic_write, atomic_write_bytes
from cyclegan.training.builder import train
from cyclegan.training.exit_policy import exit_on_failure

from .conftest import ROOT, TINY

RUN = [*TINY, "trainer.sample_every=0", "logger=file", "trainer.checkpoint_unit=step"]


def test_bytes_that_do_not_fit_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.pt"
    target.write_bytes(b"old")
    monkeypatch.setattr(files, "free_bytes", lambda folder: 3 * files.MB)
    with pytest.raises(DiskFullError) as err:
        atomic_write_bytes(target, b"x" * (5 * files.MB))
    assert str(err.value) == (
        f"not enough disk space to write '{target}': it needs 5.0 MB, 3.0 MB are free there; "
        "free some space (the previous file is intact) and run again"
    )
    assert err.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    "failure",
    [OSError(errno.ENOSPC, "No space left on device"), RuntimeError("unexpected pos 128 vs 0")],
    ids=["ENOSPC", "torch.save"],
)
def test_a_write_that_runs_out_of_space_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, failure: Exception
) -> None:
    target = tmp_path / "summary.json"
    target.write_text("{}")

    def write(tmp: Path) -> None:
        tmp.write_text("half")
        raise failure

    with pytest.raises(DiskFullError, match=rf"^not enough disk space to write '{target}': \d"):
        atomic_write(target, write)
    assert target.read_text() == "{}" and sorted(tmp_path.iterdir()) == [target]


def test_checkpoint_names_its_size(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(files, "free_bytes", lambda folder: 0)
    with pytest.raises(DiskFullError, match=r"it needs 0\.\d MB, 0\.0 MB are free there; .* "
                       r"continue with resume=auto$"):  # fmt: skip
        save_checkpoint(tmp_path / "step_0000001.pt", {"model": {"w": torch.zeros(1000)}})
    assert list(tmp_path.iterdir()) == []


def test_training_on_a_full_disk_stops_in_one_line_and_resumes_once_freed(
    compose_cfg, tmp_path: Path, monkeypatch, caplog
) -> None:
    writes = []
    real = files.free_bytes

    def filling(folder: Path) -> int:  # room for the first checkpoint only
        writes.append(folder)
        return real(folder) if len(writes) == 1 else 1024

    monkeypatch.setattr(files, "free_bytes", filling)
    ckpts = tmp_path / "run" / "checkpoints"
    with caplog.at_level("ERROR"), pytest.raises(SystemExit) as stop, exit_on_failure():
        train(compose_cfg(*RUN, "resume=auto"))
    assert stop.value.code == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith(f"not enough disk space to write '{ckpts / 'step_0000002.pt'}': ")
    assert "MB are free there" in line and line.endswith("continue with resume=auto")
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.pt", "step_0000001.pt"]
    assert load_checkpoint(ckpts / "last.pt")["step"] == 1  # whole, no temporary beside it

    monkeypatch.setattr(files, "free_bytes", real)  # space freed
    train(compose_cfg(*RUN, "resume=auto"))
    resumed = load_checkpoint(ckpts / "last.pt")
    train(compose_cfg(*RUN, f"paths.output_dir={tmp_path / 'straight'}"))
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    assert resumed["step"] == straight["step"] == 6
    for key, value in straight["model"].items():
        assert torch.equal(resumed["model"][key], value), key


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)  # fmt: skip
    return done.returncode == 0


@pytest.mark.slow
def test_a_real_full_tmpfs_is_one_line_and_resume_after_growing_it(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "3m"):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        args = [sys.executable, str(ROOT / "train.py"), *RUN, "+experiment=cpu_smoke",
                "trainer.checkpoint_every=2", f"paths.data_dir={tmp_path / 'data'}",
                f"hydra.run.dir={disk / 'run'}", "resume=auto", "trainer.progress=false"]  # fmt: skip
        full = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
        assert full.returncode == 2, full.stderr[-2000:]
        assert "Traceback" not in full.stderr + full.stdout
        errors = [line for line in full.stdout.splitlines() if "[ERROR]" in line]
        assert len(errors) == 1 and "not enough disk space to write" in errors[0]
        assert not list((disk / "run" / "checkpoints").glob(".*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=30m", str(disk)], check=True)
        again = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-2000:]
        assert load_checkpoint(disk / "run" / "checkpoints" / "last.pt")["step"] == 6
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
