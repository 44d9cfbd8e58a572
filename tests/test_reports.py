"""report.html of a run and of a sweep: what the pages hold (read back from the HTML), that they are
self-contained, that they can be rebuilt; and, in a real browser (headless Chromium), that they
open with every table row and every image loaded."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from cyclegan.config.schema import register_configs
from cyclegan.reports.__main__ import main as rebuild
from cyclegan.reports.charts import nice_ticks
from cyclegan.sweeps.sweep import report
from cyclegan.training.builder import train

from .browser import chromium_path, open_page
from .conftest import CONF, TINY
from .test_sweep import make_job, make_seeded_sweep


def page(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def sources(text: str) -> list[str]:
    return re.findall(r'<img[^>]* src="([^"]*)"', text)


def cells(text: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells of the table with this id."""
    body = re.search(rf'<table id="{table_id}".*?<tbody>(.*?)</tbody>', text, re.S).group(1)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few steps on the built-in set: summary, metrics.jsonl, samples, contact/, report.
    Module-scoped (one training for the tests that read it), so it composes the config itself
    instead of using the function-scoped `compose_cfg`; tests that change it work on a copy."""
    base = tmp_path_factory.mktemp("trained")
    register_configs()
    GlobalHydra.instance().clear()
    with (
        initialize_config_dir(config_dir=str(CONF), version_base="1.3"),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("WANDB_MODE", "disabled")
        overrides = [f"paths.data_dir={base / 'data'}", f"paths.output_dir={base / 'run'}"]
        train(compose(config_name="config", overrides=[*overrides, *TINY, "logger=file"]))
    GlobalHydra.instance().clear()
    return base / "run"


def test_run_report_shows_evaluation_losses_fixed_images_samples_and_config(trained: Path) -> None:
    text = page(trained / "report.html")
    summary = json.loads((trained / "summary.json").read_text())
    # The evaluation table: the model beside the identity and mean-image baselines.
    rows = {r[0]: r[1:] for r in cells(text, "evaluation")}
    assert set(rows) == {"A->B PSNR", "A->B SSIM", "B->A PSNR", "B->A SSIM"}
    model, best, identity, mean, better = rows["A->B PSNR"]
    assert float(model) == pytest.approx(summary["eval/psnr_AB"], rel=1e-3)
    assert float(best) == pytest.approx(summary["best/psnr_AB"], rel=1e-3)
    assert float(mean) == pytest.approx(summary["baseline/mean/psnr_AB"], rel=1e-3)
    assert float(identity) == pytest.approx(summary["baseline/identity/psnr_AB"], rel=1e-3)
    assert better == "higher"
    # Loss charts from metrics.jsonl: generator, discriminator, learning rate; 6 points each.
    charts = re.findall(r'<svg class="chart".*?</svg>', text, re.S)
    titles = [re.search(r'aria-label="([^"]+)"', c).group(1) for c in charts]
    assert titles == ["generator losses", "discriminator losses", "learning rate"]
    lr = re.search(r'<polyline points="([^"]+)"', charts[2]).group(1).split()
    assert len(lr) == 6  # one point per logged step
    ys = [float(p.split(",")[1]) for p in lr]
    assert ys == sorted(ys)  # the linear decay: the rate falls, so y (down the page) grows
    # The fixed test images: a row per image, its tiles and its metrics from contact.json.
    info = json.loads((trained / "contact" / "contact.json").read_text())
    fixed = re.findall(r'<table class="fixed">(.*?)</table>', text, re.S)
    assert len(fixed) == 2  # A->B and B->A
    ab = [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in re.findall(r"<tr>(.*?)</tr>", fixed[0].split("<tbody>")[1], re.S)
    ]
    assert len(ab) == info["n_images"] == 2
    for i, row in enumerate(ab):
        numbers = [float(v) for v in row[4:]]  # index, 3 tiles, then psnr_cycle, psnr, ssim
        expected = [info["per_image"]["AB"][k][i] for k in ("psnr_cycle", "psnr", "ssim")]
        assert numbers == pytest.approx(expected, rel=1e-3)
    # Every picture is embedded (the page survives being copied alone): 2 x 2 x 3 tiles and the
    # 3 sample grids (steps 2, 4, 6).
    images = sources(text)
    assert len(images) == 12 + 3 and all(s.startswith("data:image/png;base64,") for s in images)
    assert [int(s) for s in re.findall(r"<figcaption>step (\d+)</figcaption>", text)] == [2, 4, 6]
    # The resolved config, the provenance and the evaluation protocol.
    assert "ngf: 8" in text and "lambda_cyc: 10.0" in text
    provenance = json.loads((trained / "provenance.json").read_text())
    assert provenance["git"]["commit"][:12] in text and provenance["device_name"] in text
    assert "test_images:" in text and "SSIM: Gaussian window 11" in text


def test_run_report_is_rebuilt_from_the_directory_alone(
    trained: Path, tmp_path: Path, capsys
) -> None:
    trained = Path(shutil.copytree(trained, tmp_path / "run"))
    (trained / "report.html").unlink()
    (trained / "metrics.jsonl").unlink()  # e.g. logger=none: the page says so instead
    assert rebuild([str(trained)]) == 0
    assert f"report: {trained / 'report.html'}" in capsys.readouterr().out
    text = page(trained / "report.html")
    assert "No metrics.jsonl in this run" in text and 'id="evaluation"' in text
    assert rebuild([str(trained / "nowhere")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_unfinished_run_report_says_so(tmp_path: Path) -> None:
    make_job(tmp_path, 0, ["seed=0"], None, curve=[1.0, 0.5, 0.25])
    assert rebuild([str(tmp_path / "0")]) == 0
    text = page(tmp_path / "0" / "report.html")
    assert "not finished (no summary.json)" in text and "No evaluation" in text
    assert text.count('<svg class="chart"') == 1  # the loss_cycle curve it logged


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (1, 6, [1, 2, 3, 4, 5, 6]),
        (0.31, 0.74, [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]),
        (5, 5, [4.7, 4.8, 4.9, 5, 5.1, 5.2, 5.3]),
    ],
)
def test_chart_ticks_are_round_and_cover_the_data(lo: float, hi: float, expected: list) -> None:
    ticks = nice_ticks(lo, hi, 5)
    assert ticks == pytest.approx(expected)


def test_sweep_report_ranks_cells_links_job_reports_and_survives_copying(
    tmp_path: Path, capsys
) -> None:
    sweep = tmp_path / "sweep"
    make_seeded_sweep(sweep, fixed=True)
    assert report(sweep, metric=None, mode=None, plot="train/loss_cycle") == 0
    assert f"report: {sweep / 'report.html'}" in capsys.readouterr().out
    text = page(sweep / "report.html")
    ranked = cells(text, "cells")
    # rank, overrides, metric mean ± std, same as best?, n, seeds, ssim, status, jobs
    assert [(r[0], r[1], r[2], r[3]) for r in ranked] == [
        ("1", "loss.lambda_cyc=10", "20.20 ± 0.40", "best"),
        ("2", "loss.lambda_cyc=5", "20.00 ± 0.40", "yes"),
        ("3", "loss.lambda_cyc=20", "15.00 ± 0.10", "no"),
    ]
    assert ranked[0][-1] == "3, 4, 5"  # its jobs, each a link to its report
    assert len(cells(text, "jobs")) == 9
    links = re.findall(r'<a href="([^"]+)"', text)
    assert set(links) == {f"{n}/report.html" for n in range(9)}
    assert all((sweep / link).is_file() for link in links)  # written for jobs that had none
    images = sources(text)  # the PSNR plot and the contact sheet, embedded
    assert len(images) == 2 and all(s.startswith("data:image/png") for s in images)
    # Copied elsewhere, the links still lead to the jobs' reports.
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(sweep, copy)
    assert all((copy / link).is_file() for link in links)


def test_collect_of_several_sweeps_links_jobs_relative_to_the_output(tmp_path: Path) -> None:
    first, second = tmp_path / "grid" / "t1", tmp_path / "grid" / "t2"
    make_seeded_sweep(first)
    make_seeded_sweep(second, first_job=9)
    out = tmp_path / "cmp"
    assert (
        report([first, second], metric=None, mode=None, plot="train/loss_cycle", out_dir=out) == 0
    )
    links = re.findall(r'<a href="([^"]+)"', page(out / "report.html"))
    assert "../grid/t1/0/report.html" in links and "../grid/t2/17/report.html" in links
    assert all((out / link).resolve().is_file() for link in links)


# ---------------------------------------------------------------------------- in a browser


@pytest.fixture
def chromium() -> str:
    """Debian's chromium; a test without it is skipped with the reason (CI, which installs it,
    sets CYCLEGAN_REQUIRE_BROWSER=1 so that it fails instead)."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CYCLEGAN_REQUIRE_BROWSER") == "1":
            pytest.fail(
                "CYCLEGAN_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)"
            )
        pytest.skip(
            "no chromium on PATH: apt-get install chromium (Debian) to run the browser tests"
        )
    return path


