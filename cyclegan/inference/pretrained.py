"""Download the official CycleGAN pretrained generators into a local cache.

    python -m cyclegan.pretrained                       # list the models (and which are cached)
    python -m cyclegan.pretrained horse2zebra           # download; prints the file's path
    python -m cyclegan.pretrained style_monet --root checkpoints
    python -m cyclegan.translate ckpt=<that path> input=horses/ output=zebras/

The names and the location are those of the official repository's
``scripts/download_cyclegan_model.sh`` (junyanz/pytorch-CycleGAN-and-pix2pix): the file
``<base>/<name>.pth``, saved as ``<root>/<name>_pretrained/latest_net_G.pth`` (the official layout,
so ``--root checkpoints`` gives exactly what the script makes). Each is one generator (ResNet,
9 blocks, instance norm) translating in the direction its name says; translate, export and
evaluate read it as the ``official`` format.

Where things go and come from:

* root: ``--root DIR``, else ``$CYCLEGAN_HOME/pretrained``, else
  ``$XDG_CACHE_HOME/cyclegan/pretrained`` (``~/.cache/cyclegan/pretrained``);
* base URL: ``--base-url URL``, else ``$CYCLEGAN_PRETRAINED_URL``, else the official server (a
  mirror, or a local server in the tests); ``--url`` names the whole file URL instead.

The download streams through ``<file>.part`` with a progress bar and is renamed into place only
once complete and loadable as a generator, so an interrupted, truncated or wrong download (an HTML
error page) never leaves a file that looks finished. A file already in the cache is not downloaded
again unless ``--force``. Errors (offline, HTTP 404, an unknown name) are one line naming the fix.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cyclegan.data.download import DownloadError
from cyclegan.data.download import _fetch as fetch_to_file  # the one home of the .part rule

__all__ = [
    "BASE_URL",
    "BASE_URL_ENV",
    "MODELS",
    "default_root",
    "download_pretrained",
    "main",
    "model_url",
    "pretrained_path",
]

# scripts/download_cyclegan_model.sh, in its order.
MODELS: tuple[str, ...] = (
    "apple2orange",
    "orange2apple",
    "summer2winter_yosemite",
    "winter2summer_yosemite",
    "horse2zebra",
    "zebra2horse",
    "monet2photo",
    "style_monet",
    "style_cezanne",
    "style_ukiyoe",
    "style_vangogh",
    "sat2map",
    "map2sat",
    "cityscapes_photo2label",
    "cityscapes_label2photo",
    "facades_photo2label",
    "facades_label2photo",
    "iphone2dslr_flower",
)
BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
BASE_URL_ENV = "CYCLEGAN_PRETRAINED_URL"
FILE_NAME = "latest_net_G.pth"  # what the official script saves and its test.py loads


def default_root() -> Path:
    """The cache folder: $CYCLEGAN_HOME/pretrained, else the user's cache directory."""
    home = os.environ.get("CYCLEGAN_HOME")
    if home:
        return Path(home).expanduser() / "pretrained"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "cyclegan" / "pretrained"


def _check_name(name: str) -> None:
    if name not in MODELS:
        raise ValueError(
            f"unknown pretrained model {name!r}; choose one of: {', '.join(MODELS)} "
            "(python -m cyclegan.pretrained lists them)"
        )


def model_url(name: str, base_url: str | None = None) -> str:
    """Where model `name` is downloaded from (`base_url`, $CYCLEGAN_PRETRAINED_URL, official)."""
    base = base_url or os.environ.get(BASE_URL_ENV) or BASE_URL
    return f"{base.rstrip('/')}/{name}.pth"


def pretrained_path(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where model `name` lives in the cache (whether or not it is there yet)."""
    _check_name(name)
    return (Path(root) if root is not None else default_root()) / f"{name}_pretrained" / FILE_NAME


def _validate(path: Path, url: str) -> None:
    """Refuse a download that is not a loadable generator (a mirror's error page, a wrong file)."""
    from cyclegan.inference.importers import load_generator  # only needed after a download

    try:
        load_generator(path)
    except Exception as exc:  # any reason it cannot be used: the file is useless in the cache
        raise DownloadError(
            f"{url} did not give a CycleGAN generator ({str(exc).splitlines()[0][:160]}); "
            "check the URL or mirror, then re-run"
        ) from exc


def download_pretrained(
    name: str,
    root: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    url: str | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download pretrained generator `name` into the cache (once) and return its path."""
    dest = pretrained_path(name, root)
    if dest.is_file() and not force:
        return dest
    url = url or model_url(name, base_url)
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Fetched as NAME.pth (via NAME.pth.part), checked, then renamed: `dest` exists only when usable.
    tmp = dest.with_name(f"{name}.pth")
    try:
        fetch_to_file(url, tmp, progress=progress, timeout=timeout)
        _validate(tmp, url)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        for folder in created:  # the folders this call made, innermost first, if still empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return dest


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cyclegan.pretrained",
        description="List or download the official CycleGAN pretrained generators.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="model name, e.g. horse2zebra")
    parser.add_argument(
        "--root",
        help="cache folder (default: $CYCLEGAN_HOME/pretrained or ~/.cache/cyclegan/pretrained)",
    )
    parser.add_argument("--base-url", help=f"server folder holding NAME.pth (${BASE_URL_ENV})")
    parser.add_argument("--url", help="download this exact file URL instead")
    parser.add_argument("--force", action="store_true", help="download again even if cached")
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 done, 1 the download failed, 2 bad arguments (unknown name, usage)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error, already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    if args.list or not args.name:
        root = Path(args.root) if args.root else default_root()
        for name in MODELS:
            cached = pretrained_path(name, root).is_file()
            print(f"{name}  (cached: {pretrained_path(name, root)})" if cached else name)
        return 0
    try:
        _check_name(args.name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        path = download_pretrained(
            args.name,
            args.root,
            base_url=args.base_url,
            url=args.url,
            force=args.force,
            progress=not args.no_progress,
        )
    except (OSError, DownloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was left half-written, re-run to retry", file=sys.stderr)
        return 130
    print(path)
    print(
        f"translate with: python -m cyclegan.translate ckpt={path} input=<images> output=<folder>",
        file=sys.stderr,
    )
    return 0
