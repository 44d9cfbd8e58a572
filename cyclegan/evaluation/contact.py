"""The fixed test images of a run, for comparing runs by looking.

GAN results are compared by eye as much as by number, so every run translates the same few test
images (the trainer's `sample_images`) and leaves them where a sweep can find them:

    <run dir>/contact/real_A.png   the inputs, N tiles side by side (no padding)
    <run dir>/contact/fake_B.png   G_AB(real_A), same layout
    <run dir>/contact/real_B.png   the other domain's fixed images; on a paired test set (the
                                   built-in one) the ground truth of fake_B, tile for tile
    <run dir>/contact/fake_A.png   G_BA(real_B), when the method has a B->A translator
    <run dir>/contact/contact.json {"step", "paired", "n_images", "image_size", "files",
                                   "per_image": per direction, PSNR/SSIM against the ground
                                   truth (paired) and PSNR of the reconstruction (psnr_cycle)}

`sweep.py` stacks one strip per job into a contact sheet (`contact_sheet`): inputs on top, the
ground truth under them when there is one, then one labelled row per job. Strips are plain 8-bit
PNGs, so the sheet needs only PIL, not torch. `fixed_image_table` gives the same images as rows of
a W&B table (input, translation, reconstruction, ground truth, per-image PSNR/SSIM), logged at
every evaluation.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw, ImageFont

from cyclegan.files import atomic_write

if TYPE_CHECKING:
    import numpy as np
    import torch

CONTACT_DIR = "contact"
INFO_FILE = "contact.json"
Translator = Callable[["torch.Tensor"], "torch.Tensor"]


# ---------------------------------------------------------------------------- a run's strips


def _to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, 3) uint8 (grey images repeated to RGB)."""
    import torch

    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).numpy()


def translator_fns(
    translators: Mapping[str, torch.nn.Module], device: torch.device
) -> dict[str, Translator]:
    """Each generator as a function of CPU images in [-1, 1]: run on `device` in eval mode (its
    mode given back), without gradients, the output back on the CPU as float."""

    def as_fn(G: torch.nn.Module) -> Translator:
        def translate(images: torch.Tensor) -> torch.Tensor:
            import torch

            was_training = G.training
            G.eval()
            try:
                with torch.no_grad():
                    return G(images.to(device)).float().cpu()
            finally:
                G.train(was_training)

        return translate

    return {direction: as_fn(G) for direction, G in translators.items()}


def _save_strip(images: torch.Tensor, path: Path) -> None:
    """N images side by side, written to a temporary file and renamed (a reader never sees half)."""
    import numpy as np

    tiles = _to_uint8_hwc(images)  # (N, H, W, 3)
    strip = np.concatenate(list(tiles), axis=1)  # (H, N*W, 3)
    atomic_write(path, lambda tmp: Image.fromarray(strip).save(tmp, format="PNG"), fsync=False)


def write_fixed_translations(
    run_dir: str | Path,
    real_A: torch.Tensor,
    real_B: torch.Tensor,
    translate_AB: Translator,
    translate_BA: Translator | None,
    paired: bool,
    step: int,
) -> Path:
    """Translate the fixed test images and write them as strips under `<run dir>/contact/`.

    Called by the training run at its end (after the last evaluation), on rank 0 only. The
    translators must already be in eval mode; they run here without gradients. `real_A`, `real_B`
    are (N, C, H, W) in [-1, 1]; on a paired test set real_B[i] is the ground truth of real_A[i].
    Returns the directory. Rewrites the files of an earlier call (a resumed run ends once).
    """
    import torch

    if real_A.ndim != 4 or real_A.shape[0] == 0:
        raise ValueError(
            f"real_A must be a non-empty (N, C, H, W) batch, got {tuple(real_A.shape)}"
        )
    # Paired: image for image, same size (the domains may differ in channels: grayscale A).
    if paired and (real_A.shape[0], *real_A.shape[2:]) != (real_B.shape[0], *real_B.shape[2:]):
        raise ValueError(
            f"paired fixed images differ in shape: {tuple(real_A.shape)} vs {tuple(real_B.shape)}"
        )
    out = Path(run_dir) / CONTACT_DIR
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        strips = {"real_A": real_A, "fake_B": translate_AB(real_A), "real_B": real_B}
        metrics = {"AB": _strip_metrics(strips, "A", "B", translate_BA, paired)}
        if translate_BA is not None:
            strips["fake_A"] = translate_BA(real_B)
            metrics["BA"] = _strip_metrics(strips, "B", "A", translate_AB, paired)
    for name, images in strips.items():
        _save_strip(images, out / f"{name}.png")
    info = {
        "step": step,
        "paired": paired,
        "n_images": int(real_A.shape[0]),
        "image_size": [int(real_A.shape[2]), int(real_A.shape[3])],
        "files": sorted(f"{name}.png" for name in strips),
        "per_image": metrics,  # {"AB": {"psnr": [...], "ssim": [...], "psnr_cycle": [...]}, ...}
    }
    atomic_write(out / INFO_FILE, lambda tmp: tmp.write_text(json.dumps(info, indent=2) + "\n"))
    return out


