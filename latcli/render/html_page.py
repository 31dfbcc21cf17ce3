"""The page kit of latcli's self-contained HTML reports: one file, inline CSS and SVG, no network,
no external font; the pages are :mod:`latcli.render.html_bench` and
:mod:`latcli.render.html_capacity`.

The only script is a self-check that marks ``<body data-charts="N" data-charts-rendered="M">``
once each chart's data has a non-empty bounding box, for tests and for anyone wondering whether
a chart silently failed (and ``data-height``, the page's height, for a screenshot of the whole
page). Every user-supplied string (targets, agent ids, messages, thresholds) is escaped; cells
given to :func:`table` are HTML already.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from latcli.core.sla import SlaSyntaxError, parse_threshold
from latcli.core.units import format_duration
from latcli.core.version import __version__
from latcli.render.svg import Mark, esc

_CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;
--panel:#f6f8fa;--s1:#0969da;--s2:#bc4c00;--s3:#1a7f37;--s4:#8250df;--ok:#1a7f37;--bad:#cf222e;
--warn:#9a6700}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--panel:#151b23;--s1:#4493f8;--s2:#f0883e;--s3:#3fb950;--s4:#ab7df8;--ok:#3fb950;
--bad:#f85149;--warn:#d29922}}
@media print{:root{--bg:#fff;--fg:#000;--muted:#444;--line:#bbb;--panel:#fff;--s1:#0550ae;
--s2:#953800;--s3:#116329;--s4:#6639ba;--ok:#116329;--bad:#a40e26;--warn:#7d4e00}
body{max-width:none;margin:0}section{break-inside:avoid}h2{break-after:avoid}}
*{box-sizing:border-box}
body{background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,sans-serif;max-width:1080px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h1 code{font-size:20px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:14px;margin:14px 0 4px;
color:var(--muted);font-weight:600}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.meta,.empty,footer,.note{color:var(--muted)}.empty{padding:8px 0;font-style:italic}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-weight:700;font-size:13px;
color:#fff;background:var(--muted);vertical-align:middle;margin-left:8px}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.warn{background:var(--warn)}
.figures{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.figure{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px 14px;
min-width:120px}.figure b{display:block;font-size:19px}.figure span{color:var(--muted);
font-size:12px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:left}
th{color:var(--muted);font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.knee td{background:var(--panel);font-weight:600}
.pass{color:var(--ok);font-weight:700}.fail{color:var(--bad);font-weight:700}
svg.chart{display:block;width:100%;height:auto;margin:4px 0 10px}
svg.chart text{fill:var(--muted);font:12px system-ui,sans-serif}
svg.chart .title{fill:var(--fg)}
svg.chart .grid line{stroke:var(--line);stroke-width:1;opacity:.6}
svg.chart .axis line{stroke:var(--muted);stroke-width:1}
svg.chart .line{fill:none;stroke-width:2;stroke-linejoin:round}
svg.chart .s1{stroke:var(--s1);fill:var(--s1)}svg.chart .s2{stroke:var(--s2);fill:var(--s2)}
svg.chart .s3{stroke:var(--s3);fill:var(--s3)}svg.chart .s4{stroke:var(--s4);fill:var(--s4)}
svg.chart .ok{stroke:var(--ok);fill:var(--ok)}svg.chart .bad{stroke:var(--bad);fill:var(--bad)}
svg.chart polyline.line{fill:none}svg.chart circle.ring{fill:none;stroke-width:2}
svg.chart .mark line,svg.chart .sla line{stroke:var(--muted);stroke-dasharray:5 4}
svg.chart .knee line{stroke:var(--bad);stroke-width:1.5;stroke-dasharray:5 4}
svg.chart .knee text{fill:var(--bad);font-weight:600}
svg.chart .ideal{stroke:var(--muted);fill:var(--muted)}
ul.reasons{margin:4px 0;padding-left:20px}
"""

# No "<" nor "&" in it: the page stays parseable as XML.
_SELF_CHECK = """(function () {
  var charts = document.querySelectorAll("svg.chart"), drawn = 0;
  charts.forEach(function (svg) {
    var plot = svg.querySelector(".plot"), box = plot ? plot.getBBox() : null;
    if (box ? box.width + box.height > 0 : false) { drawn += 1; }
  });
  document.body.setAttribute("data-charts", String(charts.length));
  document.body.setAttribute("data-charts-rendered", String(drawn));
  document.body.setAttribute("data-height", String(document.documentElement.scrollHeight));
})();"""


def page(title: str, body: Sequence[str]) -> str:
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>',
            '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
            *body,
            f"<footer><p>latcli {esc(__version__)} · one self-contained file: no script but a "
            f"render self-check, no network</p></footer><script>{_SELF_CHECK}</script>",
            "</body></html>\n",
        ]
    )


def section(title: str, *parts: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{''.join(parts)}</section>"


def empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def badge(text: str, css: str) -> str:
    return f'<span class="badge {css}">{esc(text)}</span>'


def figures(items: Sequence[tuple[str, str]]) -> str:
    cells = "".join(
        f'<div class="figure"><b>{esc(value)}</b><span>{esc(label)}</span></div>'
        for label, value in items
    )
    return f'<div class="figures">{cells}</div>'


def table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: set[int],
    marked: int | None = None,
) -> str:
    """Cells are HTML already (escape before); ``numeric``: right-aligned column indexes;
    ``marked``: the index of a row to highlight (the knee)."""

    def cls(i: int) -> str:
        return ' class="n"' if i in numeric else ""

    ths = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(head))
    trs = "".join(
        ('<tr class="knee">' if r == marked else "<tr>")
        + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for r, row in enumerate(rows)
    )
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>"


def num(value: Any) -> float | None:
    return None if value is None else float(value)


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} req/s"


def tick_ms(v: float) -> str:
    return f"{v / 1000:g} s" if v >= 1000 else f"{v:g} ms"


def tick_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:g}"


def tick_s(v: float) -> str:
    return format_duration(v) if v > 0 else "0"


def latency_marks(exprs: Sequence[str], top: float, at_end: bool = False) -> list[Mark]:
    """SLA latency limits as reference lines, those inside the chart's range only."""
    marks = []
    for expr in exprs:
        try:
            t = parse_threshold(expr)
        except SlaSyntaxError:
            continue
        if t.percentile is not None and 0 < t.limit <= top:
            marks.append(Mark("y", t.limit, f"SLA {t.expr}", "sla", at_end))
    return marks
