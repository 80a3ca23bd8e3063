"""The time section of the HTML report: the daily-volume chart and the temporal facts."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from workers.preprocessing.quality.html_parts import (
    as_dict,
    as_list,
    esc,
    fact_list,
    parse_day,
    short_stamp,
    text_or_dash,
)
from workers.preprocessing.quality.svg import count, fmt_num, fmt_share, line_chart, num

MAX_POINTS = 1000


def time_section(time: Any, as_of: Any) -> str:
    head = '<section id="time"><h2>Time</h2>'
    if not isinstance(time, dict):
        return f'{head}<p class="note">No time column: timeliness is not assessed.</p></section>'
    g0, g1 = time.get("largest_gap_start"), time.get("largest_gap_end")
    gap = f" ({esc(g0)} &ndash; {esc(g1)})" if g0 and g1 else ""
    summary = fact_list(
        [
            ("Time column", text_or_dash(time.get("column"))),
            ("First event", esc(short_stamp(time.get("first")))),
            ("Last event", esc(short_stamp(time.get("last")))),
            ("As of", esc(short_stamp(as_of)) if as_of else "—"),
            ("Last event age", days_text(time.get("last_event_age_days"))),
            ("Span", days_text(time.get("span_days"))),
            ("Days without events", fmt_share(time.get("missing_day_share"))),
            ("Largest gap", days_text(time.get("largest_gap_days")) + gap),
            ("Trend", trend_text(as_dict(time.get("trend")))),
            ("Weekly seasonality", fmt_num(time.get("weekly_seasonality_strength"))),
            ("Annual seasonality", fmt_num(time.get("annual_seasonality_strength"))),
        ]
    )
    points = [as_dict(c) for c in as_list(time.get("change_points"))]
    rows = "".join(
        f"<tr><td>{esc(c.get('date'))}</td><td class=num>{fmt_num(c.get('before_mean'))}</td>"
        f"<td class=num>{fmt_num(c.get('after_mean'))}</td></tr>"
        for c in points
    )
    table = (
        "<h3>Change points</h3><table><tr><th>Date</th><th class=num>Mean before</th>"
        f"<th class=num>Mean after</th></tr>{rows}</table>"
        if rows
        else ""
    )
    return f'{head}<div class="card">{daily_chart(time, points)}{summary}{table}</div></section>'


def days_text(value: Any) -> str:
    shown = fmt_num(value)
    return "—" if num(value) is None else f"{shown} day{'s' * (shown != '1')}"


def trend_text(trend: dict[str, Any]) -> str:
    if not trend:
        return "—"
    direction = str(trend.get("direction"))
    arrow = {"up": "↑ up", "down": "↓ down", "flat": "→ flat"}.get(direction, direction)
    p = num(trend.get("p_value"))
    p_text = "<0.001" if p is not None and p < 0.001 else fmt_num(p)
    text = (
        f"{arrow}, {fmt_num(trend.get('slope_per_year'))}/year, "
        f"τ {fmt_num(trend.get('kendall_tau'))}, p {p_text}"
    )
    return esc(text)


def daily_chart(time: dict[str, Any], points: list[dict[str, Any]]) -> str:
    daily = as_dict(time.get("daily"))
    counts = [count(c) for c in as_list(daily.get("counts"))]
    start = parse_day(daily.get("start"))
    if not counts or start is None:
        return '<p class="note">No daily counts.</p>'
    values, size = bucket(counts)

    def pos(day: date) -> float:
        return (day - start).days / size

    def inside(day: date | None) -> bool:
        return day is not None and 0 <= (day - start).days < len(counts)

    days = [parse_day(c.get("date")) for c in points]
    markers = [(pos(d), d.isoformat()) for d in days if d is not None and inside(d)]
    g0, g1 = parse_day(time.get("largest_gap_start")), parse_day(time.get("largest_gap_end"))
    shade = None
    if g0 is not None and g1 is not None and inside(g0) and inside(g1):
        shade = (pos(g0), pos(g1), f"largest gap: {g0} to {g1}")
    ticks = []
    for k in range(6 if len(counts) > 1 else 1):
        offset = round(k * (len(counts) - 1) / 5)
        ticks.append((offset / size, (start + timedelta(days=offset)).isoformat()))
    end = start + timedelta(days=len(counts) - 1)
    caption = f"Events per day, {start} to {end} ({len(counts):,} days)"
    if size > 1:
        unit = "weekly sums" if size == 7 else f"sums over {size}-day periods"
        partial = f"; the last covers {len(counts) % size} days" if len(counts) % size else ""
        caption = (
            f"Event volume, {start} to {end} ({len(counts):,} days), "
            f"as {unit} ({len(values):,} points{partial})"
        )
    caption += ". Dashed lines: change points; shaded: the largest gap."
    chart = line_chart(values, ticks, markers, shade, "Daily event volume")
    return f'<figure class="wide">{chart}<figcaption>{caption}</figcaption></figure>'


def bucket(counts: list[int]) -> tuple[list[float], int]:
    """At most MAX_POINTS points: whole weeks (or multiples of them) summed when longer."""
    if len(counts) <= MAX_POINTS:
        return [float(c) for c in counts], 1
    size = 7 * math.ceil(len(counts) / (7 * MAX_POINTS))
    return [float(sum(counts[i : i + size])) for i in range(0, len(counts), size)], size
