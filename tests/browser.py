"""A real browser for the report tests: Debian's headless Chromium, driven over the DevTools
protocol through a pipe (`--remote-debugging-pipe`: JSON messages ended by NUL on file
descriptors 3 and 4), so no driver package or network port is needed.

`open_page(path)` loads a local HTML file, waits for its load event (every image fetched or
failed), and returns what the page reports about itself (`evaluate`) and a PNG screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The flags this workplace's machines need (no sandbox as root, no background network traffic).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


# Debian's /usr/bin/chromium is a shell script that adds flags and execs this binary; started
# directly, nothing stands between the pipe's file descriptors and the browser.
DEBIAN_BINARY = Path("/usr/lib/chromium/chromium")


def chromium_path() -> str | None:
    """$CHROMIUM, else Debian's chromium binary, else a Chromium on PATH; None without one."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    if DEBIAN_BINARY.is_file() and os.access(DEBIAN_BINARY, os.X_OK):
        return str(DEBIAN_BINARY)
    names = ("chromium", "chromium-browser", "google-chrome")
    return next((p for p in map(shutil.which, names) if p), None)


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium process and its DevTools pipe."""

    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def as_fds_3_and_4() -> None:
            # The browser reads commands on its fd 3 and writes replies on its fd 4. Copies above
            # 9 first, so that a pipe end already numbered 3 or 4 is not overwritten before it is
            # moved, and dup2 never meets an fd onto itself (which would keep close-on-exec).
            read = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            write = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read, 3)
            os.dup2(write, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.log = tempfile.NamedTemporaryFile(prefix="chromium-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            close_fds=False,  # closing would happen after the move and take fds 3 and 4 too
            preexec_fn=as_fds_3_and_4,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError(f"Chromium closed its DevTools pipe: {self.last_words()}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def last_words(self) -> str:
        """The end of Chromium's log, without the D-Bus complaints of a machine with no bus."""
        lines = Path(self.log.name).read_text(errors="replace").splitlines()
        return " | ".join([line for line in lines if "dbus" not in line][-3:])

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """A DevTools command; its result (events that arrive meanwhile are kept in `events`)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise BrowserError(f"Chromium is gone: {self.last_words()}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)
        self.log.close()


# Run in the page once it has loaded: what the tests check, as the browser sees it.
PAGE_FACTS = """(() => {
  const images = [...document.images];
  return {
    title: document.title,
    images: images.length,
    broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt || i.src.slice(0, 60)),
    svgCharts: document.querySelectorAll('svg.chart polyline').length,
    tables: Object.fromEntries([...document.querySelectorAll('table[id]')].map(
      t => [t.id, t.querySelectorAll('tbody tr').length])),
    fixedRows: [...document.querySelectorAll('table.fixed tbody tr')].length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    text: document.body.innerText,
    height: document.documentElement.scrollHeight,
  };
})()"""


@dataclass
class Page:
    facts: dict[str, Any]
    screenshot: bytes  # PNG of the first screen (width x height)


def open_page(path: Path, width: int = 1366, height: int = 900, timeout: float = 60.0) -> Page:
    """Load `path` in headless Chromium at a laptop's screen size; its facts and a screenshot."""
    executable = chromium_path()
    if executable is None:
        raise BrowserError("no chromium on PATH (Debian: apt-get install chromium)")
    browser = Chromium(executable, timeout)
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        browser.send("Page.enable", session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.send("Page.navigate", session, url=path.resolve().as_uri())
        browser.wait_for("Page.loadEventFired", session)  # after every image loaded or failed
        facts = browser.send(
            "Runtime.evaluate", session, expression=PAGE_FACTS, returnByValue=True
        )["result"]["value"]
        shot = browser.send("Page.captureScreenshot", session, format="png")["data"]
        return Page(facts=facts, screenshot=base64.b64decode(shot))
    finally:
        browser.close()
