"""Server-rendered SVG charts for the funnel page: no script, no CDN, no external request.

Each chart carries a <title> and <desc> and the numbers are also in a table next to it, so the chart
is never the only way to read them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from markupsafe import Markup, escape

BAR_H = 26
GAP = 8
LABEL_W = 210
WIDTH = 640


def bars(title: str, rows: list[tuple[str, int, str]], *, ident: str) -> Markup:
    """Horizontal bars, one per (label, value, css class), scaled to the largest value.

    >>> svg = bars("Funnel", [("enrolled", 4, "b-all"), ("confirmed", 1, "b-yes")], ident="f")
    >>> 'width="97.5"' in svg and ">4</text>" in svg and "<title id=\\"f-t\\">Funnel</title>" in svg
    True
    """
    top = max([v for _, v, _ in rows] + [1])
    span = WIDTH - LABEL_W - 40
    height = len(rows) * (BAR_H + GAP) + GAP
    desc = "; ".join(f"{label}: {value}" for label, value, _ in rows)
    parts = [(f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
              f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">'),
             f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>']
    for i, (label, value, css) in enumerate(rows):
        y = GAP + i * (BAR_H + GAP)
        w = round(span * value / top, 1) if value else 0
        parts.append(
            f'<text class="lbl" x="{LABEL_W - 8}" y="{y + BAR_H * 0.68:.1f}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar {escape(css)}" x="{LABEL_W}" y="{y}" width="{w}" height="{BAR_H}" rx="3"/>'
            f'<text class="val" x="{LABEL_W + w + 6}" y="{y + BAR_H * 0.68:.1f}">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def timeline(title: str, points: list[tuple[date, int]], *, ident: str, empty: str) -> Markup:
    """Daily confirmations as columns with a cumulative line; ``empty`` is said when there are none.

    >>> svg = timeline("Over time", [(date(2026, 1, 1), 2), (date(2026, 1, 3), 1)], ident="t", empty="none")
    >>> svg.count('class="col"'), "2026-01-03: 1 (total 3)" in svg
    (3, True)
    """
    if not points:
        return Markup(f'<p class="small">{escape(empty)}</p>')
    first, last = points[0][0], points[-1][0]
    counts = dict(points)
    days = [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)][-60:]
    height, base, left = 220, 190, 40
    step = (WIDTH - left - 10) / max(len(days), 1)
    top = max([counts.get(d, 0) for d in days] + [1])
    total_all = sum(counts.get(d, 0) for d in days)
    running = 0
    desc, cols, line = [], [], []
    for i, d in enumerate(days):
        n = counts.get(d, 0)
        running += n
        desc.append(f"{d.isoformat()}: {n} (total {running})")
        h = round((base - 20) * n / top, 1)
        x = left + i * step
        cols.append(f'<rect class="col" x="{x + step * 0.15:.1f}" y="{base - h}" '
                    f'width="{step * 0.7:.1f}" height="{h}"/>')
        line.append(f"{x + step / 2:.1f},{base - (base - 20) * running / max(total_all, 1):.1f}")
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape("; ".join(desc))}</desc>'
        f'<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}"/>'
        + "".join(cols)
        + f'<polyline class="cumul" fill="none" points="{" ".join(line)}"/>'
        f'<text class="val" x="{left}" y="{base + 20}">{days[0].isoformat()}</text>'
        f'<text class="val" x="{WIDTH - 10}" y="{base + 20}" text-anchor="end">{days[-1].isoformat()}</text>'
        f'<text class="val" x="{left - 6}" y="26" text-anchor="end">{total_all}</text>'
        "</svg>"
    )


def curve(title: str, hours: list[int], enrolled: int, *, ident: str, empty: str, days_label: str,
          point: Callable[[int, int], str] = lambda d, p: f"day {d}: {p}%") -> Markup:
    """Time to answer: the share of enrolled people who had answered, day by day since launch.

    ``hours``: hours from enrolment to each answer. The points are also in the <desc>, each
    written by ``point(day, percent)``.

    >>> svg = curve("Time", [1, 30, 30], 4, ident="c", empty="none", days_label="days")
    >>> "day 0: 25%" in svg and "day 1: 75%" in svg and 'class="cumul"' in svg
    True
    >>> curve("Time", [1, 2], 4, ident="c", empty="none", days_label="days").count("<circle")  # all on day 0
    2
    """
    if not hours or not enrolled:
        return Markup(f'<p class="small">{escape(empty)}</p>')
    last = max(1, max(h // 24 for h in hours))  # a line needs two points: answers all on day 0 too
    days = list(range(0, last + 1))
    height, base, left = 220, 190, 44
    step = (WIDTH - left - 10) / max(len(days) - 1, 1)
    points, desc, marks = [], [], []
    for d in days:
        share = sum(1 for h in hours if h < (d + 1) * 24) / enrolled
        desc.append(point(d, round(share * 100)))
        points.append(f"{left + d * step:.1f},{base - (base - 20) * share:.1f}")
        marks.append(f'<circle class="dot" cx="{left + d * step:.1f}" cy="{base - (base - 20) * share:.1f}" r="3"/>')
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape("; ".join(desc))}</desc>'
        f'<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}"/>'
        f'<line class="axis" x1="{left}" y1="20" x2="{left}" y2="{base}"/>'
        f'<polyline class="cumul" fill="none" points="{" ".join(points)}"/>' + "".join(marks) +
        f'<text class="val" x="{left - 6}" y="26" text-anchor="end">100%</text>'
        f'<text class="val" x="{left - 6}" y="{base}" text-anchor="end">0%</text>'
        f'<text class="val" x="{left}" y="{base + 20}">0</text>'
        f'<text class="val" x="{WIDTH - 10}" y="{base + 20}" text-anchor="end">{last} {escape(days_label)}</text>'
        "</svg>"
    )
