"""Download and safely unpack the public CycleGAN datasets.

Usage: ``python -m cyclegan.data.download horse2zebra --root data`` gives
``data/horse2zebra/{trainA,trainB,testA,testB}``, the layout ``UnpairedImageDataset`` reads.

Archives are validated before anything is written (no absolute paths, ``..`` or symlinks)
and unpacked into a temporary folder that is renamed into place only once complete, so an
interrupted or refused download never leaves a half-written dataset behind.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from tqdm import tqdm

__all__ = [
    "DATASETS",
    "URL_TEMPLATE",
    "DownloadError",
    "UnsafeArchiveError",
    "dataset_url",
    "download_dataset",
    "main",
]

logger = logging.getLogger(__name__)

# The names accepted by the official pytorch-CycleGAN-and-pix2pix download script
# (``mini`` is its tiny smoke-test set). pix2pix/colorization-only sets are left out.
DATASETS: tuple[str, ...] = (
    "apple2orange",
    "summer2winter_yosemite",
    "horse2zebra",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "cityscapes",
    "facades",
    "iphone2dslr_flower",
    "ae_photos",
    "grumpifycat",
    "mini",
)
URL_TEMPLATE = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"

# Not hosted for licence reasons; the official script only prints instructions for it.
_MANUAL_DATASETS = {
    "cityscapes": (
        "cityscapes is not redistributed for licence reasons; download it from "
        "https://www.cityscapes-dataset.com, convert it with the official "
        "prepare_cityscapes_dataset.py, or pass --url to your own copy"
    ),
}
# A single top-level folder with one of these names is dataset content, not a wrapper.
_LAYOUT_DIRS = frozenset(
    f"{split}{domain}" for split in ("train", "test", "val") for domain in "AB"
)
_LAYOUT_DIRS |= {"train", "test", "val"}
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


class DownloadError(RuntimeError):
    """A download or extraction failed; the message names the URL or file and the fix."""


class UnsafeArchiveError(DownloadError):
    """The archive has members that would land outside the target folder or are symlinks."""


def dataset_url(name: str) -> str:
    """The official download URL of dataset ``name``."""
    return URL_TEMPLATE.format(name=name)


def _check_name(name: str, url: str | None) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid dataset name {name!r}; use a plain folder name like horse2zebra")
    if url is None:
        if name not in DATASETS:
            raise ValueError(
                f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)} "
                "(or pass --url to download another archive)"
            )
        if name in _MANUAL_DATASETS:
            raise ValueError(_MANUAL_DATASETS[name])


def download_dataset(
    name: str,
    root: str | os.PathLike[str] = "data",
    url: str | None = None,
    force: bool = False,
    keep_zip: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download dataset ``name`` into ``root/name`` and return that folder.

    An existing non-empty ``root/name`` is returned as is unless ``force``. ``url`` overrides
    the official location (mirrors, private sets); then ``name`` need not be a known set.
    """
    _check_name(name, url)
    root = Path(root)
    target = root / name
    if target.exists() and not target.is_dir():
        raise DownloadError(f"'{target}' exists but is not a folder; move it away and retry")
    if not force and target.is_dir() and any(target.iterdir()):
        logger.info(
            "dataset '%s' already exists at '%s'; skipping download (use --force to redo it)",
            name,
            target,
        )
        return target
    zip_path = root / f"{name}.zip"
    _download_and_extract(
        url or dataset_url(name), zip_path, target, name, force, progress, timeout
    )
    if not keep_zip:
        zip_path.unlink(missing_ok=True)
    if not any((target / d).is_dir() for d in _LAYOUT_DIRS):
        logger.warning(
            "'%s' has no trainA/trainB (or train/A, train/B) folders; check the archive layout",
            target,
        )
    logger.info("dataset '%s' ready at '%s'", name, target)
    return target


def _download_and_extract(
    url: str, zip_path: Path, target: Path, name: str, force: bool, progress: bool, timeout: float
) -> None:
    """Fetch the archive (unless a previous download is there) and extract it; on failure remove
    what this call created (the archive it downloaded, the root folder it made)."""
    root = zip_path.parent
    created_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    downloaded = False
    try:
        if force or not zip_path.is_file():
            logger.info("downloading %s -> %s", url, zip_path)
            _fetch(url, zip_path, progress=progress, timeout=timeout)
            downloaded = True
        else:
            logger.info("using the previously downloaded '%s'", zip_path)
        _extract(zip_path, target, name)
    except BaseException:
        if downloaded:  # a bad or unsafe archive is useless; keep only one the user put there
            zip_path.unlink(missing_ok=True)
        if created_root:
            with contextlib.suppress(OSError):  # only succeeds if we left it empty
                root.rmdir()
        raise


