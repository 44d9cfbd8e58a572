"""python -m cyclegan.pretrained against a local HTTP server (127.0.0.1 only), then translate."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.data.download import DownloadError
from cyclegan.inference import translate
from cyclegan.inference.importers import Format, load_generator
from cyclegan.inference.pretrained import (
    BASE_URL,
    BASE_URL_ENV,
    MODELS,
    default_root,
    download_pretrained,
    main,
    model_url,
    pretrained_path,
)
from tests.test_download import Server, tree

# A small generator in the official format (ResNet, conv_block., instance norm), as the official
# server holds them (those are 9 blocks, ngf 64: 11 MB; the layout is the same).
OFFICIAL = Path(__file__).parent / "data" / "official_latest_net_G_A_resnet6_ngf16.pth"


@pytest.fixture
def server() -> Iterator[Server]:
    """A local HTTP server serving `server.files` (the dataset downloader's test server)."""
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    monkeypatch.setenv("CYCLEGAN_HOME", str(tmp_path / "home"))


def test_names_and_urls_follow_the_official_script(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(MODELS) == 18 and {"horse2zebra", "style_monet", "iphone2dslr_flower"} <= set(MODELS)
    assert model_url("horse2zebra") == (
        "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth"
    )
    assert model_url("sat2map", "http://mirror/x/") == "http://mirror/x/sat2map.pth"
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:1/m")
    assert model_url("sat2map") == "http://127.0.0.1:1/m/sat2map.pth"
    assert BASE_URL.startswith("http://efrosgans")


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_root() == tmp_path / "home" / "pretrained"
    assert pretrained_path("horse2zebra") == (
        tmp_path / "home" / "pretrained" / "horse2zebra_pretrained" / "latest_net_G.pth"
    )
    monkeypatch.delenv("CYCLEGAN_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "cyclegan" / "pretrained"
    assert pretrained_path("zebra2horse", "ck") == Path(
        "ck/zebra2horse_pretrained/latest_net_G.pth"
    )


def test_download_then_translate_end_to_end(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    server.files["/pretrained_models/horse2zebra.pth"] = OFFICIAL.read_bytes()
    monkeypatch.setenv(BASE_URL_ENV, server.url("/pretrained_models"))
    root = tmp_path / "cache"
    assert main(["horse2zebra", "--root", str(root), "--no-progress"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == root / "horse2zebra_pretrained" / "latest_net_G.pth"
    assert path.read_bytes() == OFFICIAL.read_bytes()
    assert tree(root) == ["horse2zebra_pretrained", "horse2zebra_pretrained/latest_net_G.pth"]

    # Cached: no second request; listed as cached.
    assert main(["horse2zebra", "--root", str(root)]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert server.requests == ["/pretrained_models/horse2zebra.pth"]
    assert main(["--root", str(root)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == len(MODELS) and f"horse2zebra  (cached: {path})" in listing

    # translate works with the downloaded file, and gives the generator's own output.
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), np.uint8))
    image.save(tmp_path / "horse.png")
    out = tmp_path / "zebras"
    assert (
        translate.main(
            [
                f"ckpt={path}",
                f"input={tmp_path / 'horse.png'}",
                f"output={out}",
                "progress=false",
                "device=cpu",
            ]
        )
        == 0
    )
    loaded = load_generator(path)
    assert loaded.format is Format.official and loaded.spec.n_residual_blocks == 6
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        y = translate.run_padded(loaded.generator, x)[0]
    expected = ((y.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    got = np.asarray(Image.open(out / "horse.png"), dtype=float)
    assert got.shape == (20, 24, 3) and np.abs(got - expected).max() <= 1


def test_http_error_is_one_line_and_leaves_nothing(server: Server, tmp_path: Path, capsys) -> None:
    root = tmp_path / "cache"
    args = ["zebra2horse", "--root", str(root), "--base-url", server.url("/nowhere")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: download of http://127.0.0.1") and "HTTP 404" in err
    assert "\n" not in err and "Traceback" not in err
    assert not root.exists()


def test_offline_is_one_line(tmp_path: Path, capsys) -> None:
    with socket.socket() as s:  # a port on which nothing listens: connection refused, no internet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert (
        main(
            ["horse2zebra", "--root", str(tmp_path / "c"), "--base-url", f"http://127.0.0.1:{port}"]
        )
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: download of") and "check your connection" in err and "\n" not in err
    )
    assert not (tmp_path / "c").exists()


def test_truncated_and_wrong_files_are_not_kept(server: Server, tmp_path: Path) -> None:
    server.files["/m/horse2zebra.pth"] = OFFICIAL.read_bytes()
    server.truncate.add("/m/horse2zebra.pth")
    server.files["/m/zebra2horse.pth"] = b"<html>this mirror has moved</html>"
    root = tmp_path / "cache"
    root.mkdir()
    with pytest.raises(DownloadError, match="incomplete"):
        download_pretrained("horse2zebra", root, base_url=server.url("/m"), progress=False)
    with pytest.raises(DownloadError, match=r"did not give a CycleGAN generator.*check the URL"):
        download_pretrained("zebra2horse", root, base_url=server.url("/m"), progress=False)
    assert list(root.iterdir()) == []  # no .part, no half file, no empty model folder


def test_force_downloads_again(server: Server, tmp_path: Path) -> None:
    server.files["/m/monet2photo.pth"] = OFFICIAL.read_bytes()
    first = download_pretrained("monet2photo", tmp_path, base_url=server.url("/m"), progress=False)
    first.write_bytes(b"stale")
    again = download_pretrained(
        "monet2photo", tmp_path, base_url=server.url("/m"), force=True, progress=False
    )
    assert again == first and first.read_bytes() == OFFICIAL.read_bytes()
    assert len(server.requests) == 2


def test_unknown_name_and_usage(capsys) -> None:
    assert main(["horse2cat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: unknown pretrained model 'horse2cat'; choose one of: apple2orange"
    )
    assert err.count("\n") == 1
    with pytest.raises(ValueError, match="unknown pretrained model"):
        pretrained_path("../etc")
    assert main(["horse2zebra", "--bogus"]) == 2
