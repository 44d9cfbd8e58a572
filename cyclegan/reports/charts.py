"""Line charts for the run report, drawn as inline SVG by a template (`chart.svg.j2`).

A run's report is written at the end of every training, tests included, so it must cost little:
matplotlib takes about a second to import and half a second to draw a run's three plots; an SVG
chart is a few polylines and tick labels, drawn by the browser, sharp at any zoom. This module
only computes the geometry (scaled points, "nice" ticks); the template lays it out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Matplotlib's default colour cycle, so the run's charts look like the sweep's PNG plots.
COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


@dataclass
class Series:
    label: str
    colour: str
    points: str  # "x1,y1 x2,y2 ..." in SVG coordinates
    dots: list[tuple[float, float]]  # markers where a series has few points


@dataclass
class Chart:
    title: str
    width: int = 560
    height: int = 300
    left: int = 64  # room for the y tick labels
    right: int = 150  # room for the legend
    top: int = 28
    bottom: int = 40
    x_ticks: list[tuple[float, str]] = field(default_factory=list)  # (position, label)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    x_label: str = "step"

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round values (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.6g}"


def line_chart(title: str, series: dict[str, tuple[list[int], list[float]]]) -> Chart:
    """A chart of each named (steps, values) series against the step, on shared axes."""
    chart = Chart(title=title)
    xs = [x for steps, _ in series.values() for x in steps]
    ys = [y for _, values in series.values() for y in values]
    # The x axis spans the steps logged (round ticks inside it); the y axis round values around
    # the data.
    x0, x1 = min(xs), max(xs)
    x_ticks = [t for t in nice_ticks(x0, x1, 6) if x0 <= t <= x1] or [x0]
    y_ticks = nice_ticks(min(ys), max(ys), 5)
    y0, y1 = y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return chart.left + (x - x0) / ((x1 - x0) or 1) * chart.plot_width

    def sy(y: float) -> float:
        return chart.top + (1 - (y - y0) / ((y1 - y0) or 1)) * chart.plot_height

    chart.x_ticks = [(round(sx(t), 1), _label(t)) for t in x_ticks]
    chart.y_ticks = [(round(sy(t), 1), _label(t)) for t in y_ticks]
    for i, (label, (steps, values)) in enumerate(series.items()):
        points = [(round(sx(x), 1), round(sy(y), 1)) for x, y in zip(steps, values, strict=True)]
        chart.series.append(
            Series(
                label=label,
                colour=COLOURS[i % len(COLOURS)],
                points=" ".join(f"{x},{y}" for x, y in points),
                dots=points if len(points) <= 12 else [],
            )
        )
    return chart
