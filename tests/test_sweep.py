"""sweep.py: a grid run end to end (a ranked table, files, a plot, one W&B group), a failed job,
and the comparison logic on hand-made job directories."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from cyclegan.config.run_identity import sweep_group
from cyclegan.evaluation.contact import write_fixed_translations
from cyclegan.sweeps.jobs import find_jobs, rank_jobs
from cyclegan.sweeps.sweep import SweepError, main, parse_seeds, report

from .conftest import ROOT, TINY
from .wandb_files import offline_runs, read_wandb_run


def run_sweep(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    # One thread per job: these tests check orchestration, and on a shared CPU extra threads of
    # each job only wait on each other.
    env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "0",
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "sweep.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def cell_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["kind"] == "cell"]


def job_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["kind"] == "job"]


def test_2x2_seeded_grid_ranked_by_cell_and_one_wandb_group(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_sweep(
        [
            "lambda_grid",
            "loss.lambda_cyc=5,10",  # a key given on the command line replaces the grid's values
            "loss.lambda_id=5",
            "--seeds",
            "2",
            *TINY,
            "trainer.sample_every=3",
            "logger=[wandb,tensorboard]",
            "logger.wandb.mode=offline",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Jobs: 4 ranked rows, best PSNR first, each the job's own summary.json value.
    rows = read_csv(sweep / "comparison.csv")
    jobs = job_rows(rows)
    assert [r["rank"] for r in jobs] == ["1", "2", "3", "4"]
    psnr = [float(r["eval/psnr_AB (max)"]) for r in jobs]
    assert psnr == sorted(psnr, reverse=True)
    for row in jobs:
        summary = json.loads((sweep / row["jobs"] / "summary.json").read_text())
        assert float(row["eval/psnr_AB (max)"]) == pytest.approx(summary["eval/psnr_AB"])
        assert float(row["final/train/loss_cycle"]) == pytest.approx(
            summary["final/train/loss_cycle"]
        )
        assert row["status"] == "ok" and row["n"] == "1"
    assert sorted((r["overrides"], r["seeds"]) for r in jobs) == [
        ("loss.lambda_cyc=10", "0"),
        ("loss.lambda_cyc=10", "1"),
        ("loss.lambda_cyc=5", "0"),
        ("loss.lambda_cyc=5", "1"),
    ]
    # Cells: the two seeds of each setting, mean and sample std of their values.
    cells = cell_rows(rows)
    assert [(c["rank"], c["n"], c["seeds"]) for c in cells] == [
        ("1", "2", "0,1"),
        ("2", "2", "0,1"),
    ]
    for cell in cells:
        values = [
            float(r["eval/psnr_AB (max)"]) for r in jobs if r["overrides"] == cell["overrides"]
        ]
        assert float(cell["eval/psnr_AB (max)"]) == pytest.approx(statistics.mean(values))
        assert float(cell["eval/psnr_AB std"]) == pytest.approx(statistics.stdev(values))
    assert cells[0]["same as best?"] == "best" and cells[1]["same as best?"] in ("yes", "no")
    markdown = (sweep / "comparison.md").read_text()
    assert "## Cells" in markdown and "## Jobs" in markdown and " ± " in markdown
    with Image.open(sweep / "curves_train_loss_cycle.png") as plot:
        assert plot.size[0] > 400
    with Image.open(sweep / "eval_psnr_AB_vs_loss.lambda_cyc.png") as plot:
        assert plot.size[0] > 400
    assert (
        "4 jobs in" in proc.stdout
        and "(2 cells), ranked by eval/psnr_AB (max); 0 failed" in proc.stdout
    )
    # Each job left its translations of the fixed test images; the sheet: input A, ground truth
    # B (the built-in test set is paired), then a row per cell (its seed 0).
    assert f"contact sheet: {sweep / 'contact_AB.png'}" in proc.stdout
    with Image.open(sweep / "contact_AB.png") as sheet:
        assert sheet.height == 4 * (96 + 2)
    info = json.loads((sweep / "0" / "contact" / "contact.json").read_text())
    assert set(info.pop("per_image")) == {"AB", "BA"}
    assert info == {
        "step": 6,
        "paired": True,
        "n_images": 2,
        "image_size": [32, 32],
        "files": ["fake_A.png", "fake_B.png", "real_A.png", "real_B.png"],
    }

    # W&B: four distinct runs in one group named after the sweep, each named by its overrides.
    group = sweep_group(sweep)
    assert f"W&B: 4 runs in group '{group}'" in proc.stdout
    runs = [read_wandb_run(p) for job in sorted(sweep.glob("[0-9]")) for p in offline_runs(job)]
    assert len(runs) == 4
    assert {wb.run["run_group"] for wb in runs} == {group}
    assert len({wb.run["run_id"] for wb in runs}) == 4
    assert {wb.run["display_name"] for wb in runs} == {
        # the grid's keys (lambda_id too, though one value here) and the seed
        f"loss.lambda_cyc={c},loss.lambda_id=5,seed={s}"
        for c in (5, 10)
        for s in (0, 1)
    }
    assert all("multirun" in wb.run["tags"] and wb.summary["state"] == "finished" for wb in runs)
    assert {wb.config["loss"]["lambda_cyc"] for wb in runs} == {5.0, 10.0}
    assert {wb.config["seed"] for wb in runs} == {0, 1}
    # TensorBoard too, one run per job, and the command that shows them side by side.
    assert len(list(sweep.glob("[0-9]/tensorboard/events.out.tfevents.*"))) == 4
    assert (
        f"TensorBoard: 4 runs; view them side by side with: tensorboard --logdir {sweep}"
        in proc.stdout
    )
    # The page: the sweep's report, linking each job's own (written at the end of its training).
    assert f"report: {sweep / 'report.html'}" in proc.stdout
    page = (sweep / "report.html").read_text()
    assert all(f'href="{n}/report.html"' in page for n in range(4))
    assert all((sweep / str(n) / "report.html").is_file() for n in range(4))
    assert all((sweep / str(n) / "provenance.json").is_file() for n in range(4))


def test_failed_job_is_shown_failed_and_the_others_still_count(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = run_sweep(
        [
            "lr_grid",
            "optim.lr=-1,2e-4",  # the first job fails; the second must still run
            *TINY,
            "trainer.sample_every=0",
            "logger=none",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    rows = job_rows(read_csv(sweep / "comparison.csv"))
    assert [(r["rank"], r["overrides"]) for r in rows] == [
        ("1", "optim.lr=0.0002"),  # Hydra writes the swept values normalised
        ("", "optim.lr=-1"),
    ]
    assert rows[0]["status"] == "ok" and float(rows[0]["eval/psnr_AB (max)"]) > 0
    assert rows[1]["status"] == "failed: optim.lr=-1.0: must be > 0"
    assert "1 failed" in proc.stdout


# ---------------------------------------------------------------------------- without training


def make_job(
    sweep: Path,
    num: int,
    overrides: list[str],
    summary: dict[str, Any] | None,
    curve: list[float] = (),  # type: ignore[assignment]
    error: str = "",
    optimized_mode: str = "max",
    fixed_value: float | None = None,
) -> None:
    """A job directory as a run leaves it; `fixed_value`: its fixed translations are images of
    that constant value (so a test can tell the rows of a contact sheet apart)."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    config = {"optimized_metric": "eval/psnr_AB", "optimized_mode": optimized_mode}
    OmegaConf.save(OmegaConf.create(config), job / ".hydra" / "config.yaml")
    if summary is not None:
        (job / "summary.json").write_text(json.dumps(summary))
    lines = [
        json.dumps({"step": i + 1, "epoch": 0, "train/loss_cycle": v}) for i, v in enumerate(curve)
    ]
    (job / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    if error:
        (job / "train.log").write_text(
            f"[2026-11-26 16:30:00,000][cyclegan.run][INFO] - starting\n"
            f"[2026-11-26 16:30:01,000][cyclegan.run][ERROR] - {error}\n"
        )
    if fixed_value is not None:
        real = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
        write_fixed_translations(
            job, real, -real, lambda x: torch.full_like(x, fixed_value), None, paired=True, step=6
        )


def test_ranking_failed_last_and_labels_show_what_varies(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    fixed = ["dataset.img_size=32", "+experiment/sweeps=lr_grid"]
    make_job(sweep, 0, ["optim.lr=1e-4", *fixed], {"eval/psnr_AB": 20.0}, [1.0, 0.8])
    make_job(sweep, 1, ["optim.lr=2e-4", *fixed], {"eval/psnr_AB": 22.5}, [1.0, 0.6])
    make_job(sweep, 2, ["optim.lr=9", *fixed], None, [1.0], error="non-finite loss_G")
    make_job(sweep, 10, ["optim.lr=4e-4", *fixed], {"eval/psnr_AB": 21.0}, [0.9, 0.7])

    assert report(sweep, metric=None, mode=None, plot="train/loss_cycle") == 1  # a job failed
    rows = read_csv(sweep / "comparison.csv")
    # One seed per cell: the cells are the jobs, mean without a spread, no "same as best" mark.
    assert [(r["kind"], r["rank"], r["jobs"], r["overrides"], r["n"]) for r in rows] == [
        ("cell", "1", "1", "optim.lr=2e-4", "1"),
        ("cell", "2", "10", "optim.lr=4e-4", "1"),
        ("cell", "3", "0", "optim.lr=1e-4", "1"),
        ("cell", "", "2", "optim.lr=9", "0"),
        ("job", "1", "1", "optim.lr=2e-4", "1"),
        ("job", "2", "10", "optim.lr=4e-4", "1"),
        ("job", "3", "0", "optim.lr=1e-4", "1"),
        ("job", "", "2", "optim.lr=9", "0"),
    ]
    assert rows[0]["eval/psnr_AB std"] == "" and rows[0]["eval/psnr_AB (max)"] == "22.5"
    assert rows[3]["status"] == rows[-1]["status"] == "failed: non-finite loss_G"
    printed = capsys.readouterr().out
    assert "4 jobs in" in printed and "1 failed" in printed and "plot:" in printed
    assert "same as best?" not in printed  # one seed per cell: nothing to say
    assert (sweep / "curves_train_loss_cycle.png").stat().st_size > 0
    # optim.lr spans less than a factor 20 here (9 failed): a linear axis, lines by value.
    assert (sweep / "eval_psnr_AB_vs_optim.lr.png").stat().st_size > 0
    assert "W&B" not in printed  # these jobs have no W&B runs


def test_lower_is_better_metrics_rank_ascending(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["model.ngf=8"], {"eval/fid_AB": 40.0, "eval/psnr_AB": 25.0})
    make_job(sweep, 1, ["model.ngf=16"], {"eval/fid_AB": 30.0, "eval/psnr_AB": 20.0})
    jobs = find_jobs(sweep)
    assert [j.name for j in rank_jobs(jobs, "eval/fid_AB", "min")] == ["1", "0"]
    assert [j.name for j in rank_jobs(jobs, "eval/psnr_AB", "max")] == ["0", "1"]
    assert report(sweep, metric="eval/fid_AB", mode=None, plot="train/loss_cycle") == 0
    assert read_csv(sweep / "comparison.csv")[0]["eval/fid_AB (min)"] == "30.0"


SEEDED = {  # lambda_cyc -> PSNR of seeds 0, 1, 2
    "5": [20.0, 20.4, 19.6],
    "10": [20.2, 20.6, 19.8],  # the best mean, but within the seeds' spread of lambda_cyc=5
    "20": [15.0, 15.1, 14.9],  # clearly worse
}


def make_seeded_sweep(sweep: Path, fixed: bool = False, first_job: int = 0) -> None:
    num = first_job
    for i, (lam, values) in enumerate(SEEDED.items()):
        for seed, value in enumerate(values):
            summary = {"eval/psnr_AB": value, "eval/ssim_AB": value / 100}
            overrides = [f"loss.lambda_cyc={lam}", f"seed={seed}", "+experiment/sweeps=lambda_grid"]
            make_job(sweep, num, overrides, summary, fixed_value=(i / 2 - 0.5) if fixed else None)
            num += 1


def test_seeds_aggregate_into_cells_and_ties_are_marked(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    make_seeded_sweep(sweep)
    assert report(sweep, metric=None, mode=None, plot="train/loss_cycle") == 0
    rows = read_csv(sweep / "comparison.csv")
    cells, jobs = cell_rows(rows), job_rows(rows)
    assert len(jobs) == 9 and [(c["rank"], c["overrides"]) for c in cells] == [
        ("1", "loss.lambda_cyc=10"),
        ("2", "loss.lambda_cyc=5"),
        ("3", "loss.lambda_cyc=20"),
    ]
    for cell in cells:
        values = SEEDED[cell["overrides"].split("=")[1]]
        assert cell["seeds"] == "0,1,2" and cell["n"] == "3"
        assert float(cell["eval/psnr_AB (max)"]) == pytest.approx(statistics.mean(values))
        assert float(cell["eval/psnr_AB std"]) == pytest.approx(statistics.stdev(values))
        assert float(cell["eval/ssim_AB"]) == pytest.approx(statistics.mean(values) / 100)
    # |20.2 - 20.0| = 0.2 <= 2 (SE + SE) = 4 * 0.4 / sqrt(3): cannot be told apart; 15 can.
    assert [c["same as best?"] for c in cells] == ["best", "yes", "no"]
    printed = capsys.readouterr().out
    assert "9 jobs in" in printed and "(3 cells)" in printed
    assert "20.20 ± 0.40" in printed and "same as best?: yes = cannot be told apart" in printed
    assert (sweep / "eval_psnr_AB_vs_loss.lambda_cyc.png").stat().st_size > 0


def test_a_cell_whose_every_seed_failed_is_listed_failed(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["optim.lr=2e-4", "seed=0"], {"eval/psnr_AB": 20.0})
    make_job(sweep, 1, ["optim.lr=2e-4", "seed=1"], None, error="out of memory")
    make_job(sweep, 2, ["optim.lr=9", "seed=0"], None, error="non-finite loss_G at step 3")
    make_job(sweep, 3, ["optim.lr=9", "seed=1"], None, error="non-finite loss_G at step 2")
    assert report(sweep, metric=None, mode=None, plot="train/loss_cycle") == 1
    cells = cell_rows(read_csv(sweep / "comparison.csv"))
    assert [(c["rank"], c["overrides"], c["n"], c["seeds"], c["status"]) for c in cells] == [
        ("1", "optim.lr=2e-4", "1", "0", "ok; 1 of 2 failed (seed 1: out of memory)"),
        ("", "optim.lr=9", "0", "", "failed: non-finite loss_G at step 3"),
    ]
    assert "3 failed" in capsys.readouterr().out


def test_contact_sheet_has_one_row_per_cell_in_rank_order(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    make_seeded_sweep(sweep, fixed=True)  # lambda_cyc 5, 10, 20 -> images of -0.5, 0, 0.5
    make_job(sweep, 9, ["loss.lambda_cyc=40", "seed=0"], {"eval/psnr_AB": 1.0})  # no contact/
    report(sweep, metric=None, mode=None, plot="train/loss_cycle")
    printed = capsys.readouterr().out
    assert f"contact sheet: {sweep / 'contact_AB.png'}" in printed
    assert (
        "no fixed translations (contact/contact.json) from 1 cell(s): loss.lambda_cyc=40" in printed
    )
    with Image.open(sweep / "contact_AB.png") as im:
        sheet = np.asarray(im.convert("RGB")).astype(int)
    # Rows: input A, ground truth B, then the cells best first (10, 5, 20); 8 px tiles at x12.
    tile, gap = 96, 2
    right = sheet[:, -1]  # the last pixel column: inside the last tile of every row
    row_values = [right[r * (tile + gap) + tile // 2, 0] for r in range(5)]
    real = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    expected_input = round((real[1, 0, 4, 7].item() + 1) * 127.5)
    assert row_values[0] == expected_input  # input A
    assert row_values[1] == round((-real[1, 0, 4, 7].item() + 1) * 127.5)  # ground truth
    assert row_values[2:] == [round(v * 127.5) for v in (1.0, 0.5, 1.5)]  # 0 -> 128, -0.5, 0.5
    assert sheet.shape[0] == 5 * (tile + gap)


def test_collect_compares_several_sweeps_in_one_table(tmp_path: Path, capsys, monkeypatch) -> None:
    first, second = tmp_path / "lambda_grid" / "t1", tmp_path / "lambda_grid" / "t2"
    make_seeded_sweep(first)
    make_job(
        second,
        0,
        ["loss.lambda_cyc=40", "seed=0", "+experiment/sweeps=lambda_grid"],
        {"eval/psnr_AB": 30.0},
    )
    make_job(
        second,
        1,
        ["loss.lambda_cyc=40", "seed=1", "+experiment/sweeps=lambda_grid"],
        {"eval/psnr_AB": 31.0},
    )
    monkeypatch.chdir(tmp_path)
    assert main(["--collect", str(first), str(second)], root=ROOT) == 0
    [out] = list((tmp_path / "multirun" / "collected").iterdir())  # a fresh stamped directory
    rows = read_csv(out / "comparison.csv")
    cells = cell_rows(rows)
    assert [(c["rank"], c["overrides"], c["jobs"]) for c in cells][:2] == [
        ("1", "loss.lambda_cyc=40", "lambda_grid-t2/0 lambda_grid-t2/1"),
        ("2", "loss.lambda_cyc=10", "lambda_grid-t1/3 lambda_grid-t1/4 lambda_grid-t1/5"),
    ]
    assert len(job_rows(rows)) == 11
    assert "11 jobs in 2 sweeps (4 cells)" in capsys.readouterr().out
    assert not (first / "comparison.csv").exists()  # the sweeps themselves are left alone
    assert (
        main(["--collect", str(first), str(second), "--out", str(tmp_path / "both")], root=ROOT)
        == 0
    )
    assert len(cell_rows(read_csv(tmp_path / "both" / "comparison.csv"))) == 4


def test_no_job_with_the_metric_says_what_to_rank_by(tmp_path: Path, capsys) -> None:
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, ["optim.lr=1e-4"], {"eval/kid_AB": 0.02, "final/train/loss_G": 3.0})
    make_job(sweep, 1, ["optim.lr=2e-4"], {"eval/kid_AB": 0.01, "final/train/loss_G": 3.0})
    assert report(sweep, metric=None, mode=None, plot="train/loss_cycle") == 0
    printed = capsys.readouterr().out
    assert (
        "no job has eval/psnr_AB in its summary.json, so nothing is ranked; evaluated keys: "
        "eval/kid_AB; rank by one of them with --metric KEY"
    ) in printed
    assert report(sweep, metric="eval/kid_AB", mode=None, plot="x") == 0
    assert cell_rows(read_csv(sweep / "comparison.csv"))[0]["overrides"] == "optim.lr=2e-4"


@pytest.mark.parametrize(
    ("text", "seeds"), [("3", [0, 1, 2]), ("1", [0]), ("0,4,7", [0, 4, 7]), ("5,", None)]
)
def test_parse_seeds(text: str, seeds: list[int] | None) -> None:
    if seeds is None:
        with pytest.raises(SweepError, match="not a number"):
            parse_seeds(text)
    else:
        assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0"], "--seeds 0: no seeds to run; give a count >= 1"),
        (["--seeds", "-2"], "--seeds -2: no seeds to run; give a count >= 1"),
        (["--seeds", "1,1"], "--seeds 1,1: seeds must be distinct and >= 0"),
        (["--seeds", "2", "seed=3"], "--seeds and seed=3 both set the seed; keep one"),
    ],
)
def test_bad_seeds_are_refused_in_one_line(argv: list[str], message: str, capsys) -> None:
    assert main(["lambda_grid", *argv], root=ROOT) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_seeds_with_an_optuna_search_are_refused(capsys) -> None:
    assert main(["optuna_search", "--seeds", "3"], root=ROOT) == 2
    assert (
        "optuna_search is an Optuna search, which draws its own trials" in capsys.readouterr().err
    )


def test_list_shows_every_grid(capsys) -> None:
    assert main(["--list"], root=ROOT) == 0
    out = capsys.readouterr().out
    assert "lambda_grid" in out and "6 runs: loss.lambda_cyc=5,10,20 x loss.lambda_id=0,5" in out
    assert "depth_grid" in out and "lr_grid" in out and "optuna_search" in out


def test_unknown_grid_names_the_known_ones(capsys) -> None:
    assert main(["lamda_grid"], root=ROOT) == 2
    err = capsys.readouterr().err
    assert "no grid 'lamda_grid'" in err and "lambda_grid" in err


def test_collect_of_an_empty_directory_is_an_error(tmp_path: Path, capsys) -> None:
    assert main(["--collect", str(tmp_path)], root=ROOT) == 2
    assert "no jobs in" in capsys.readouterr().err


def make_unpaired_folder(root: Path, n_train: int = 4, n_test: int = 3) -> None:
    """trainA/B and testA/B of random 40 x 36 RGB images: a user's own unpaired dataset."""
    rng = np.random.default_rng(0)
    for split, n in (
        ("trainA", n_train),
        ("trainB", n_train),
        ("testA", n_test),
        ("testB", n_test),
    ):
        (root / split).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / f"{i}.png")


@pytest.mark.slow  # ~25 s: two training jobs in a multirun
def test_unpaired_folder_sweep_is_ranked_by_kid(tmp_path: Path) -> None:
    data = tmp_path / "mine"
    make_unpaired_folder(data)
    sweep = tmp_path / "sweep"
    proc = run_sweep(
        [
            "lr_grid",
            "optim.lr=1e-4,4e-4",
            *[o for o in TINY if not o.startswith("dataset.")],
            "dataset=folder",
            f"dataset.root={data}",
            "dataset.img_size=32",
            "trainer.sample_every=0",
            "logger=file",
            # Instead of Inception (no weights, no download); KID is on by default here.
            "trainer.feature_extractor={_target_:tests.extractors.ColourFeatures}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ranked by eval/kid_AB (min); 0 failed" in proc.stdout
    jobs = job_rows(read_csv(sweep / "comparison.csv"))
    kid = [float(r["eval/kid_AB (min)"]) for r in jobs]
    assert [r["rank"] for r in jobs] == ["1", "2"] and kid == sorted(kid)  # lower is better
    for row in jobs:
        summary = json.loads((sweep / row["jobs"] / "summary.json").read_text())
        assert summary["optimized_metric"] == "eval/kid_AB" and summary["optimized_mode"] == "min"
        assert float(row["eval/kid_AB (min)"]) == pytest.approx(summary["eval/kid_AB"])
        assert "eval/fid_AB" in summary and "eval/psnr_AB" not in summary  # no ground truth
        assert (sweep / row["jobs"] / "checkpoints" / "best.pt").is_file()  # best by KID
    # The contact sheet: the inputs, then one row per job (no ground-truth row: unpaired).
    assert f"contact sheet: {sweep / 'contact_AB.png'}" in proc.stdout
    info = json.loads((sweep / "0" / "contact" / "contact.json").read_text())
    assert info["paired"] is False and info["n_images"] == 2 and info["step"] == 6
    with Image.open(sweep / "contact_AB.png") as sheet:
        assert sheet.height == 3 * (96 + 2)
