"""Fixed test images of a run: the strips a job leaves, the sweep's contact sheet, the W&B table rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.evaluation.contact import (
    SheetRow,
    contact_sheet,
    fixed_image_table,
    log_fixed_image_tables,
    sheet_rows_for_jobs,
    write_fixed_translations,
)
from cyclegan.evaluation.paired import psnr


def images(n: int = 3, size: int = 8, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) in [-1, 1], on the 8-bit grid so PNG round trips are exact."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g).float() / 127.5 - 1


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def as_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> the (H, N*W, 3) strip we expect on disk."""
    u8 = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return np.concatenate(list(u8), axis=1)


def test_write_fixed_translations_leaves_exact_strips(tmp_path: Path) -> None:
    real_A, real_B = images(seed=1), images(seed=2)
    out = write_fixed_translations(
        tmp_path, real_A, real_B, lambda x: -x, lambda x: x.flip(-1), paired=True, step=42
    )
    assert out == tmp_path / "contact"
    np.testing.assert_array_equal(read_png(out / "real_A.png"), as_uint8(real_A))
    np.testing.assert_array_equal(read_png(out / "fake_B.png"), as_uint8(-real_A))
    np.testing.assert_array_equal(read_png(out / "real_B.png"), as_uint8(real_B))
    np.testing.assert_array_equal(read_png(out / "fake_A.png"), as_uint8(real_B.flip(-1)))
    info = json.loads((out / "contact.json").read_text())
    per_image = info.pop("per_image")
    assert info == {
        "step": 42,
        "paired": True,
        "n_images": 3,
        "image_size": [8, 8],
        "files": ["fake_A.png", "fake_B.png", "real_A.png", "real_B.png"],
    }

    # Per image, for the run's report: the translation against the ground truth, and the way
    # back against the input (no SSIM: 8 px is smaller than its 11 px window).
    def unit(x: torch.Tensor) -> torch.Tensor:
        return (x + 1) / 2

    fake_B, fake_A = -real_A, real_B.flip(-1)
    assert per_image["AB"] == pytest.approx(
        {
            "psnr": psnr(unit(fake_B), unit(real_B)).tolist(),
            "psnr_cycle": psnr(unit(fake_B.flip(-1)), unit(real_A)).tolist(),
        }
    )
    assert per_image["BA"] == pytest.approx(
        {
            "psnr": psnr(unit(fake_A), unit(real_A)).tolist(),
            "psnr_cycle": psnr(unit(-fake_A), unit(real_B)).tolist(),
        }
    )
    assert len(set(per_image["AB"]["psnr"])) == 3  # one value per image, not their mean
    assert not list(out.glob(".*tmp"))  # written atomically, nothing left behind


def test_write_fixed_translations_without_BA_and_bad_shapes(tmp_path: Path) -> None:
    out = write_fixed_translations(
        tmp_path, images(), images(n=5), lambda x: x, None, paired=False, step=1
    )
    assert json.loads((out / "contact.json").read_text())["files"] == [
        "fake_B.png",
        "real_A.png",
        "real_B.png",
    ]
    with pytest.raises(ValueError, match=r"paired fixed images differ in shape"):
        write_fixed_translations(tmp_path, images(), images(n=5), lambda x: x, None, True, 1)
    with pytest.raises(ValueError, match=r"non-empty \(N, C, H, W\)"):
        write_fixed_translations(tmp_path, images(n=0), images(), lambda x: x, None, False, 1)


def test_contact_sheet_enlarges_tiles_and_keeps_pixels(tmp_path: Path) -> None:
    a, b = images(n=2, seed=3), images(n=2, seed=4)
    for name, x in (("a", a), ("b", b)):
        Image.fromarray(as_uint8(x)).save(tmp_path / f"{name}.png")
    rows = [
        SheetRow("input A", tmp_path / "a.png"),
        SheetRow("lambda=5 psnr 11.2", tmp_path / "b.png"),
    ]
    sheet = read_png(contact_sheet(rows, tmp_path / "sheet.png", min_tile=32))
    # 8 px tiles -> x4 (the smallest integer factor reaching 32 px), labels to the left.
    label_w = sheet.shape[1] - 2 * 32
    assert label_w > 40 and sheet.shape[0] == 2 * 32 + 2 * 2
    first_tile = sheet[0:32, label_w : label_w + 32]
    expected = np.kron(as_uint8(a)[:, :8], np.ones((4, 4, 1), dtype=np.uint8))
    np.testing.assert_array_equal(first_tile, expected)
    second_row = sheet[34:66, label_w + 32 : label_w + 64]  # row 2, tile 2
    np.testing.assert_array_equal(
        second_row, np.kron(as_uint8(b)[:, 8:], np.ones((4, 4, 1), dtype=np.uint8))
    )
    assert (sheet[:32, :label_w] < 128).any()  # the label was drawn (dark text on white)


def test_contact_sheet_refuses_strips_of_another_size(tmp_path: Path) -> None:
    Image.fromarray(as_uint8(images(n=2))).save(tmp_path / "a.png")
    Image.fromarray(as_uint8(images(n=3))).save(tmp_path / "b.png")
    rows = [SheetRow("first", tmp_path / "a.png"), SheetRow("other data", tmp_path / "b.png")]
    with pytest.raises(ValueError, match=r"differ in size from the first \(16x8\): other data"):
        contact_sheet(rows, tmp_path / "sheet.png")


