"""The report pages' common parts: the Jinja2 environment, embedded pictures, number formats.

Pictures are embedded as `data:image/png;base64,...` URIs rather than linked: a report copied on
its own (mailed, attached to an issue) still shows them. Links between reports (a sweep's to its
jobs') are relative, so they survive copying the folder that holds both.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from pathlib import Path
from typing import Any

from cyclegan.files import atomic_write

REPORT_FILE = "report.html"


@functools.cache  # compiled templates are reused by every report of a process
def environment() -> Any:
    """Templates from this package (installed as package data), HTML-escaped by default."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cyclegan.reports", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = number
    env.filters["breakable"] = breakable
    return env


def breakable(text: Any) -> Any:
    """Escaped text that may wrap after each "/" (long metric names in narrow table headers)."""
    from markupsafe import Markup, escape

    return Markup("/<wbr>").join(escape(part) for part in str(text).split("/"))


def render(template: str, path: Path, **context: Any) -> Path:
    """Render `template` with `context` into `path`, atomically (a reader never sees half)."""
    html = environment().get_template(template).render(**context)
    return atomic_write(path, lambda tmp: tmp.write_text(html, encoding="utf-8"), fsync=False)


def number(value: Any, digits: int = 4) -> str:
    """A table cell: floats to `digits` significant digits, None and NaN as "-"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def file_uri(path: Path) -> str | None:
    """A PNG file as a data URI (None when it is missing or unreadable)."""
    try:
        return png_uri(Path(path).read_bytes())
    except OSError:
        return None


def image_uri(image: Any) -> str:
    """A PIL image as a PNG data URI."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return png_uri(buffer.getvalue())