def _strip_metrics(
    strips: dict[str, torch.Tensor],
    src: str,
    dst: str,
    back: Translator | None,
    paired: bool,
) -> dict[str, list[float]]:
    """Per-image numbers of one direction's strip: the translation against the ground truth
    (paired) and the reconstruction `back(fake)` against the input (when there is a way back)."""
    real, fake = strips[f"real_{src}"], strips[f"fake_{dst}"]
    reconstruction = back(fake) if back is not None else None
    return per_image_metrics(real, fake, reconstruction, strips[f"real_{dst}"] if paired else None)


def per_image_metrics(
    real: torch.Tensor,
    fake: torch.Tensor,
    reconstruction: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
) -> dict[str, list[float]]:
    """`psnr_cycle` (reconstruction against input) and `psnr`, `ssim` (translation against the
    ground truth) per image, for what is given; all (N, C, H, W) in [-1, 1]."""
    from cyclegan.data.transforms import to_image_range
    from cyclegan.evaluation.paired import psnr, ssim

    def unit(x: torch.Tensor) -> torch.Tensor:
        return to_image_range(x.detach().float().cpu())

    out: dict[str, list[float]] = {}
    if reconstruction is not None:
        out["psnr_cycle"] = psnr(unit(reconstruction), unit(real)).tolist()
    if target is not None:
        out["psnr"] = psnr(unit(fake), unit(target)).tolist()
        if min(fake.shape[-2:]) >= 11:  # SSIM's 11 x 11 window, valid positions only
            out["ssim"] = ssim(unit(fake), unit(target)).tolist()
    return out


