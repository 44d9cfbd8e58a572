"""The config resolvers: directory stamps unique even when two runs start in the same second, and
the metric a run optimizes by default."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cyclegan.config import run_identity
from cyclegan.config.resolvers import register_resolvers
from cyclegan.config.run_identity import claim_stamped_dir, unique_stamp

from .conftest import ROOT


def test_stamps_of_one_second_differ() -> None:
    t = datetime(2026, 11, 30, 18, 20, 1, 123456)
    assert unique_stamp(now=t, pid=4821) == "2026-11-30_18-20-01_123456-4821"
    same_second = t.replace(microsecond=654321)
    assert unique_stamp(now=same_second, pid=4821) != unique_stamp(now=t, pid=4821)
    assert unique_stamp(now=t, pid=4822) != unique_stamp(now=t, pid=4821)  # same instant
    assert unique_stamp("%Y%m%d", now=t, pid=7) == "20261130_123456-7"
    # Sorted by name is sorted by start time (within a second too).
    later = [t.replace(microsecond=m) for m in (5, 50, 500000)]
    names = [unique_stamp(now=x, pid=1) for x in later]
    assert names == sorted(names)


def test_resolver_gives_one_stamp_per_config() -> None:
    register_resolvers()
    register_resolvers()  # twice is fine (train.py and a test may both call it)
    cfg = OmegaConf.create({"a": "out/${stamp:%Y-%m-%d_%H-%M-%S}", "b": "${a}/x", "c": "${stamp:}"})
    assert cfg.b == f"{cfg.a}/x" and cfg.a == cfg.a  # cached: every use the same
    assert cfg.a.startswith(f"out/{datetime.now():%Y-%m-%d}_")
    other = OmegaConf.create({"a": "out/${stamp:%Y-%m-%d_%H-%M-%S}"})
    assert other.a != cfg.a  # a new config (a new run) gets a new stamp


def test_two_sweeps_started_in_one_second_get_two_directories(tmp_path: Path, monkeypatch) -> None:
    # A coarse clock: the first three readings are the same instant, so the second claim finds
    # its name taken and must stamp again.
    t = datetime(2026, 11, 30, 18, 20, 1, 500)
    readings = iter([t, t, t, t.replace(microsecond=900)])

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return next(readings)

    monkeypatch.setattr(run_identity, "datetime", Clock)
    a, b = claim_stamped_dir(tmp_path), claim_stamped_dir(tmp_path)
    assert a.name.startswith("2026-11-30_18-20-01_000500-") and a.is_dir()
    assert b.name.startswith("2026-11-30_18-20-01_000900-") and b.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [a.name, b.name]


def test_two_processes_started_at_once_get_different_stamps(tmp_path: Path) -> None:
    code = (
        "from omegaconf import OmegaConf\n"
        "from cyclegan.config.resolvers import register_resolvers\n"
        "register_resolvers()\n"
        "print(OmegaConf.create({'d': '${stamp:%Y-%m-%d_%H-%M-%S}'}).d)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    stamps = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(stamps[0]) > 20 and stamps[0] != stamps[1]


@pytest.mark.parametrize(
    ("paired", "metric", "mode", "direction"),
    [(True, "eval/psnr_AB", "max", "maximize"), (False, "eval/kid_AB", "min", "minimize")],
)
def test_default_metric_follows_the_dataset(
    paired: bool, metric: str, mode: str, direction: str
) -> None:
    register_resolvers()
    cfg = OmegaConf.create(
        {
            "dataset": {"paired_test": paired},
            "optimized_metric": "${default_metric:${dataset.paired_test}}",
            "optimized_mode": "${default_mode:${optimized_metric}}",
            "direction": "${optuna_direction:${optimized_mode}}",
        }
    )
    assert (cfg.optimized_metric, cfg.optimized_mode) == (metric, mode)
    assert cfg.direction == direction
    cfg.optimized_metric = "eval/fid_BA"  # a metric named by the user: its direction follows
    assert cfg.optimized_mode == "min"
    cfg.optimized_metric = "final/train/loss_cycle"
    assert cfg.optimized_mode == "min"
    cfg.optimized_metric = "eval/ssim_BA"
    assert cfg.optimized_mode == "max"
