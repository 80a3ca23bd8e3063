"""Inline-SVG chart primitives and the fixed number formatting the report page shares with them.

No JavaScript and no plotting library: the page must open offline and stay small. Every
coordinate goes through `_c` (NaN/inf become 0, one decimal) and every label through
`html.escape`, so the markup is safe and byte-identical for the same input.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any, NamedTuple


class Bar(NamedTuple):
    label: str
    value: float
    text: str
    muted: bool = False


def num(value: Any) -> float | None:
    """A finite float, or None for null, bools, text, NaN and inf."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        result = float(value)
    except OverflowError:  # ints beyond float range
        return None
    return result if math.isfinite(result) else None


def count(value: Any) -> int:
    """A non-negative int for chart heights; anything unusable counts as 0."""
    result = num(value)
    return int(result) if result is not None and result > 0 else 0


def fmt_num(value: Any) -> str:
    result = num(value)
    if result is None:
        return "—"
    size = abs(result)
    if result == int(result) and size < 1e15:
        return f"{int(result):,}"
    if size >= 1e6 or size < 1e-3:
        return f"{result:.3e}"
    if size >= 100:
        return f"{result:,.1f}"
    return f"{result:.3f}".rstrip("0").rstrip(".")


def fmt_share(value: Any) -> str:
    result = num(value)
    if result is None:
        return "—"
    pct = result * 100
    if pct == 0:
        return "0%"
    if abs(pct) < 0.01:
        return "<0.01%"
    return f"{pct:.2f}%" if abs(pct) < 1 else f"{pct:.1f}%"