def _fetch(url: str, dest: Path, progress: bool, timeout: float) -> None:
    """Stream ``url`` to ``dest`` through ``dest.part``; the .part file never survives an error."""
    part = dest.with_name(dest.name + ".part")
    done = False
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "cyclegan-download"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not progress,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(
                f"download of {url} is incomplete ({received} of {total} bytes); re-run to retry"
            )
        os.replace(part, dest)
        done = True
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(
            f"download of {url} failed: HTTP {exc.code} {exc.reason}; "
            "check the dataset name, or pass --url with a working mirror"
        ) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DownloadError(
            f"download of {url} failed: {reason or type(exc).__name__}; "
            "check your connection, or pass --url with a working mirror"
        ) from exc
    finally:
        if not done:
            part.unlink(missing_ok=True)


def _member_parts(info: zipfile.ZipInfo, zip_path: Path, base: Path) -> tuple[str, ...]:
    """Validated path components of one archive member; raises UnsafeArchiveError."""
    raw = info.filename

    def refuse(why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(
            f"refusing to extract '{zip_path}': member {raw!r} {why}; "
            "nothing was extracted, get the archive from a trusted source"
        )

    if stat.S_ISLNK(info.external_attr >> 16):
        raise refuse("is a symlink")
    normalized = raw.replace("\\", "/")
    if normalized.startswith("/") or _DRIVE.match(normalized):
        raise refuse("has an absolute path")
    parts = tuple(p for p in PurePosixPath(normalized).parts if p != ".")
    if ".." in parts:
        raise refuse("escapes the target folder with '..'")
    # Defence in depth: the resolved destination must stay inside the target folder.
    resolved_base = base.resolve()
    if parts and not base.joinpath(*parts).resolve().is_relative_to(resolved_base):
        raise refuse("escapes the target folder")
    return parts


def _plan(
    zf: zipfile.ZipFile, zip_path: Path, target: Path
) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Check every member before writing anything and map it to its path under the target."""
    plan = []
    for info in zf.infolist():
        parts = _member_parts(info, zip_path, target)
        if not parts or parts[0] == "__MACOSX" or parts[-1] == ".DS_Store":
            continue  # macOS archive clutter
        plan.append((info, parts))
    # Official zips wrap everything in NAME/; strip any single wrapper folder.
    tops = {parts[0] for _, parts in plan}
    wrapped = all(len(parts) > 1 or info.is_dir() for info, parts in plan)
    if len(tops) == 1 and tops.isdisjoint(_LAYOUT_DIRS) and wrapped:
        plan = [(info, parts[1:]) for info, parts in plan if len(parts) > 1]
    return plan


def _extract(zip_path: Path, target: Path, name: str) -> None:
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(
            f"'{zip_path}' is not a valid zip archive ({exc}); re-run with --force to download it"
        ) from exc
    with zf:
        plan = _plan(zf, zip_path, target)
        if not plan:
            raise DownloadError(f"'{zip_path}' contains no files; check the URL")
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=target.parent))
        try:
            for info, parts in plan:
                dest = tmp.joinpath(*parts)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
            _move_into_place(tmp, target)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            # NotImplementedError: unsupported compression method.
            shutil.rmtree(tmp, ignore_errors=True)
            raise DownloadError(
                f"'{zip_path}' cannot be extracted ({exc}); re-run with --force to download it "
                "again, or unpack it by hand"
            ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` to ``target``, replacing an old ``target`` only at the end."""
    if not target.exists():
        tmp.rename(target)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    old = trash / target.name
    target.rename(old)
    try:
        tmp.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(trash, ignore_errors=True)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cyclegan.data.download",
        description="Download a public CycleGAN dataset into ROOT/NAME.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="dataset name, e.g. horse2zebra")
    parser.add_argument("--root", default="data", help="parent folder (default: data)")
    parser.add_argument("--url", help="download from this URL instead (mirror or custom set)")
    parser.add_argument("--force", action="store_true", help="re-download and replace")
    parser.add_argument("--keep-zip", action="store_true", help="keep ROOT/NAME.zip afterwards")
    parser.add_argument("--list", action="store_true", help="list known dataset names and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error; argparse already printed why
        return exc.code if isinstance(exc.code, int) else 2
    if args.list:
        for name in DATASETS:
            print(f"{name}  (manual download)" if name in _MANUAL_DATASETS else name)
        return 0
    if not args.name:
        parser.print_usage(sys.stderr)
        print("error: NAME is required (see --list for the choices)", file=sys.stderr)
        return 2

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        path = download_dataset(
            args.name, root=args.root, url=args.url, force=args.force, keep_zip=args.keep_zip
        )
    except (ValueError, OSError, DownloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was left half-written, re-run to retry", file=sys.stderr)
        return 130
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
