"""Pieces of the monitoring-check page: the two charts svg.py has no primitive for, the
check-specific CSS and the small formatters.

svg.py's `histogram` draws integer counts of one sample; drift needs two distributions of
shares on one chart, so `overlay_histogram` draws reference and current side by side per bin.
`distribution_chart` feeds it from a feature's histogram (numeric edges or category labels,
at most MAX_BINS bins). `interval_chart` places a metric, its confidence interval and the
baseline on one axis.
Both follow svg.py's rules: coordinates through `_c` (never NaN/inf), text escaped, fixed
formats, so the output is byte-identical for the same input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from workers.preprocessing.quality.html_parts import as_dict, as_list, esc
from workers.preprocessing.quality.svg import (
    _c,
    _nice_top,
    _open,
    _short,
    fmt_compact,
    fmt_num,
    fmt_share,
    num,
)

# Added to the data-quality report's CSS (reused as is).
EXTRA_CSS = """
.hero{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}
.hero .big{font-size:44px;font-weight:700;line-height:1}
.hero .status{font-size:13px;font-weight:700;text-transform:uppercase;letter-spacing:.06em}
.hero ul{margin:0;padding-left:18px}
.feats{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}
.feat h3{overflow-wrap:anywhere}
.feat table{font-size:12px;margin-top:6px}
.feat svg.chart,.pred svg.chart{width:100%}.pred figure{max-width:640px}
tr.drifted td:first-child{border-left:3px solid var(--bad)}
.legend{font-size:12px;color:var(--mute)}
.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;border-radius:2px}
.legend i.ref,svg .ref{background:#9aa5b1;fill:#9aa5b1}
.legend i.cur,svg .cur{background:var(--acc);fill:var(--acc)}
svg .base{stroke:var(--warn);stroke-width:2;stroke-dasharray:5 3}
svg .ci{stroke:var(--ink);stroke-width:2}svg .pt{fill:var(--ink)}
.charts{display:grid;gap:14px}
"""

LEGEND = '<div class="legend"><i class="ref"></i>reference<i class="cur"></i>current</div>'
STATUS_CLASS = {
    "healthy": "good",
    "ok": "good",
    "stable": "good",
    "degraded": "warn",
    "warning": "warn",
    "moderate": "warn",
    "critical": "bad",
    "failing": "bad",
    "drifted": "bad",
    "major": "bad",
}
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
MAX_BINS = 30


def status_class(status: Any) -> str:
    """A CSS class only for known words; anything else from the data stays text."""
    return STATUS_CLASS.get(str(status).lower(), "na") if isinstance(status, str) else "na"


def severity_class(severity: Any) -> str:
    word = severity.lower() if isinstance(severity, str) else ""
    return word if word in SEVERITY_RANK else ""


def fmt_p(value: Any) -> str:
    p = num(value)
    if p is None:
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_edge(value: Any) -> str:
    """A bin edge for an axis: compact, with the open outer edges as ±∞."""
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    result = num(value)
    return "—" if result is None else fmt_compact(result)


def shares(values: Any, n: int) -> list[float]:
    """Exactly n finite, non-negative shares (missing or bad entries become 0)."""
    items = values if isinstance(values, list) else []
    out = [num(v) for v in items[:n]]
    return [v if v is not None and v > 0 else 0.0 for v in out] + [0.0] * (n - len(out))


def distribution_chart(feature: dict[str, Any]) -> str:
    """Reference and current shares on one chart, from the numeric edges or the labels."""
    hist = as_dict(feature.get("histogram"))
    name = f"{feature.get('name') or 'feature'}: reference vs current"
    edges, labels = as_list(hist.get("edges")), as_list(hist.get("labels"))
    if len(edges) >= 2:
        k = min(len(edges) - 1, MAX_BINS)
        shown = [fmt_edge(e) for e in edges[: k + 1]]
        last = k == len(edges) - 1  # only the very last bin is closed
        names = [
            f"[{shown[i]}, {shown[i + 1]}{']' if last and i == k - 1 else ')'}" for i in range(k)
        ]
        axis = shown
    elif labels:
        k = min(len(labels), MAX_BINS)
        names = axis = ["null" if lab is None else str(lab) for lab in labels[:k]]
    else:
        return '<p class="note">No histogram: insufficient data.</p>'
    ref, cur = shares(hist.get("reference"), k), shares(hist.get("current"), k)
    more = max(len(edges) - 1, len(labels)) - k
    caption = f"<figcaption>{more:,} more bins not shown.</figcaption>" if more > 0 else ""
    return f"<figure>{overlay_histogram(ref, cur, names, axis, name)}{caption}</figure>"


def overlay_histogram(
    reference: Sequence[float],
    current: Sequence[float],
    bin_names: Sequence[str],
    axis_labels: Sequence[str],
    label: str,
) -> str:
    """Reference (class "ref") and current (class "cur") shares per bin, side by side on one
    y scale. bin_names (one per bin) go into the tooltips; axis_labels are either k+1 edge
    labels (numeric bins) or k category labels written under their bins."""
    k = len(reference)
    width, height, left, right, top_pad, bottom = 380, 150, 44, 8, 10, 20
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top, _ = _nice_top(max([*reference, *current, 0.0]))
    step = plot_w / max(k, 1)
    gap = 1.0 if step > 6 else 0.0
    half = max(step / 2 - gap, 0.5)
    base = top_pad + plot_h
    parts = [
        _open(width, height, label),
        f'<line class="axis" x1="{left}" y1="{_c(base)}" x2="{width - right}" y2="{_c(base)}"/>',
        f'<text class="tick" x="{left - 4}" y="{top_pad + 8}" text-anchor="end">'
        f"{esc(fmt_share(top))}</text>",
        f'<text class="tick" x="{left - 4}" y="{_c(base)}" text-anchor="end">0</text>',
    ]
    for i in range(k):
        x = left + i * step
        tip = (
            f"{bin_names[i]}: reference {fmt_share(reference[i])}, current {fmt_share(current[i])}"
        )
        for cls, value, dx in (("ref", reference[i], 0.0), ("cur", current[i], step / 2)):
            h = min(value / top, 1.0) * plot_h
            parts.append(
                f'<rect class="{cls}" x="{_c(x + dx)}" y="{_c(base - h)}" width="{_c(half)}" '
                f'height="{_c(h)}"><title>{esc(tip)}</title></rect>'
            )
    if len(axis_labels) == k + 1 and k:
        # Edges: all of them when they fit, else the two ends.
        every = 1 if step >= 30 else k
        for i in range(0, k + 1, every):
            anchor = "start" if i == 0 else "end" if i == k else "middle"
            parts.append(
                f'<text class="tick" x="{_c(left + i * step)}" y="{height - 6}" '
                f'text-anchor="{anchor}">{esc(axis_labels[i])}</text>'
            )
    elif len(axis_labels) == k:
        chars = int(step // 6)
        for i, text in enumerate(axis_labels if chars >= 2 else []):
            parts.append(
                f'<text class="tick" x="{_c(left + (i + 0.5) * step)}" y="{height - 6}" '
                f'text-anchor="middle">{esc(_short(text, chars))}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def interval_chart(
    value: float, low: float | None, high: float | None, baseline: float | None, label: str
) -> str:
    """One horizontal axis: the baseline as a dashed line (class "base"), the interval as a
    bar with caps (class "ci") and the value as a dot (class "pt")."""
    width, height, left, right = 520, 70, 20, 20
    known = [v for v in (value, low, high, baseline) if v is not None]
    lo, hi = min(known), max(known)
    pad = max((hi - lo) * 0.25, abs(hi) * 0.02, 0.01)
    lo, hi = lo - pad, hi + pad
    mid = 32

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (width - left - right)

    parts = [
        _open(width, height, label),
        f'<line class="axis" x1="{left}" y1="{mid + 16}" x2="{width - right}" y2="{mid + 16}"/>',
    ]
    for v in (lo + pad, hi - pad) if hi - lo > 2 * pad + 1e-12 else (value,):
        parts.append(
            f'<text class="tick" x="{_c(x(v))}" y="{height - 4}" text-anchor="middle">'
            f"{esc(fmt_num(v))}</text>"
        )
    if baseline is not None:
        bx = x(baseline)
        parts.append(
            f'<line class="base" x1="{_c(bx)}" y1="6" x2="{_c(bx)}" y2="{mid + 16}">'
            f"<title>baseline {esc(fmt_num(baseline))}</title></line>"
            f'<text class="tick" x="{_c(bx + 4)}" y="12">baseline</text>'
        )
    if low is not None and high is not None:
        x0, x1 = x(low), x(high)
        parts.append(
            f'<g class="ci"><title>interval {esc(fmt_num(low))} – {esc(fmt_num(high))}</title>'
            f'<line class="ci" x1="{_c(x0)}" y1="{mid}" x2="{_c(x1)}" y2="{mid}"/>'
            f'<line class="ci" x1="{_c(x0)}" y1="{mid - 6}" x2="{_c(x0)}" y2="{mid + 6}"/>'
            f'<line class="ci" x1="{_c(x1)}" y1="{mid - 6}" x2="{_c(x1)}" y2="{mid + 6}"/></g>'
        )
    parts.append(
        f'<circle class="pt" cx="{_c(x(value))}" cy="{mid}" r="5">'
        f"<title>current {esc(fmt_num(value))}</title></circle>"
        f'<text class="val" x="{_c(x(value))}" y="{mid - 10}" text-anchor="middle">'
        f"{esc(fmt_num(value))}</text></svg>"
    )
    return "".join(parts)