def fmt_compact(value: float) -> str:
    """Axis tick labels: 1.5k, 2M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def _c(value: float) -> str:
    """One coordinate: fixed precision, never NaN/inf (a bad value must not break the chart)."""
    text = f"{value:.1f}" if math.isfinite(value) else "0.0"
    return "0.0" if text == "-0.0" else text


def _e(text: str) -> str:
    return html.escape(text)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def _open(width: int, height: int, label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{_e(label)}">'
    )


def _nice_top(top: float) -> tuple[float, float]:
    """A round axis maximum >= top and its tick step (4-5 ticks)."""
    if top <= 0:
        return 1.0, 1.0
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(top / step - 1e-9), step


def histogram(counts: Sequence[Any], edge_labels: Sequence[str], label: str) -> str:
    """Vertical bars, one <rect class="hb"> per bin; edge_labels (k+1) name the axis ends."""
    values = [count(c) for c in counts]
    width, height, left, right, top_pad, bottom = 320, 130, 34, 6, 8, 18
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = max(values, default=0) or 1
    step = plot_w / max(len(values), 1)
    gap = 1.0 if step > 3 else 0.0
    edges = list(edge_labels) if len(edge_labels) == len(values) + 1 else []
    base = top_pad + plot_h
    parts = [
        _open(width, height, label),
        f'<line class="axis" x1="{left}" y1="{_c(base)}" x2="{width - right}" y2="{_c(base)}"/>',
        f'<text class="tick" x="{left - 4}" y="{top_pad + 8}" text-anchor="end">'
        f"{_e(fmt_compact(top))}</text>",
    ]
    for i, value in enumerate(values):
        h = value / top * plot_h
        close = "]" if i == len(values) - 1 else ")"  # numpy-style bins: only the last is closed
        tip = f"[{edges[i]}, {edges[i + 1]}{close}: " if edges else ""
        parts.append(
            f'<rect class="hb" x="{_c(left + i * step)}" y="{_c(base - h)}" '
            f'width="{_c(max(step - gap, 0.5))}" height="{_c(h)}">'
            f"<title>{_e(tip)}{value:,}</title></rect>"
        )
    if edges:
        parts.append(f'<text class="tick" x="{left}" y="{height - 4}">{_e(edges[0])}</text>')
        parts.append(
            f'<text class="tick" x="{width - right}" y="{height - 4}" text-anchor="end">'
            f"{_e(edges[-1])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def hbars(
    bars: Sequence[Bar],
    label: str,
    *,
    width: int = 320,
    label_w: int = 110,
    scale_max: float | None = None,
    cls: str = "tb",
) -> str:
    """Horizontal bars with the label left and the value text right of the bar."""
    row_h, text_w = 16, 64
    bar_w = width - label_w - text_w - 8
    top = scale_max if scale_max is not None and scale_max > 0 else None
    top = top or max((b.value for b in bars if math.isfinite(b.value)), default=0) or 1
    chars = max(label_w // 7, 4)
    parts = [_open(width, row_h * len(bars) + 4, label)]
    for i, bar in enumerate(bars):
        y = 2 + i * row_h
        length = max(min(bar.value / top, 1.0), 0.0) * bar_w if math.isfinite(bar.value) else 0
        name = f"{cls} other" if bar.muted else cls
        parts.append(
            f"<g><title>{_e(bar.label)}: {_e(bar.text)}</title>"
            f'<text class="lbl" x="{label_w - 4}" y="{y + 11}" text-anchor="end">'
            f"{_e(_short(bar.label, chars))}</text>"
            f'<rect class="{name}" x="{label_w}" y="{y + 2}" width="{_c(length)}" '
            f'height="{row_h - 4}" rx="2"/>'
            f'<text class="val" x="{_c(label_w + length + 4)}" y="{y + 11}">{_e(bar.text)}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    values: Sequence[float],
    ticks: Sequence[tuple[float, str]],
    markers: Sequence[tuple[float, str]],
    shade: tuple[float, float, str] | None,
    label: str,
) -> str:
    """An area + polyline over positions 0..n-1; ticks, markers (vertical lines, class "cp")
    and the shaded span are given in the same position units."""
    width, height, left, right, top_pad, bottom = 900, 240, 48, 12, 26, 22
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top, step = _nice_top(max((v for v in values if math.isfinite(v)), default=0))
    span = max(len(values) - 1, 1)
    base = top_pad + plot_h

    def x(pos: float) -> float:
        return left + min(max(pos, 0.0), span) / span * plot_w

    def y(value: float) -> float:
        return base - (value / top * plot_h if math.isfinite(value) else 0)

    parts = [_open(width, height, label)]
    for k in range(round(top / step) + 1):
        gy = base - k * step / top * plot_h
        parts.append(
            f'<line class="grid" x1="{left}" y1="{_c(gy)}" x2="{width - right}" y2="{_c(gy)}"/>'
            f'<text class="tick" x="{left - 6}" y="{_c(gy + 4)}" text-anchor="end">'
            f"{_e(fmt_compact(k * step))}</text>"
        )
    if shade is not None:
        x0, x1 = sorted((x(shade[0]), x(shade[1])))
        parts.append(
            f'<rect class="gap" x="{_c(x0)}" y="{top_pad}" width="{_c(max(x1 - x0, 2))}" '
            f'height="{plot_h}"><title>{_e(shade[2])}</title></rect>'
        )
    points = " ".join(f"{_c(x(i))},{_c(y(v))}" for i, v in enumerate(values))
    if len(values) > 1:
        parts.append(
            f'<polygon class="area" points="{_c(x(0))},{_c(base)} {points} '
            f'{_c(x(len(values) - 1))},{_c(base)}"/>'
        )
    parts.append(f'<polyline class="series" points="{points}"/>')
    if len(values) == 1:
        parts.append(f'<circle class="dot" cx="{_c(x(0))}" cy="{_c(y(values[0]))}" r="3"/>')
    for pos, text in ticks:
        tx = x(pos)
        anchor = "end" if tx > width - right - 30 else "middle"  # keep the last date inside
        parts.append(
            f'<text class="tick" x="{_c(tx)}" y="{height - 6}" text-anchor="{anchor}">'
            f"{_e(text)}</text>"
        )
    for i, (pos, text) in enumerate(markers):
        mx = x(pos)
        # Labels go right of the line, left near the right edge, staggered over three rows
        # so neighbouring change points stay readable.
        near_end = mx > width - right - 70
        lx, anchor = (mx - 3, "end") if near_end else (mx + 3, "start")
        parts.append(
            f'<line class="cp" x1="{_c(mx)}" y1="{top_pad - 4}" x2="{_c(mx)}" y2="{_c(base)}"/>'
            f'<text class="cpl" x="{_c(lx)}" y="{8 + (i % 3) * 8}" text-anchor="{anchor}">'
            f"{_e(text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
