"""Inline SVG charts for the HTML reports: axes, ticks, polylines and bars as text.

No script and no library: each chart is one ``<svg class="chart">`` whose data marks sit in
``<g class="plot">`` (what the report's self-check measures). Colours are CSS classes (``s1``
... ``s4``, ``ok``, ``bad``, ``mark``) resolved by the page's stylesheet, so one chart reads
in light, dark and print. Every text passes through :func:`esc`.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH = 1000
HEIGHT = 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 24, 34, 42
# XML 1.0 forbids these even escaped; a browser shrugs, but the document should stay
# parseable as XML (the tests parse it, and so may a user's tooling).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def esc(value: object) -> str:
    """Text for HTML or SVG, attributes included: escaped, XML-forbidden characters replaced."""
    return html.escape(_NOT_XML.sub("\ufffd", str(value)), quote=True)


def _n(v: float) -> str:
    """A coordinate: two decimals are finer than a pixel."""
    return f"{v:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Axis:
    """A data range drawn over a pixel range; ``log``: positions by log10 (values > 0)."""

    lo: float
    hi: float
    ticks: tuple[tuple[float, str], ...]
    title: str
    log: bool = False

    def at(self, v: float, a: float, b: float) -> float:
        """The pixel of ``v`` between ``a`` (at lo) and ``b`` (at hi), clamped to the range."""
        lo, hi = self.lo, self.hi
        if self.log:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(v, self.lo))
        f = (v - lo) / (hi - lo) if hi > lo else 0.5
        if not math.isfinite(f):  # a NaN from a hand-edited report: the axis, not "nan"
            f = 0.0
        return a + (b - a) * min(max(f, 0.0), 1.0)


def nice_step(span: float, count: int) -> float:
    """The 1-2-5 step that cuts ``span`` into at most about ``count`` parts."""
    raw = span / max(count, 1)
    if not raw > 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(raw))
    return next(m * base for m in (1.0, 2.0, 5.0, 10.0) if m * base >= raw * 0.999)


def linear_axis(
    lo: float, hi: float, title: str, fmt: Callable[[float], str], count: int = 5
) -> Axis:
    """Round bounds around [lo, hi] with 1-2-5 ticks; an empty span gets one unit."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    step = nice_step(hi - lo, count)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    ticks = tuple((i * step, fmt(i * step)) for i in range(first, last + 1))
    return Axis(first * step, last * step, ticks, title)


def log_axis(lo: float, hi: float, title: str, fmt: Callable[[float], str]) -> Axis:
    """1-2-5 ticks per decade between the 1-2-5 values around [lo, hi] (lo > 0)."""
    lo = max(lo, 1e-9)
    hi = max(hi, lo * 2)
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    values = [(m * 10.0**e, m) for e in decades for m in (1, 2, 5)]
    low = max(v for v, _ in values if v <= lo * 1.0001)
    high = min(v for v, _ in values if v >= hi * 0.9999)
    inside = [(v, m) for v, m in values if low <= v <= high]
    if len(inside) > 10:  # many decades: the decades alone
        inside = [(v, m) for v, m in inside if m == 1]
    return Axis(low, high, tuple((v, fmt(v)) for v, _ in inside), title, log=True)


@dataclass(frozen=True)
class Series:
    """One line; ``None`` in ``points`` breaks it (a gap in time). ``dots``: a marker per point
    (so a one-point series still shows); ``line=False``: markers only."""

    name: str
    points: tuple[tuple[float, float] | None, ...]
    css: str = "s1"
    dots: bool = False
    line: bool = True
    dashed: bool = False


@dataclass(frozen=True)
class Mark:
    """A labelled reference line across the plot, at ``value`` on the x or the y axis."""

    axis: str  # "x" or "y"
    value: float
    label: str
    css: str = "mark"
    at_end: bool = False  # a y mark's label at the right end, above the line (else left, below)


@dataclass(frozen=True)
class _Frame:
    x: Axis
    y: Axis
    width: int
    height: int

    def px(self, x: float) -> float:
        return self.x.at(x, _LEFT, self.width - _RIGHT)

    def py(self, y: float) -> float:
        return self.y.at(y, self.height - _BOTTOM, _TOP)


def _open(title: str, width: int, height: int, kind: str) -> str:
    return (
        f'<svg class="chart {kind}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{esc(title)}</title>"
    )


def _axes(f: _Frame) -> str:
    left, right, top, bottom = _LEFT, f.width - _RIGHT, _TOP, f.height - _BOTTOM
    out = ['<g class="grid">']
    for v, _ in f.y.ticks:
        out.append(f'<line x1="{left}" x2="{right}" y1="{_n(f.py(v))}" y2="{_n(f.py(v))}"/>')
    for v, _ in f.x.ticks:
        out.append(f'<line x1="{_n(f.px(v))}" x2="{_n(f.px(v))}" y1="{top}" y2="{bottom}"/>')
    out.append('</g><g class="axis">')
    out.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}"/>')
    for v, label in f.y.ticks:
        y = _n(f.py(v) + 4)
        out.append(f'<text x="{left - 6}" y="{y}" text-anchor="end">{esc(label)}</text>')
    for v, label in f.x.ticks:
        x = _n(f.px(v))
        out.append(f'<text x="{x}" y="{bottom + 16}" text-anchor="middle">{esc(label)}</text>')
    out.append(
        f'<text class="title" x="{(left + right) // 2}" y="{f.height - 6}" '
        f'text-anchor="middle">{esc(f.x.title)}</text>'
        f'<text class="title" x="{left}" y="{top - 14}" text-anchor="start">'
        f"{esc(f.y.title)}</text></g>"
    )
    return "".join(out)


