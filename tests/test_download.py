"""Tests for cyclegan.data.download against a local HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from cyclegan.data.download import (
    DATASETS,
    URL_TEMPLATE,
    DownloadError,
    UnsafeArchiveError,
    download_dataset,
    main,
)


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


def make_zip(members: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = 0o120777 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def dataset_zip(prefix: str) -> bytes:
    img = png_bytes()
    return make_zip({f"{prefix}{d}/x.png": img for d in ("trainA", "trainB", "testA", "testB")})


class Server:
    """Serves ``files`` (URL path -> bytes); ``truncate`` paths lie about Content-Length."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                extra = 1000 if self.path in server.truncate else 0
                self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("prefix", ["toy/", ""])
def test_download_extracts_and_cleans_up(server: Server, tmp_path: Path, prefix: str) -> None:
    server.files["/toy.zip"] = dataset_zip(prefix)
    root = tmp_path / "data"
    out = download_dataset("toy", root=root, url=server.url("/toy.zip"), progress=False)
    assert out == root / "toy"
    for d in ("trainA", "trainB", "testA", "testB"):
        assert (out / d / "x.png").read_bytes() == png_bytes()
    assert tree(root) == [
        "toy",
        *(f"toy/{d}{s}" for d in ("testA", "testB", "trainA", "trainB") for s in ("", "/x.png")),
    ]

    # Second call: already there, no new request.
    again = download_dataset("toy", root=root, url=server.url("/toy.zip"), progress=False)
    assert again == out and server.requests == ["/toy.zip"]


def test_force_replaces_and_keep_zip(server: Server, tmp_path: Path) -> None:
    server.files["/toy.zip"] = dataset_zip("toy/")
    (tmp_path / "toy" / "stale").mkdir(parents=True)
    url = server.url("/toy.zip")
    out = download_dataset("toy", root=tmp_path, url=url, force=True, keep_zip=True)
    assert not (out / "stale").exists() and (out / "trainA" / "x.png").is_file()
    assert (tmp_path / "toy.zip").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy", "toy.zip"]


@pytest.mark.parametrize(
    ("members", "symlinks"),
    [
        ({"toy/trainA/x.png": b"ok", "../evil.txt": b"pwned"}, ()),
        ({"toy/trainA/x.png": b"ok", "toy/../../evil.txt": b"pwned"}, ()),
        ({"toy/trainA/x.png": b"ok", "/tmp/evil.txt": b"pwned"}, ()),
        ({"toy/trainA/x.png": b"ok", "C:/evil.txt": b"pwned"}, ()),
        (
            {"toy/trainA/x.png": b"ok", "toy/trainA/link.png": b"/etc/passwd"},
            ("toy/trainA/link.png",),
        ),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "drive", "symlink"],
)
def test_unsafe_archives_are_refused(
    server: Server, tmp_path: Path, members: dict[str, bytes], symlinks: tuple[str, ...]
) -> None:
    server.files["/toy.zip"] = make_zip(members, symlinks)
    root = tmp_path / "nest" / "data"
    root.mkdir(parents=True)
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        download_dataset("toy", root=root, url=server.url("/toy.zip"), progress=False)
    assert not (root / "toy").exists()
    assert tree(tmp_path) == ["nest", "nest/data"]  # no evil.txt, temp folder or zip anywhere


def test_http_error_leaves_no_partial_file(server: Server, tmp_path: Path) -> None:
    url = server.url("/missing.zip")
    with pytest.raises(DownloadError, match=r"HTTP 404") as info:
        download_dataset("missing", root=tmp_path, url=url, progress=False)
    assert url in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DownloadError):  # a root folder it had to create is removed again
        download_dataset("missing", root=tmp_path / "new", url=url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_leaves_no_partial_file(server: Server, tmp_path: Path) -> None:
    server.files["/toy.zip"] = dataset_zip("toy/")
    server.truncate.add("/toy.zip")
    with pytest.raises(DownloadError, match=r"toy\.zip"):
        download_dataset("toy", root=tmp_path, url=server.url("/toy.zip"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_not_a_zip(server: Server, tmp_path: Path) -> None:
    server.files["/toy.zip"] = b"<html>mirror error page</html>"
    with pytest.raises(DownloadError, match="not a valid zip"):
        download_dataset("toy", root=tmp_path, url=server.url("/toy.zip"), progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_and_invalid_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'horse2cat'.*horse2zebra"):
        download_dataset("horse2cat", root=tmp_path)
    with pytest.raises(ValueError, match="licence"):
        download_dataset("cityscapes", root=tmp_path)
    with pytest.raises(ValueError, match="invalid dataset name"):
        download_dataset("../up", root=tmp_path, url="http://127.0.0.1:9/x.zip")
    assert list(tmp_path.iterdir()) == []


def test_dataset_list() -> None:
    assert {"horse2zebra", "apple2orange", "monet2photo", "grumpifycat", "ae_photos"} <= set(
        DATASETS
    )
    assert URL_TEMPLATE.format(name="maps").endswith("/cyclegan/datasets/maps.zip")


def test_cli(server: Server, tmp_path: Path, capsys) -> None:
    server.files["/toy.zip"] = dataset_zip("toy/")
    url = server.url("/toy.zip")
    assert main(["toy", "--root", str(tmp_path), "--url", url]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "toy")
    assert main(["toy", "--root", str(tmp_path), "--url", url]) == 0
    assert "already exists" in capsys.readouterr().err

    assert main(["--list"]) == 0
    assert "horse2zebra" in capsys.readouterr().out

    assert main(["horse2cat", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset") and "Traceback" not in err

    assert main(["gone", "--root", str(tmp_path), "--url", server.url("/gone.zip")]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["toy", "--bogus"]) == 2
