"""Render a data-quality report (the JSON-able dict) as one self-contained HTML page.

Inline CSS and inline SVG only (svg.py): the page opens offline and references nothing
outside itself. Every string taken from the data is escaped. The output is a pure function
of the dict (no clock, no random ids, fixed number formats), so it can be diffed and cached.
Any part of the report may be missing or null; the page then says so instead of failing.
"""

from __future__ import annotations

import html
import math
import re
from datetime import date, timedelta
from typing import Any

from workers.preprocessing.quality.svg import (
    Bar,
    count,
    fmt_num,
    fmt_share,
    hbars,
    histogram,
    line_chart,
    num,
)

MAX_MISSING_BARS = 40
MAX_TOP_BARS = 20
MAX_POINTS = 1000
SCORE_ORDER = ("overall", "completeness", "validity", "consistency", "uniqueness", "timeliness")
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}

CSS = """
:root{--bg:#f5f7fa;--card:#fff;--ink:#1f2933;--mute:#616e7c;--line:#e4e7eb;--acc:#3b6fd8;
--good:#1f9d55;--warn:#d98c00;--bad:#d64545}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
header{background:#1f2933;color:#fff;padding:24px 32px}
header h1{margin:0 0 6px;font-size:24px}
header .meta{color:#cbd2d9;font-size:13px}
header code{background:#323f4b;color:#fff}
nav{padding:8px 32px;background:#fff;border-bottom:1px solid var(--line);font-size:13px}
nav a{color:var(--acc);margin-right:16px;text-decoration:none}
main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
section{margin-top:28px}
h2{font-size:18px;margin:0 0 12px}
h3{font-size:15px;margin:14px 0 6px}
.col h3:first-child{margin-top:0}
figure+.facts{margin-top:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px;
box-shadow:0 1px 2px rgba(0,0,0,.04)}
.scores{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}
.score .v{font-size:30px;font-weight:700}
.score .n{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.meter{height:6px;background:var(--line);border-radius:3px;margin-top:6px;overflow:hidden}
.meter i{display:block;height:100%;background:currentColor}
.good{color:var(--good)}.warn{color:var(--warn)}.bad{color:var(--bad)}.na{color:var(--mute)}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:4px 20px;
margin:0}
.facts div{display:flex;justify-content:space-between;border-bottom:1px dashed var(--line)}
.facts dt{color:var(--mute);padding-right:8px}.facts dd{margin:0;font-weight:600;text-align:right}
ol.recs{margin:0;padding-left:22px}ol.recs li{margin:6px 0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--mute);font-weight:600;font-size:12px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;
background:var(--line);color:var(--ink)}
.badge.high{background:#fde8e8;color:var(--bad)}.badge.medium{background:#fff3d6;
color:#9a6400}.badge.low{background:#e3f1fd;color:#1c5fa8}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f5;
padding:0 4px;border-radius:4px;white-space:pre}
.cols{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:14px}
.col h3{overflow-wrap:anywhere}
.col .sub{color:var(--mute);font-size:12px;margin-bottom:8px}
.col table{font-size:12px;margin:6px 0}
.note,figcaption{color:var(--mute);font-size:12px}
figure{margin:0}
svg.chart{max-width:100%;height:auto;display:block;font-size:10px}
figure.wide svg.chart{width:100%}
svg .hb,svg .tb{fill:var(--acc)}svg .ms{fill:var(--bad)}svg .other{fill:#9aa5b1}
svg .axis{stroke:#9aa5b1}svg .grid{stroke:var(--line)}
svg .tick,svg .val{fill:var(--mute)}svg .lbl{fill:var(--ink)}
svg .series{fill:none;stroke:var(--acc);stroke-width:1.5}
svg .area{fill:var(--acc);opacity:.15}svg .dot{fill:var(--acc)}
svg .gap{fill:var(--warn);opacity:.2}
svg .cp{stroke:var(--bad);stroke-dasharray:4 3}svg .cpl{fill:var(--bad);font-size:9px}
footer{color:var(--mute);font-size:12px;text-align:center;margin-top:32px}
"""