def _runs(points: Sequence[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for p in points:
        if p is None:
            runs.append([])
        else:
            runs[-1].append(p)
    return [r for r in runs if r]


def _series(f: _Frame, s: Series) -> str:
    out = []
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    for run in _runs(s.points) if s.line else []:
        xy = " ".join(f"{_n(f.px(x))},{_n(f.py(y))}" for x, y in run)
        out.append(f'<polyline class="line {s.css}" points="{xy}"{dash}/>')
    # Markers alone are rings, larger, to circle a point of another series (a failed step).
    css, r = (f"dot {s.css}", "3.5") if s.line else (f"ring {s.css}", "7")
    if s.dots or not s.line:
        for p in s.points:
            if p is not None:
                cx, cy = _n(f.px(p[0])), _n(f.py(p[1]))
                out.append(f'<circle class="{css}" cx="{cx}" cy="{cy}" r="{r}"/>')
    return "".join(out)


def _mark(f: _Frame, m: Mark) -> str:
    if m.axis == "x":
        x = _n(f.px(m.value))
        return (
            f'<g class="{esc(m.css)}"><line x1="{x}" x2="{x}" y1="{_TOP}" '
            f'y2="{f.height - _BOTTOM}"/><text x="{x}" y="{_TOP + 12}" dx="4">'
            f"{esc(m.label)}</text></g>"
        )
    y = _n(f.py(m.value))
    near_top = f.py(m.value) < _TOP + 16
    place = (
        f'x="{f.width - _RIGHT - 4}" y="{y}" dy="{14 if near_top else -5}" text-anchor="end"'
        if m.at_end
        else f'x="{_LEFT + 6}" y="{y}" dy="14"'
    )
    return (
        f'<g class="{esc(m.css)}"><line x1="{_LEFT}" x2="{f.width - _RIGHT}" y1="{y}" '
        f'y2="{y}"/><text {place}>{esc(m.label)}</text></g>'
    )


def _legend(f: _Frame, series: Sequence[Series]) -> str:
    out, x = ['<g class="legend">'], f.width - _RIGHT
    for s in reversed(series):
        x -= 14 + 7 * len(s.name) + 18
        swatch = (
            f'<line class="line {s.css}" x1="{x}" x2="{x + 14}" y1="{_TOP - 18}" y2="{_TOP - 18}"/>'
            if s.line
            else f'<circle class="ring {s.css}" cx="{x + 7}" cy="{_TOP - 18}" r="5"/>'
        )
        out.append(f'{swatch}<text x="{x + 18}" y="{_TOP - 14}">{esc(s.name)}</text>')
    return "".join(out) + "</g>"


def line_chart(
    title: str,
    series: Sequence[Series],
    x: Axis,
    y: Axis,
    *,
    marks: Sequence[Mark] = (),
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Axes with grid and tick labels, the series (lines and/or dots), reference marks and a
    legend; data outside the axes is clamped to the frame's edge."""
    f = _Frame(x, y, width, height)
    plot = "".join(_series(f, s) for s in series)
    parts = [_open(title, width, height, "line-chart"), _axes(f), f'<g class="plot">{plot}</g>']
    parts += [_mark(f, m) for m in marks]
    parts += [_legend(f, series) if len(series) > 1 else "", "</svg>"]
    return "".join(parts)


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: ``value`` against the chart's maximum, ``text`` beside it."""

    label: str
    value: float
    text: str
    css: str = "s1"


def bar_chart(title: str, bars: Sequence[Bar], *, width: int = WIDTH, top: float = 0.0) -> str:
    """One labelled horizontal bar per item, scaled to ``top`` (else the largest value)."""
    row, label_w, text_w = 26, 190, 250
    height = row * len(bars) + 12
    most = top or max((b.value for b in bars), default=0.0) or 1.0
    span = width - label_w - text_w
    out = [_open(title, width, height, "bar-chart"), '<g class="plot">']
    labels = ['<g class="axis">']
    for i, b in enumerate(bars):
        y = 6 + i * row
        w = max(span * min(b.value / most, 1.0), 0.0)
        out.append(
            f'<rect class="bar {b.css}" x="{label_w}" y="{y}" width="{_n(w)}" height="{row - 8}"/>'
        )
        name = b.label if len(b.label) <= 28 else b.label[:27] + "…"
        labels.append(
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">{esc(name)}'
            f"<title>{esc(b.label)}</title></text>"
            f'<text x="{_n(label_w + w + 6)}" y="{y + 13}">'
            f"{esc(b.text)}</text>"
        )
    return "".join([*out, "</g>", *labels, "</g></svg>"])
