"""Chart geometry for the dashboard: pure functions that turn counts into SVG shapes.

The shapes are drawn by Jinja templates as inline SVG (no JavaScript, no CDN)
that scales to its container's width (``viewBox``); every bar links to the
posts behind it.  The same shapes export as a standalone SVG file (colours
inlined) and, in the browser, as PNG.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from markupsafe import Markup

SERIES = ("negative", "neutral", "positive", "unclassified")
#: the palette, for exports that cannot use the stylesheet
COLOURS = {
    "negative": "#d0473b",
    "neutral": "#9aa4b2",
    "positive": "#2e9e5b",
    "unclassified": "#d9dde3",
    "total": "#2a5bd7",
    "previous": "#1d2330",
}

Href = Callable[[dict[str, Any], str], str]


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    cls: str
    href: str
    title: str

    @property
    def fill(self) -> str:
        return COLOURS.get(self.cls.removeprefix("s-"), COLOURS["total"])


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    rects: list[Rect]
    xlabels: list[Tick]
    ylabels: list[Tick]
    empty: bool
    line: str = ""  #: an SVG polyline's points: the previous period
    line_title: str = ""
    values: list[Tick] = field(default_factory=list)  #: numbers written beside bars


def nice_max(n: float) -> int:
    """A round axis maximum ≥ n (1, 2, 5 × 10^k)."""
    if n <= 0:
        return 1
    step = 1
    while True:
        for f in (1, 2, 5):
            if f * step >= n:
                return f * step
        step *= 10


def stacked_columns(
    rows: list[dict[str, Any]],
    href: Href,
    *,
    width: int = 960,
    height: int = 240,
    share: bool = False,
    previous: bool = False,
) -> Chart:
    """Vertical stacked columns, one per time bucket (counts, or shares when ``share``);
    with ``previous``, the comparison period's totals as a line over them."""
    left, bottom, top = 44, 22, 8
    plot_w, plot_h = width - left - 4, height - bottom - top
    n = max(1, len(rows))
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    highest = max((r["total"] for r in rows), default=0)
    if previous and not share:
        highest = max(highest, max((r.get("previous", 0) for r in rows), default=0))
    peak = nice_max(highest)
    rects: list[Rect] = []
    xlabels: list[Tick] = []
    every = max(1, n // 8)
    points = []
    for i, row in enumerate(rows):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        total = row["total"] or 1
        for s in SERIES:
            count = row["counts"].get(s, 0)
            if not count:
                continue
            frac = count / total if share else count / peak
            h = frac * plot_h
            y -= h
            label = f"{row['key']}: {count} {s}"
            if share:
                label += f" ({count * 100 / total:.0f}%)"
            rects.append(
                Rect(
                    round(x, 1),
                    round(y, 1),
                    round(bar_w, 1),
                    round(h, 1),
                    f"s-{s}",
                    href(row, s),
                    label,
                )
            )
        if previous and not share:
            py = top + plot_h - row.get("previous", 0) / peak * plot_h
            points.append(f"{x + bar_w / 2:.1f},{py:.1f}")
        if i % every == 0:
            key = str(row["key"])
            xlabels.append(
                Tick(round(x + bar_w / 2, 1), height - 6, key[5:] if len(key) >= 10 else key)
            )
    ymax = "100%" if share else str(peak)
    ylabels = [Tick(left - 4, top + 10, ymax), Tick(left - 4, top + plot_h, "0")]
    return Chart(
        width,
        height,
        rects,
        xlabels,
        ylabels,
        empty=not any(r["total"] for r in rows),
        line=" ".join(points) if any(r.get("previous") for r in rows) else "",
        line_title="previous period",
    )


def stacked_bars(
    rows: list[dict[str, Any]],
    href: Href,
    *,
    width: int = 480,
    bar_h: int = 18,
    limit: int = 12,
) -> Chart:
    """Horizontal stacked bars, one per key (source or category), biggest first, with the
    total and its change against the previous period written at the end."""
    rows = sorted(rows, key=lambda r: -r["total"])[:limit]
    left = 140
    plot_w = width - left - 90
    peak = max((r["total"] for r in rows), default=0) or 1
    rects: list[Rect] = []
    ylabels: list[Tick] = []
    values: list[Tick] = []
    for i, row in enumerate(rows):
        y = 4 + i * (bar_h + 6)
        x = float(left)
        for s in SERIES:
            count = row["counts"].get(s, 0)
            if not count:
                continue
            w = count / peak * plot_w
            rects.append(
                Rect(
                    round(x, 1),
                    y,
                    round(max(w, 1.0), 1),
                    bar_h,
                    f"s-{s}",
                    href(row, s),
                    f"{row['key']}: {count} {s}",
                )
            )
            x += w
        ylabels.append(Tick(left - 6, y + bar_h - 5, str(row["key"])[:22]))
        values.append(
            Tick(round(x + 4, 1), y + bar_h - 5, f"{row['total']}{_delta(row.get('change'))}")
        )
    height = 8 + len(rows) * (bar_h + 6)
    return Chart(width, max(height, 30), rects, [], ylabels, empty=not rows, values=values)


def share_bars(
    rows: list[dict[str, Any]], href: Href, *, width: int = 480, bar_h: int = 22
) -> Chart:
    """Share of voice: one bar per brand, its share of the posts naming any of them."""
    left = 140
    plot_w = width - left - 110
    rects: list[Rect] = []
    ylabels: list[Tick] = []
    values: list[Tick] = []
    for i, row in enumerate(rows):
        y = 4 + i * (bar_h + 8)
        share = row.get("share") or 0.0
        w = max(1.0, share * plot_w)
        cls = "s-total" if row.get("ours") else "s-neutral"
        rects.append(
            Rect(
                left,
                y,
                round(w, 1),
                bar_h,
                cls,
                href(row, ""),
                f"{row['brand']}: {row['n']} posts ({share:.0%})",
            )
        )
        ylabels.append(Tick(left - 6, y + bar_h - 6, str(row["brand"])[:22]))
        prev = row.get("previous_share")
        delta = "" if prev is None else f" ({(share - prev) * 100:+.0f} pts)"
        values.append(
            Tick(round(left + w + 4, 1), y + bar_h - 6, f"{share:.0%} · {row['n']}{delta}")
        )
    height = 8 + len(rows) * (bar_h + 8)
    return Chart(
        width,
        max(height, 30),
        rects,
        [],
        ylabels,
        empty=not any(r["n"] for r in rows),
        values=values,
    )


def _delta(change: float | None) -> str:
    return "" if change is None else f" ({change * 100:+.0f}%)"


def csv_rows(chart_rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """A chart's data as a table: key, one column per series, total, previous."""
    header = ["key", *SERIES, "total", "previous"]
    out = []
    for r in chart_rows:
        counts = r.get("counts", {})
        out.append(
            [r["key"], *(counts.get(s, 0) for s in SERIES), r["total"], r.get("previous", "")]
        )
    return header, out


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def svg(c: Chart, label: str, chart_id: str, *, standalone_title: str | None = None) -> Markup:
    """The chart as SVG markup (every text escaped here, in one pass: a 90-day chart has
    hundreds of bars, too many for a template's per-attribute escaping to be cheap).

    Inline in a page it is clickable and styled by the stylesheet; ``standalone_title``
    makes an exportable file instead: colours inlined, a title, no links.
    """
    out: list[str] = []
    if standalone_title is None:
        out.append(
            f'<svg class="chart" id="chart-{_e(chart_id)}" viewBox="0 0 {c.width} {c.height}" '
            f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{_e(label)}">'
        )
        for r in c.rects:
            out.append(
                f'<a href="{_e(r.href)}" class="seg"><rect x="{r.x}" y="{r.y}" width="{r.w}" '
                f'height="{r.h}" class="{_e(r.cls)}"><title>{_e(r.title)}</title></rect></a>'
            )
        if c.line:
            out.append(
                f'<polyline points="{c.line}" class="previous"><title>{_e(c.line_title)}'
                "</title></polyline>"
            )
        font = ""
    else:
        out.append(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{c.width}" '
            f'height="{c.height + 30}" viewBox="0 -30 {c.width} {c.height + 30}" '
            "font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\">"
            f"<title>{_e(standalone_title)}</title>"
            f'<rect x="0" y="-30" width="{c.width}" height="{c.height + 30}" fill="#ffffff"/>'
            f'<text x="4" y="-10" font-size="14" font-weight="600" fill="#1d2330">'
            f"{_e(standalone_title)}</text>"
        )
        for r in c.rects:
            out.append(
                f'<rect x="{r.x}" y="{r.y}" width="{r.w}" height="{r.h}" fill="{r.fill}">'
                f"<title>{_e(r.title)}</title></rect>"
            )
        if c.line:
            out.append(
                f'<polyline points="{c.line}" fill="none" stroke="{COLOURS["previous"]}" '
                'stroke-width="1.5" stroke-dasharray="4 3"/>'
            )
        font = ' font-size="10"'
    for t in c.xlabels:
        anchor = ' fill="#667085" text-anchor="middle"' if font else ""
        out.append(f'<text x="{t.x}" y="{t.y}" class="xl"{font}{anchor}>{_e(t.text)}</text>')
    for t in c.ylabels:
        anchor = ' fill="#667085" text-anchor="end"' if font else ""
        out.append(f'<text x="{t.x}" y="{t.y}" class="yl"{font}{anchor}>{_e(t.text)}</text>')
    for t in c.values:
        fill = ' fill="#1d2330"' if font else ""
        out.append(f'<text x="{t.x}" y="{t.y}" class="vl"{font}{fill}>{_e(t.text)}</text>')
    out.append("</svg>\n")
    return Markup("".join(out))
