"""The lockstep harnesses (benchmarks/cut_lockstep.py, cyclegan_lockstep.py): their drift rule,
and, where the reference checkouts are on this machine, a few steps against them (slow).

The slow tests need the reference code, which is never part of this repository: set
CUT_REFERENCE to a checkout of taesungp/contrastive-unpaired-translation and PYTORCH_GAN_REFERENCE
to one of eriklindernoren/PyTorch-GAN (benchmarks/README.md says how to get them). Without them the
tests skip and say so: CI has no network to fetch them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import lockstep_common as lc  # noqa: E402

CUT_REF = Path(os.environ.get("CUT_REFERENCE", "/work/ref-cut"))
GAN_REF = Path(os.environ.get("PYTORCH_GAN_REFERENCE", "/work/ref-pytorchgan"))


def _snap(weight: float, grad: float, loss: float) -> lc.Snapshot:
    return lc.Snapshot(
        losses={"loss_G": loss},
        grads={"G.w": torch.tensor([grad, 0.0])},
        weights={"G.w": torch.tensor([weight, 1.0])},
    )


def test_a_gap_within_ten_times_the_drift_is_not_parted() -> None:
    r1, r2 = _snap(1.0, 1.0, 1.0), _snap(1.0 + 1e-4, 1.0 + 1e-4, 1.0 + 1e-4)
    p = _snap(1.0 + 5e-4, 1.0 - 9e-4, 1.0)
    row = lc.compare(3, r1, r2, p, ["loss_G"])
    assert row.gap["weights"] == (pytest.approx(5e-4, rel=1e-3), "G.w")
    assert row.drift["grads"][0] == pytest.approx(1e-4, rel=1e-3)
    assert row.parted() == []
    assert lc.verdict([row]).startswith("within drift for all 1 steps")


def test_the_first_parted_step_and_tensor_are_named() -> None:
    r1, r2 = _snap(1.0, 1.0, 1.0), _snap(1.0, 1.0, 1.0)  # no drift at all
    rows = [
        lc.compare(0, r1, r2, _snap(1.0 + 5e-7, 1.0, 1.0), ["loss_G"]),  # under the floor
        lc.compare(1, r1, r2, _snap(1.0, 1.0 + 1e-3, 1.0), ["loss_G"]),
    ]
    assert [r.parted() for r in rows] == [[], ["grads"]]
    assert lc.verdict(rows) == "PARTED at step 1: grads gap 1.0e-03 at G.w > 10 x drift 0.0e+00"
    assert "| 1 |" in lc.table(rows) and "grads" in lc.table(rows).splitlines()[-1]


def test_the_drift_envelope_is_the_largest_drift_so_far() -> None:
    """Once two runs of the same code have drifted 0.5 apart, a later step whose drift happens to
    be small does not make an equal gap a parting; a gap beyond 10x the envelope still is."""
    r1 = _snap(1.0, 1.0, 1.0)
    first = lc.compare(0, r1, _snap(1.0, 1.0, 1.5), _snap(1.0, 1.0, 1.0), ["loss_G"])
    calm = lc.compare(1, r1, _snap(1.0, 1.0, 1.01), _snap(1.0, 1.0, 4.0), ["loss_G"], first)
    assert calm.envelope["losses"] == pytest.approx(0.5)
    assert calm.parted() == []
    wild = lc.compare(2, r1, r1, _snap(1.0, 1.0, 7.0), ["loss_G"], calm)
    assert wild.parted() == ["losses"]
    assert "10 x drift 5.0e-01" in lc.verdict([first, calm, wild])


def test_nan_is_parted_and_differently_named_runs_are_refused() -> None:
    r1 = _snap(1.0, 1.0, 1.0)
    row = lc.compare(0, r1, r1, _snap(float("nan"), 1.0, 1.0), ["loss_G"])
    assert row.parted() == ["weights"]
    other = lc.Snapshot(losses={"loss_G": 1.0}, grads={"D.w": torch.zeros(2)}, weights={})
    with pytest.raises(KeyError, match="different things"):
        lc.compare(0, r1, r1, other, ["loss_G"])


def test_snapshot_strips_the_dataparallel_prefix_and_zero_fills_missing_grads() -> None:
    net = torch.nn.DataParallel(torch.nn.Linear(2, 1))
    snap = lc.snapshot({"D": net}, {"loss_D": torch.tensor(0.5)})
    assert set(snap.weights) == {"D.weight", "D.bias"}
    assert torch.equal(snap.grads["D.bias"], torch.zeros(1))
    assert snap.losses == {"loss_D": 0.5}


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / script), *args, "--every", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_cut_steps_with_the_reference(mode: str, tmp_path: Path) -> None:
    if not (CUT_REF / "models" / "cut_model.py").is_file():
        pytest.skip(f"no CUT reference checkout at {CUT_REF} (set CUT_REFERENCE)")
    out = _run("cut_lockstep.py", "--reference", str(CUT_REF), "--mode", mode, "--steps", "4",
               "--size", "32", "--ngf", "8", "--num_patches", "64", "--netF_nc", "32",
               "--data_dir", str(tmp_path))  # fmt: skip
    assert "max |reference - project| = 0.0e+00" in out  # same pixels, crops and flips
    assert "within drift for all 4 steps" in out, out


@pytest.mark.slow
def test_cyclegan_steps_with_pytorch_gan(tmp_path: Path) -> None:
    if not (GAN_REF / "implementations" / "cyclegan" / "cyclegan.py").is_file():
        pytest.skip(f"no PyTorch-GAN checkout at {GAN_REF} (set PYTORCH_GAN_REFERENCE)")
    out = _run("cyclegan_lockstep.py", "--reference", str(GAN_REF), "--steps", "3",
               "--blocks", "1", "--drift", "onednn", "--data_dir", str(tmp_path))  # fmt: skip
    assert "within drift for all 3 steps" in out, out


def test_drift_settings() -> None:
    assert lc.drift_setting("threads", 2) == (2, True)
    assert lc.drift_setting("onednn", 2) == (1, False)
    args = argparse.Namespace(threads=2, drift="onednn")
    from cut_lockstep import drift_name

    assert drift_name(args) == "1 thread, oneDNN off"