def read_contact_info(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's contact.json, or None when the run left no fixed translations."""
    path = Path(run_dir) / CONTACT_DIR / INFO_FILE
    return json.loads(path.read_text()) if path.is_file() else None


# ---------------------------------------------------------------------------- the sweep's sheet


@dataclass
class SheetRow:
    """One row of a contact sheet: a label and a strip PNG (N tiles side by side)."""

    label: str
    strip: Path


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # scalable with FreeType (Pillow >= 10.1)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()  # the small bitmap font


def contact_sheet(
    rows: list[SheetRow], out: Path, min_tile: int = 96, label_chars: int = 44
) -> Path:
    """Stack strips into one labelled PNG: each row's label on the left, its tiles to the right.

    Small images are enlarged by an integer factor (nearest neighbour, so pixels stay visible) until
    a tile is at least `min_tile` pixels high. Every strip must have the size of the first; a row
    that does not is left out and named in a ValueError (mixing image sizes would misalign tiles).
    """
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    strips = [Image.open(row.strip).convert("RGB") for row in rows]
    size = strips[0].size
    wrong = [row.label for row, s in zip(rows, strips, strict=True) if s.size != size]
    if wrong:
        raise ValueError(
            f"strips differ in size from the first ({size[0]}x{size[1]}): {'; '.join(wrong)}"
        )
    scale = max(1, -(-min_tile // size[1]))  # ceil(min_tile / H)
    width, height = size[0] * scale, size[1] * scale
    font = _font(13)
    wrapped = [textwrap.wrap(row.label, label_chars) or [""] for row in rows]
    line_h = font.getbbox("Ag")[3] + 3
    label_w = 12 + max(int(font.getlength(line)) for lines in wrapped for line in lines)
    row_h = [max(height, len(lines) * line_h + 8) for lines in wrapped]
    sheet = Image.new("RGB", (label_w + width, sum(row_h) + 2 * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    y = 0
    for strip, lines, h in zip(strips, wrapped, row_h, strict=True):
        sheet.paste(strip.resize((width, height), Image.Resampling.NEAREST), (label_w, y))
        for i, line in enumerate(lines):
            draw.text((6, y + 4 + i * line_h), line, fill="black", font=font)
        y += h + 2
        draw.line([(0, y - 1), (sheet.width, y - 1)], fill=(200, 200, 200))
    for strip in strips:
        strip.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def sheet_rows_for_jobs(
    jobs: list[tuple[str, Path]], direction: str = "AB"
) -> tuple[list[SheetRow], list[str]]:
    """The rows of a sweep's sheet for `direction` ("AB": inputs A, translations to B).

    `jobs` are (label, run dir) in the order to show. The header rows (the input and, on paired
    data, the ground truth) come from the first job that left fixed translations. Returns the rows
    and the labels of the jobs that left none (listed by the caller, not silently dropped).
    """
    if direction not in ("AB", "BA"):
        raise ValueError(f"direction={direction}: use AB or BA")
    src, dst = direction[0], direction[1]
    found = [(label, d, read_contact_info(d)) for label, d in jobs]
    with_files = [
        (label, d, info) for label, d, info in found if info and f"fake_{dst}.png" in info["files"]
    ]
    missing = [
        label for label, _, info in found if not info or f"fake_{dst}.png" not in info["files"]
    ]
    if not with_files:
        return [], missing
    _, first, info = with_files[0]
    header = [SheetRow(f"input {src}", first / CONTACT_DIR / f"real_{src}.png")]
    if info["paired"]:
        header.append(SheetRow(f"ground truth {dst}", first / CONTACT_DIR / f"real_{dst}.png"))
    body = [SheetRow(label, d / CONTACT_DIR / f"fake_{dst}.png") for label, d, _ in with_files]
    return header + body, missing


# ---------------------------------------------------------------------------- a W&B table


def fixed_image_table(
    real: torch.Tensor,
    fake: torch.Tensor,
    reconstruction: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of a per-image table of the fixed test images of one direction.

    All (N, C, H, W) in [-1, 1]. Images become (H, W, 3) uint8 arrays (the W&B logger wraps them in
    `wandb.Image`). `psnr_cycle` scores the reconstruction against the input (defined on every
    dataset; left out for a method without the reverse translator); `psnr`/`ssim` score the
    translation against `target`, the ground truth, when the test set has one. So runs can be
    compared image by image, not only by their mean.
    """
    n = real.shape[0]
    # The translation and the ground truth are of the other domain, whose channel count may differ.
    if fake.shape[0] != n:
        raise ValueError(f"fake has {fake.shape[0]} images, real has {n}")
    for name, x, like in (("reconstruction", reconstruction, real), ("target", target, fake)):
        if x is not None and x.shape != like.shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)}, expected {tuple(like.shape)}")

    metrics = per_image_metrics(real, fake, reconstruction, target)
    columns = ["index", "input", "translation"]
    real_u8, fake_u8 = _to_uint8_hwc(real), _to_uint8_hwc(fake)
    rows: list[list[Any]] = [[i, real_u8[i], fake_u8[i]] for i in range(n)]
    if reconstruction is not None:
        rec_u8 = _to_uint8_hwc(reconstruction)
        cycle = metrics["psnr_cycle"]
        columns += ["reconstruction", "psnr_cycle"]
        for i, row in enumerate(rows):
            row += [rec_u8[i], cycle[i]]
    if target is not None:
        p, s = metrics["psnr"], metrics.get("ssim", [None] * n)
        gt = _to_uint8_hwc(target)
        columns += ["ground truth", "psnr", "ssim"]
        for i, row in enumerate(rows):
            row += [gt[i], p[i], s[i]]
    return columns, rows


TABLE_KEY = "fixed_images/{direction}"


def log_fixed_image_tables(
    log_table: Callable[[str, list[str], list[list[Any]], int], None],
    real_A: torch.Tensor,
    real_B: torch.Tensor,
    translate_AB: Translator,
    translate_BA: Translator | None,
    paired: bool,
    step: int,
) -> None:
    """At an evaluation: one table per direction (`fixed_images/AB`, `fixed_images/BA`) of the
    fixed test images, logged with `log_table(key, columns, rows, step)` (the W&B logger's).

    Translators in eval mode, as for `write_fixed_translations`. A->B rows: real A, G_AB(A),
    G_BA(G_AB(A)) and, paired, the true B. Without G_BA (one-way methods) only A->B, without the
    reconstruction.
    """
    import torch

    with torch.no_grad():
        fake_B = translate_AB(real_A)
        rec_A = translate_BA(fake_B) if translate_BA is not None else None
        columns, rows = fixed_image_table(real_A, fake_B, rec_A, real_B if paired else None)
        log_table(TABLE_KEY.format(direction="AB"), columns, rows, step)
        if translate_BA is not None:
            fake_A = translate_BA(real_B)
            rec_B = translate_AB(fake_A)
            columns, rows = fixed_image_table(real_B, fake_A, rec_B, real_A if paired else None)
            log_table(TABLE_KEY.format(direction="BA"), columns, rows, step)
