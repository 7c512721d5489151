"""Progress over time as inline SVG: no script, no CDN (the hospital network is closed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from rebuild.report.model import Point

SERIES = (
    ("back", "Back", "#1b7f3b"),
    ("in_progress", "In progress", "#1f5fa8"),
    ("quarantined", "Quarantined", "#b86e00"),
    ("failed", "Failed", "#b3261e"),
)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def progress_svg(
    points: Sequence[Point], total: int, *, title: str, width: int = 720, height: int = 260
) -> str:
    """A step chart of machines per status over time, with axes people can read."""
    left, right, top, bottom = 48, 130, 24, 36
    w, h = width - left - right, height - top - bottom
    if not points:
        return ""
    t0, t1 = points[0].at, points[-1].at
    span = max(t1 - t0, 1.0)
    ymax = max(total, 1)

    def x(t: float) -> float:
        return left + (t - t0) / span * w

    def y(v: int) -> float:
        return top + h - v / ymax * h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="#fafafa" stroke="#999"/>',
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1):
        v = round(ymax * frac)
        parts.append(
            f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v}</text>'
        )
    for frac in (0, 0.5, 1):
        t = t0 + span * frac
        parts.append(
            f'<text x="{x(t):.1f}" y="{top + h + 16}" text-anchor="middle" font-size="11">'
            f"{_clock(t)} UTC</text>"
        )
    for i, (key, label, colour) in enumerate(SERIES):
        coords: list[str] = []
        prev: int | None = None
        for p in points:
            v = getattr(p, key)
            if prev is not None:
                coords.append(f"{x(p.at):.1f},{y(prev):.1f}")  # step: hold the old value until now
            coords.append(f"{x(p.at):.1f},{y(v):.1f}")
            prev = v
        parts.append(
            f'<polyline class="series-{key}" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{" ".join(coords)}"/>'
        )
        last = getattr(points[-1], key)
        ly = top + 14 + i * 18
        parts.append(
            f'<rect x="{left + w + 10}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + w + 24}" y="{ly}" font-size="12">{label}: {last}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
