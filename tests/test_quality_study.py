"""benchmarks/quality_study.py reads a study's multiruns back correctly: mean ± std over seeds per
cell for the average (eval/...) and the trained generators (eval/raw/...), the first step whose
means meet the target, the paired EMA - raw effect, and a plot per metric (CUT: A->B only)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import quality_study

# {cell's lr: {seed: [(psnr_AB at 100, at 200)]}}; raw = ema - 0.5 dB; SSIM = PSNR / 100.
VALUES = {"2e-4": {0: (14.0, 16.0), 1: (15.0, 17.0)}, "4e-4": {0: (15.0, 17.9), 1: (16.0, 18.1)}}


def fake_job(path: Path, lr: str, seed: int, psnr: tuple[float, ...], both: bool) -> None:
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"optim.lr={lr}", f"seed={seed}"])
    )
    config = {"seed": seed, "optim": {"lr": float(lr)}, "trainer": {"steps_per_epoch": None}}
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    rows = []
    for i, value in enumerate(psnr):
        row = {"step": 100 * (i + 1)}
        directions = ("AB", "BA") if both else ("AB",)
        for d in directions:
            for prefix, shift in (("eval/", 0.0), ("eval/raw/", -0.5)):
                row[f"{prefix}psnr_{d}"] = value + shift
                row[f"{prefix}ssim_{d}"] = (value + shift) / 100
        rows.append(row)
        rows.append({"step": 100 * (i + 1) + 10, "train/loss_G": 1.0})  # no eval keys: skipped
    (path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (path / "summary.json").write_text(json.dumps({"time/train_s": 100.0 + seed, **rows[-2]}))


@pytest.mark.parametrize("both", [True, False], ids=["cyclegan", "cut"])
def test_table_effects_and_plot(tmp_path: Path, both: bool, monkeypatch, capsys) -> None:
    sweep = tmp_path / "multirun"
    n = 0
    for lr, seeds in VALUES.items():
        for seed, psnr in seeds.items():
            fake_job(sweep / str(n), lr, seed, psnr, both)
            n += 1
    rows = quality_study.study_rows([sweep])
    assert [(r["cell"], r["weights"]) for r in rows] == [
        ("optim.lr=2e-4", "ema"), ("optim.lr=2e-4", "raw"),
        ("optim.lr=4e-4", "ema"), ("optim.lr=4e-4", "raw"),
    ]  # fmt: skip
    stat = rows[2]["stats"][200]["psnr_AB"]
    assert (stat.mean, stat.n) == (pytest.approx(18.0), 2) and stat.std == pytest.approx(
        0.1 * 2**0.5
    )
    assert rows[3]["stats"][200]["psnr_AB"].mean == pytest.approx(17.5)
    # Target 17.2 dB / 0.17: the lr=4e-4 average meets it at step 200, its raw weights too;
    # lr=2e-4 (16.5 dB) never.
    target = {"psnr_AB": 17.2, "ssim_AB": 0.17}
    assert [quality_study.first_reaching(r["stats"], target) for r in rows] == [
        None,
        None,
        200,
        200,
    ]
    assert quality_study.first_reaching(rows[2]["stats"], {"psnr_AB": 15.4}) == 100
    header, body = quality_study.table(rows, target)
    assert header[3:5] == ["psnr_AB", "ssim_AB"] and ("psnr_BA" in header) == both
    assert body[0][:3] == ["optim.lr=4e-4", "ema", "200"] and body[0][3] == "18.00 ± 0.14"
    same = dict(zip(header, body[-1], strict=True))
    assert same["meets target at step"] == "-" and same["train s"] == "100.50 ± 0.71"
    assert same[next(h for h in header if h.startswith("same as best?"))].startswith("no")
    # --keys labels cells by configured values (several sweeps line up); absent keys are left out
    keyed = quality_study.study_rows(
        [sweep], ["optim.lr", "loss.lambda_r1", "trainer.steps_per_epoch"]
    )
    assert [r["cell"] for r in keyed[::2]] == [
        "optim.lr=0.0002 trainer.steps_per_epoch=None",
        "optim.lr=0.0004 trainer.steps_per_epoch=None",
    ]  # a null value is shown, an absent key is not
    effect = quality_study.paired_effect(rows, "psnr_AB")
    assert effect["optim.lr=2e-4"].mean == pytest.approx(0.5) and effect["optim.lr=2e-4"].std == 0
    monkeypatch.setattr(sys, "argv", ["quality_study.py", str(sweep), "--name", "t",
                                      "--target", "17.2,0.17", "--out", str(tmp_path / "out")])  # fmt: skip
    quality_study.main()
    picture = tmp_path / "out" / "t_curves.png"
    assert picture.stat().st_size > 10_000
    assert "| optim.lr=4e-4 | ema | 200 | 18.00 ± 0.14 |" in (tmp_path / "out" / "t.md").read_text()
    assert "EMA - raw psnr_AB" in capsys.readouterr().out