def render_html(report: dict[str, Any]) -> str:
    """The whole page for one report; byte-identical for equal dicts."""
    dataset = _dict(report.get("dataset"))
    columns = [_dict(c) for c in _list(report.get("columns"))]
    defs = {str(k): str(v) for k, v in _dict(report.get("metric_definitions")).items()}
    title = f"Data quality — {dataset.get('name') or 'dataset'}"
    body = [
        _header(dataset, report.get("as_of")),
        '<nav><a href="#scores">Scores</a><a href="#recommendations">Recommendations</a>'
        '<a href="#findings">Findings</a><a href="#missing">Missing values</a>'
        '<a href="#time">Time</a><a href="#columns">Columns</a></nav><main>',
        _scores(_dict(report.get("scores")), _dict(report.get("table"))),
        _recommendations(_list(report.get("recommendations"))),
        _findings(_list(report.get("findings"))),
        _missing(columns),
        _time(report.get("time"), report.get("as_of")),
        _columns(columns, defs, _list(report.get("findings"))),
        f"</main><footer>Data-quality report format {_e(report.get('report_version'))}</footer>",
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


# --- small helpers: tolerate any JSON shape, escape everything -----------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _e(value: Any) -> str:
    return "" if value is None else html.escape(str(value))


def _text(value: Any) -> str:
    """Escaped text, or a dash for a missing value."""
    return "—" if value is None or value == "" else _e(value)


def _rich(text: Any) -> str:
    """Escaped text with `backtick spans` as <code> (escaping leaves backticks alone)."""
    return re.sub(r"`([^`\n]+)`", r"<code>\1</code>", _e(text))


def _value(value: Any) -> str:
    """A data value as shown: JSON words for null/bools, text quoted only when blanks at its
    ends (or emptiness) would otherwise be invisible, e.g. the spelling variant "ny "."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return fmt_num(value)
    text = str(value)
    return f'"{text}"' if text != text.strip() or not text else text


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _stamp(value: Any) -> str:
    """ISO timestamp shortened for axes: the date alone when the time is midnight."""
    if value is None:
        return "—"
    text = str(value)
    if len(text) > 10 and text[10] == "T":
        return text[:10] if text[11:19] in ("00:00:00", "00:00") else text[:16].replace("T", " ")
    return text


def _facts(pairs: list[tuple[str, str]]) -> str:
    rows = "".join(f"<div><dt>{_e(k)}</dt><dd>{v}</dd></div>" for k, v in pairs)
    return f'<dl class="facts">{rows}</dl>'


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _score_class(score: float | None) -> str:
    if score is None:
        return "na"
    return "good" if score >= 85 else "warn" if score >= 60 else "bad"


# --- sections -------------------------------------------------------------------------------


def _header(dataset: dict[str, Any], as_of: Any) -> str:
    sha = str(dataset.get("sha256") or "")
    meta = [
        f"version {_text(dataset.get('version'))}",
        f"{fmt_num(dataset.get('rows'))} rows &times; {fmt_num(dataset.get('columns'))} columns",
        f'sha256 <code title="{_e(sha)}">{_e(sha[:12])}</code>' if sha else "sha256 —",
        f"as of {_e(as_of)}" if as_of else "as of —",
    ]
    return (
        f"<header><h1>{_e(dataset.get('name') or 'dataset')}</h1>"
        f'<div class="meta">{" · ".join(meta)}</div></header>'
    )


def _scores(scores: dict[str, Any], table: dict[str, Any]) -> str:
    names = [n for n in SCORE_ORDER if n in scores] + sorted(set(scores) - set(SCORE_ORDER))
    cards = []
    for name in names:
        score = num(scores[name])
        cls = _score_class(score)
        shown = "n/a" if score is None else f"{score:.1f}"
        width = 0.0 if score is None else min(max(score, 0.0), 100.0)
        cards.append(
            f'<div class="card score {cls}"><div class="n">{_e(name)}</div>'
            f'<div class="v">{shown}</div>'
            f'<div class="meter"><i style="width:{width:.1f}%"></i></div></div>'
        )
    keys = ", ".join(str(k) for k in _list(table.get("key_columns"))) or "—"
    facts = _facts(
        [
            ("Rows", fmt_num(table.get("rows"))),
            ("Columns", fmt_num(table.get("columns"))),
            ("Missing cells", _count_share(table, "missing_cells", "missing_cell_share")),
            ("Duplicate rows", _count_share(table, "duplicate_rows", "duplicate_row_share")),
            ("Duplicate keys", _count_share(table, "duplicate_keys", "duplicate_key_share")),
            ("Key columns", _e(keys)),
        ]
    )
    grid = "".join(cards) or '<p class="note">No scores.</p>'
    return (
        f'<section id="scores"><h2>Scores</h2><div class="scores">{grid}</div>'
        f'<div class="card" style="margin-top:12px">{facts}</div></section>'
    )


def _count_share(table: dict[str, Any], n_key: str, share_key: str) -> str:
    n, share = table.get(n_key), table.get(share_key)
    if num(n) is None:
        return fmt_num(n)
    return fmt_num(n) if num(share) is None else f"{fmt_num(n)} ({fmt_share(share)})"


def _recommendations(recs: list[Any]) -> str:
    items = [_dict(r) for r in recs]
    # Priority 1 first; a missing priority goes last; ties keep the report's order.
    items.sort(key=lambda r: _or(num(r.get("priority")), math.inf))
    rows = "".join(
        f"<li>{_priority_badge(r.get('priority'))}{_rich(r.get('text'))}"
        + (f" <code>{_e(r['action'])}</code>" if r.get("action") else "")
        + "</li>"
        for r in items
    )
    content = f'<ol class="recs">{rows}</ol>' if rows else '<p class="note">None.</p>'
    return (
        f'<section id="recommendations"><h2>Recommendations</h2><div class="card">{content}'
        "</div></section>"
    )


def _priority_badge(priority: Any) -> str:
    return "" if num(priority) is None else f'<span class="badge">P{fmt_num(priority)}</span> '


def _findings(findings: list[Any]) -> str:
    items = sorted(
        (_dict(f) for f in findings), key=lambda f: SEVERITY_ORDER.get(str(f.get("severity")), 3)
    )
    rows = "".join(
        f'<tr><td><span class="badge {_severity_class(f.get("severity"))}">'
        f"{_e(f.get('severity') or '—')}</span></td><td>{_e(f.get('dimension'))}</td>"
        f"<td>{_e(f.get('column') or '(table)')}</td><td><code>{_e(f.get('check'))}</code></td>"
        f"<td>{_rich(f.get('message'))}</td></tr>"
        for f in items
    )
    head = (
        "<tr><th>Severity</th><th>Dimension</th><th>Column</th><th>Check</th><th>Message</th></tr>"
    )
    content = f"<table>{head}{rows}</table>" if rows else '<p class="note">No findings.</p>'
    return f'<section id="findings"><h2>Findings</h2><div class="card">{content}</div></section>'


def _severity_class(severity: Any) -> str:
    # Only known words become a CSS class; anything else from the data stays text.
    return severity if isinstance(severity, str) and severity in SEVERITY_ORDER else ""


def _missing(columns: list[dict[str, Any]]) -> str:
    shares = [(num(_dict(c.get("metrics")).get("missing_share")), i) for i, c in enumerate(columns)]
    # Worst first; unknown shares last; the column order breaks ties (stable, deterministic).
    shares.sort(key=lambda s: (s[0] is None, -(s[0] or 0.0), s[1]))
    shown = shares[:MAX_MISSING_BARS]
    bars = [Bar(_name(columns[i]), share or 0.0, fmt_share(share)) for share, i in shown]
    chart = (
        hbars(bars, "Missing share per column", width=900, label_w=220, scale_max=1.0, cls="ms")
        if bars
        else '<p class="note">No columns.</p>'
    )
    more = len(shares) - len(shown)
    caption = "Share of missing values per column, worst first, on a 0 to 100% scale."
    if more > 0:
        caption += f" {more:,} more columns not shown."
    return (
        f'<section id="missing"><h2>Missing values</h2><figure class="card wide">{chart}'
        f"<figcaption>{caption}</figcaption></figure></section>"
    )


def _time(time: Any, as_of: Any) -> str:
    head = '<section id="time"><h2>Time</h2>'
    if not isinstance(time, dict):
        return f'{head}<p class="note">No time column: timeliness is not assessed.</p></section>'
    g0, g1 = time.get("largest_gap_start"), time.get("largest_gap_end")
    gap = f" ({_e(g0)} &ndash; {_e(g1)})" if g0 and g1 else ""
    facts = _facts(
        [
            ("Time column", _text(time.get("column"))),
            ("First event", _e(_stamp(time.get("first")))),
            ("Last event", _e(_stamp(time.get("last")))),
            ("As of", _e(_stamp(as_of)) if as_of else "—"),
            ("Last event age", _days(time.get("last_event_age_days"))),
            ("Span", _days(time.get("span_days"))),
            ("Days without events", fmt_share(time.get("missing_day_share"))),
            ("Largest gap", _days(time.get("largest_gap_days")) + gap),
            ("Trend", _trend(_dict(time.get("trend")))),
            ("Weekly seasonality", fmt_num(time.get("weekly_seasonality_strength"))),
            ("Annual seasonality", fmt_num(time.get("annual_seasonality_strength"))),
        ]
    )
    points = [_dict(c) for c in _list(time.get("change_points"))]
    rows = "".join(
        f"<tr><td>{_e(c.get('date'))}</td><td class=num>{fmt_num(c.get('before_mean'))}</td>"
        f"<td class=num>{fmt_num(c.get('after_mean'))}</td></tr>"
        for c in points
    )
    table = (
        "<h3>Change points</h3><table><tr><th>Date</th><th class=num>Mean before</th>"
        f"<th class=num>Mean after</th></tr>{rows}</table>"
        if rows
        else ""
    )
    return f'{head}<div class="card">{_daily_chart(time, points)}{facts}{table}</div></section>'


def _days(value: Any) -> str:
    shown = fmt_num(value)
    return "—" if num(value) is None else f"{shown} day{'s' * (shown != '1')}"


def _trend(trend: dict[str, Any]) -> str:
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
    return _e(text)


def _daily_chart(time: dict[str, Any], points: list[dict[str, Any]]) -> str:
    daily = _dict(time.get("daily"))
    counts = [count(c) for c in _list(daily.get("counts"))]
    start = _day(daily.get("start"))
    if not counts or start is None:
        return '<p class="note">No daily counts.</p>'
    values, size = _bucket(counts)

    def pos(day: date) -> float:
        return (day - start).days / size

    def inside(day: date | None) -> bool:
        return day is not None and 0 <= (day - start).days < len(counts)

    days = [_day(c.get("date")) for c in points]
    markers = [(pos(d), d.isoformat()) for d in days if d is not None and inside(d)]
    g0, g1 = _day(time.get("largest_gap_start")), _day(time.get("largest_gap_end"))
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


def _bucket(counts: list[int]) -> tuple[list[float], int]:
    """At most MAX_POINTS points: whole weeks (or multiples of them) summed when longer."""
    if len(counts) <= MAX_POINTS:
        return [float(c) for c in counts], 1
    size = 7 * math.ceil(len(counts) / (7 * MAX_POINTS))
    return [float(sum(counts[i : i + size])) for i in range(0, len(counts), size)], size


def _columns(columns: list[dict[str, Any]], defs: dict[str, str], findings: list[Any]) -> str:
    per_column: dict[str, int] = {}
    for f in findings:
        name = _dict(f).get("column")
        if name is not None:
            per_column[str(name)] = per_column.get(str(name), 0) + 1
    cards = "".join(_column_card(i, c, defs, per_column) for i, c in enumerate(columns))
    return f'<section id="columns"><h2>Columns</h2><div class="cols">{cards}</div></section>'


def _column_card(i: int, col: dict[str, Any], defs: dict[str, str], flags: dict[str, int]) -> str:
    name, kind = _name(col), str(col.get("kind") or "unknown")
    dtype = f" <code>{_e(col['dtype'])}</code>" if col.get("dtype") else ""
    n = flags.get(name, 0)
    flag = f' <span class="badge high">{n} finding{"s" * (n != 1)}</span>' if n else ""
    return (
        f'<article class="card col" id="col-{i}"><h3>{_e(name)}{flag}</h3>'
        f'<div class="sub"><span class="badge">{_e(kind)}</span>{dtype}</div>'
        f"{_column_chart(col, kind)}{_metrics(_dict(col.get('metrics')), defs)}"
        f"{_stats(_dict(col.get('stats')))}{_spelling(_list(col.get('spelling_groups')))}"
        f"{_breaks(_list(col.get('period_breaks')))}</article>"
    )


def _name(col: dict[str, Any]) -> str:
    return "" if col.get("name") is None else str(col["name"])


def _metrics(metrics: dict[str, Any], defs: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td{_tip(defs.get(k))}>{_e(k)}</td><td class=num>{_metric(k, v)}</td></tr>"
        for k, v in metrics.items()
    )
    return f"<table><tr><th>Metric</th><th class=num>Value</th></tr>{rows}</table>" if rows else ""


def _tip(definition: str | None) -> str:
    return f' title="{_e(definition)}"' if definition else ""


def _metric(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name.endswith(("_share", "conformance")):
        return fmt_share(value)
    return _e(value) if isinstance(value, str) else fmt_num(value)


def _stats(stats: dict[str, Any]) -> str:
    cells = [f"<th>{_e(k)}</th><td class=num>{fmt_num(v)}</td>" for k, v in stats.items()]
    # Three pairs per row keeps the table inside a narrow card.
    rows = "".join(f"<tr>{''.join(cells[i : i + 3])}</tr>" for i in range(0, len(cells), 3))
    return f'<table class="stats">{rows}</table>' if rows else ""


def _column_chart(col: dict[str, Any], kind: str) -> str:
    hist = _dict(col.get("histogram"))
    counts = _list(hist.get("counts"))
    if kind in ("numeric", "timestamp") and counts:
        fmt = _stamp if kind == "timestamp" else fmt_num
        edges = [fmt(e) for e in _list(hist.get("edges"))]
        return f"<figure>{histogram(counts, edges, 'Histogram')}</figure>"
    tops = [_dict(t) for t in _list(col.get("top_values"))][:MAX_TOP_BARS]
    other = count(col.get("other_count"))
    if kind in ("categorical", "boolean") and (tops or other):
        bars = [
            Bar(_value(t.get("value")), count(t.get("count")), fmt_num(count(t.get("count"))))
            for t in tops
        ]
        if other:
            # Name how many distinct values hide in "other" when the metrics know it.
            distinct = count(_dict(col.get("metrics")).get("distinct_count")) - len(tops)
            plural = "s" * (distinct != 1)
            label = f"other ({distinct:,} value{plural})" if distinct > 0 else f"other ({other:,})"
            bars.append(Bar(label, other, f"{other:,}", muted=True))
        return f"<figure>{hbars(bars, 'Top values')}</figure>"
    return '<p class="note">No values to chart.</p>'


def _spelling(groups: list[Any]) -> str:
    items = []
    for group in (_dict(g) for g in groups):
        variants = ", ".join(
            f"<code>{_e(_value(v.get('value')))}</code> ({fmt_num(v.get('count'))})"
            for v in (_dict(x) for x in _list(group.get("variants")))
        )
        items.append(f"<li>{variants}</li>")
    return f"<h3>Spelling groups</h3><ul>{''.join(items)}</ul>" if items else ""


def _breaks(breaks: list[Any]) -> str:
    rows = "".join(
        f"<tr><td>{_e(b.get('start'))} &ndash; {_e(b.get('end'))}</td><td><code>"
        f"{_e(_value(b.get('value')))}</code></td><td class=num>{fmt_share(b.get('share'))}</td>"
        f"<td class=num>{fmt_num(b.get('rows'))}</td>"
        f"<td class=num>{fmt_share(b.get('elsewhere_share'))}</td></tr>"
        for b in (_dict(x) for x in breaks)
    )
    head = (
        "<tr><th>Period</th><th>Value</th><th class=num>Share</th><th class=num>Rows</th>"
        "<th class=num>Elsewhere</th></tr>"
    )
    return f"<h3>Period breaks</h3><table>{head}{rows}</table>" if rows else ""
