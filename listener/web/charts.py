"""Chart geometry for the dashboard: pure functions that turn counts into SVG shapes.

The shapes are rendered by a Jinja template as inline SVG (no JavaScript, no
CDN); every bar segment links to the posts behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

SERIES = ("negative", "neutral", "positive", "unclassified")


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    cls: str
    href: str
    title: str


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


def _href(base: dict[str, str], **extra: str) -> str:
    params = {k: v for k, v in {**base, **extra}.items() if v}
    return "/mentions?" + urlencode(params)


def nice_max(n: int) -> int:
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
    link: dict[str, str],
    *,
    width: int = 760,
    height: int = 220,
    share: bool = False,
) -> Chart:
    """Vertical stacked columns, one per time bucket (counts, or shares when ``share``)."""
    left, bottom, top = 44, 22, 8
    plot_w, plot_h = width - left - 4, height - bottom - top
    n = max(1, len(rows))
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    peak = nice_max(max((r["total"] for r in rows), default=0))
    rects: list[Rect] = []
    xlabels: list[Tick] = []
    every = max(1, n // 8)
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
                    _href(link, bucket=str(row["key"]), label=s),
                    label,
                )
            )
        if i % every == 0:
            key = str(row["key"])
            xlabels.append(
                Tick(round(x + bar_w / 2, 1), height - 6, key[5:] if len(key) >= 10 else key)
            )
    ymax = "100%" if share else str(peak)
    ylabels = [Tick(left - 4, top + 10, ymax), Tick(left - 4, top + plot_h, "0")]
    return Chart(width, height, rects, xlabels, ylabels, empty=not rows)


def stacked_bars(
    rows: list[dict[str, Any]],
    link: dict[str, str],
    key_param: str,
    *,
    width: int = 360,
    bar_h: int = 18,
) -> Chart:
    """Horizontal stacked bars, one per key (source or category), biggest first."""
    rows = sorted(rows, key=lambda r: -r["total"])[:12]
    left = 130
    plot_w = width - left - 40
    peak = max((r["total"] for r in rows), default=0) or 1
    rects: list[Rect] = []
    ylabels: list[Tick] = []
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
                    _href(link, **{key_param: str(row["key"]), "label": s}),
                    f"{row['key']}: {count} {s}",
                )
            )
            x += w
        ylabels.append(Tick(left - 6, y + bar_h - 5, str(row["key"])[:20]))
    height = 8 + len(rows) * (bar_h + 6)
    return Chart(width, max(height, 30), rects, [], ylabels, empty=not rows)