def not_blank(png: bytes, path: Path) -> np.ndarray:
    """The screenshot as pixels, checked to show something: many colours, ink on the page."""
    path.write_bytes(png)
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (900, 1366, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # text, tables, pictures
    assert (pixels.min(axis=2) < 128).mean() > 0.01  # dark pixels: text is drawn
    return pixels


def keep_screenshot(path: Path, name: str) -> None:
    """With CYCLEGAN_SCREENSHOT_DIR set, keep a copy (the README's pictures come from here)."""
    folder = os.environ.get("CYCLEGAN_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / name)


@pytest.mark.browser
def test_both_reports_open_in_chromium_with_every_row_and_image(
    chromium: str, trained: Path, tmp_path: Path
) -> None:
    run = open_page(trained / "report.html")
    facts = run.facts
    assert facts["title"] == "Run run" and facts["broken"] == []
    assert facts["images"] == 15 and facts["svgCharts"] == 8  # polylines: 4 + 3 + 1
    assert facts["tables"] == {"evaluation": 4} and facts["fixedRows"] == 4
    assert "A->B PSNR" in facts["text"] and "Fixed test images" in facts["text"]
    not_blank(run.screenshot, tmp_path / "run.png")
    keep_screenshot(tmp_path / "run.png", "report_run.png")

    sweep = tmp_path / "sweep"
    make_seeded_sweep(sweep, fixed=True)
    report(sweep, metric=None, mode=None, plot="train/loss_cycle")
    page_ = open_page(sweep / "report.html")
    facts = page_.facts
    assert facts["broken"] == [] and facts["images"] == 2
    assert facts["tables"] == {"cells": 3, "jobs": 9}
    assert "20.20 ± 0.40" in facts["text"] and "same as best?" in facts["text"]
    assert sorted(set(facts["links"])) == [f"{n}/report.html" for n in range(9)]
    not_blank(page_.screenshot, tmp_path / "sweep.png")
    keep_screenshot(tmp_path / "sweep.png", "report_sweep.png")


@pytest.mark.browser
def test_the_browser_check_sees_a_broken_image(chromium: str, tmp_path: Path) -> None:
    """The check above can fail: a picture whose data is not an image is reported broken."""
    broken = tmp_path / "report.html"
    broken.write_text(
        '<!doctype html><title>t</title><table id="t"><tbody><tr><td>1</td></tr></tbody></table>'
        '<img alt="good" src="data:image/png;base64,'
        'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==">'
        '<img alt="bad" src="data:image/png;base64,bm90IGFuIGltYWdl">'
    )
    facts = open_page(broken).facts
    assert facts["images"] == 2 and facts["broken"] == ["bad"] and facts["tables"] == {"t": 1}