def test_sheet_rows_put_input_and_ground_truth_on_top(tmp_path: Path) -> None:
    jobs = []
    for i in range(2):
        job = tmp_path / str(i)
        write_fixed_translations(job, images(), images(), lambda x: x, None, paired=True, step=9)
        jobs.append((f"job {i}", job))
    jobs.append(("never finished", tmp_path / "2"))
    rows, missing = sheet_rows_for_jobs(jobs)
    assert [(r.label, r.strip.relative_to(tmp_path).as_posix()) for r in rows] == [
        ("input A", "0/contact/real_A.png"),
        ("ground truth B", "0/contact/real_B.png"),
        ("job 0", "0/contact/fake_B.png"),
        ("job 1", "1/contact/fake_B.png"),
    ]
    assert missing == ["never finished"]
    rows, missing = sheet_rows_for_jobs(jobs, direction="BA")  # no job has a B->A translator
    assert rows == [] and len(missing) == 3
    with pytest.raises(ValueError, match="direction=XY: use AB or BA"):
        sheet_rows_for_jobs(jobs, direction="XY")


def test_fixed_image_table_scores_each_image() -> None:
    real, target = images(n=3, size=16, seed=5), images(n=3, size=16, seed=6)
    fake = target.clone()
    fake[1] = -fake[1]  # image 1 is wrong, images 0 and 2 exact
    rec = real.clone()
    rec[2] = 0.0
    columns, rows = fixed_image_table(real, fake, rec, target)
    assert columns == [
        "index",
        "input",
        "translation",
        "reconstruction",
        "psnr_cycle",
        "ground truth",
        "psnr",
        "ssim",
    ]
    assert [r[0] for r in rows] == [0, 1, 2]
    assert rows[0][1].shape == (16, 16, 3) and rows[0][1].dtype == np.uint8
    np.testing.assert_array_equal(rows[1][2], as_uint8(fake[1:2]))
    assert rows[0][6] == pytest.approx(120.0) and rows[2][6] == pytest.approx(120.0)  # exact
    assert rows[1][6] == pytest.approx(psnr((fake[1:2] + 1) / 2, (target[1:2] + 1) / 2).item())
    assert rows[1][6] < 20 and rows[1][7] < 0.5 < rows[0][7]
    assert rows[0][7] == pytest.approx(1.0)
    assert rows[2][4] < 20 < rows[0][4]  # the reconstruction of image 2 is wrong
    columns, rows = fixed_image_table(real, fake, rec)  # unpaired: no ground truth columns
    assert columns[-1] == "psnr_cycle" and len(rows[0]) == 5
    columns, rows = fixed_image_table(real, fake, None, target)  # a one-way method
    assert columns == ["index", "input", "translation", "ground truth", "psnr", "ssim"]
    assert rows[0][4] == pytest.approx(120.0)
    # A grayscale domain A translated to RGB B: shown as RGB, scored against the RGB truth.
    gray = real[:, :1]
    columns, rows = fixed_image_table(gray, fake, gray.clone(), target)
    assert rows[0][1].shape == (16, 16, 3) and (rows[0][1][..., 0] == rows[0][1][..., 2]).all()
    assert rows[0][6] == pytest.approx(120.0)
    with pytest.raises(ValueError, match=r"target has shape \(3, 3, 8, 8\), expected"):
        fixed_image_table(real, fake, rec, images(n=3, size=8))


def test_log_fixed_image_tables_both_directions() -> None:
    real_A, real_B = images(n=2, size=16, seed=7), images(n=2, size=16, seed=8)
    logged: list[tuple[str, list[str], list[list], int]] = []

    def log_table(key: str, columns: list[str], rows: list[list], step: int) -> None:
        logged.append((key, columns, rows, step))

    # G_AB negates, G_BA negates back: perfect cycles; on "paired" data -A is not B.
    log_fixed_image_tables(log_table, real_A, real_B, lambda x: -x, lambda x: -x, True, 12)
    assert [(key, step, len(rows)) for key, _, rows, step in logged] == [
        ("fixed_images/AB", 12, 2),
        ("fixed_images/BA", 12, 2),
    ]
    (_, columns, rows, _), (_, _, rows_BA, _) = logged
    np.testing.assert_array_equal(rows[0][2], as_uint8(-real_A[:1]))  # translation
    np.testing.assert_array_equal(rows[0][5], as_uint8(real_B[:1]))  # ground truth: B
    np.testing.assert_array_equal(rows_BA[1][1], as_uint8(real_B[1:]))  # B->A input: B
    assert rows[0][columns.index("psnr_cycle")] == pytest.approx(120.0)
    assert rows[0][columns.index("psnr")] < 30

    logged.clear()  # a one-way method, unpaired data
    log_fixed_image_tables(log_table, real_A, real_B, lambda x: x, None, False, 3)
    [(key, columns, rows, step)] = logged
    assert (key, step) == ("fixed_images/AB", 3)
    assert columns == ["index", "input", "translation"] and len(rows) == 2
