"""Chart geometry for the web pages: numbers in, SVG coordinates out.

Pages draw these as inline SVG with presentation attributes (``fill``, ``height``), so charts
need neither script nor inline style, and the page's Content-Security-Policy can forbid both.
Only numbers we compute and colours from our palette reach an attribute; feed text (outlet
names) appears only in escaped ``<title>`` tooltips and labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

# Distinguishable colours for outlets, in order of first coverage; later outlets reuse them.
PALETTE = (
    "#2456c7", "#d9730d", "#0f7b6c", "#ad1a72", "#6940a5", "#b08800", "#e03e3e", "#2e8bc0",
    "#5b8c00", "#8c564b", "#4d5b6a", "#c05a9c",
)  # fmt: skip
WIRE_COPY = "#c3cad6"


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    fill: str
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    segments: list[Segment]
    # (x of the bar's centre, day) for axis labels.
    ticks: list[tuple[float, date]]
    legend: list[tuple[str, str]]
    peak: int


def day_range(first: date, last: date, max_days: int) -> list[date]:
    start = max(first, last - timedelta(days=max_days - 1))
    return [start + timedelta(days=i) for i in range((last - start).days + 1)]


def coverage_chart(
    articles: Sequence[tuple[date, str, bool]],
    days: Sequence[date],
    outlets: Sequence[str],
    *,
    height: int = 140,
    bar: int = 28,
    gap: int = 8,
) -> Chart:
    """Stacked bars: articles per day, one segment per outlet, wire copies in grey on top."""
    colour = {o: PALETTE[i % len(PALETTE)] for i, o in enumerate(outlets)}
    counts: dict[tuple[date, str, bool], int] = {}
    for day, outlet, copy in articles:
        counts[(day, outlet, copy)] = counts.get((day, outlet, copy), 0) + 1
    per_day = {d: sum(n for (day, _, _), n in counts.items() if day == d) for d in days}
    peak = max(per_day.values(), default=0) or 1
    unit = (height - 4) / peak
    segments: list[Segment] = []
    ticks = []
    for i, d in enumerate(days):
        x = gap + i * (bar + gap)
        y = float(height)
        for copy in (False, True):
            for outlet in outlets:
                n = counts.get((d, outlet, copy), 0)
                if not n:
                    continue
                h = n * unit
                y -= h
                kind = "wire copy" if copy else "article"
                label = f"{d:%a %d %b}: {outlet}, {n} {kind}{'s' if n > 1 else ''}"
                segments.append(
                    Segment(x, round(y, 2), bar, round(h, 2), WIRE_COPY if copy else colour[outlet], label)
                )
        ticks.append((x + bar / 2, d))
    width = gap + len(days) * (bar + gap)
    return Chart(width, height, segments, ticks, [(o, colour[o]) for o in outlets], peak)


def sparkline(
    counts: Sequence[int], *, width: int = 120, height: int = 28
) -> list[tuple[float, float, float, float]]:
    """(x, y, w, h) bars of a small per-day coverage chart."""
    if not counts:
        return []
    peak = max(counts) or 1
    step = width / len(counts)
    bars = []
    for i, n in enumerate(counts):
        h = max(1.0, (height - 2) * n / peak) if n else 0.0
        bars.append((round(i * step + 1, 2), round(height - h, 2), round(max(1.0, step - 2), 2), round(h, 2)))
    return bars
