"""Render a data-quality report (the JSON-able dict) as one self-contained HTML page.

Inline CSS and inline SVG only (svg.py): the page opens offline and references nothing
outside itself. Every string taken from the data is escaped. The output is a pure function
of the dict (no clock, no random ids, fixed number formats), so it can be diffed and cached.
Any part of the report may be missing or null; the page then says so instead of failing.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

from workers.preprocessing.quality.html_parts import (
    as_dict,
    as_list,
    esc,
    fact_list,
    or_default,
    rich,
    score_class,
    short_stamp,
    show_value,
    text_or_dash,
)
from workers.preprocessing.quality.html_time import time_section
from workers.preprocessing.quality.svg import (
    Bar,
    count,
    fmt_num,
    fmt_share,
    hbars,
    histogram,
    num,
)

CSS = resources.files(__package__).joinpath("report.css").read_text(encoding="utf-8")
MAX_MISSING_BARS = 40
MAX_TOP_BARS = 20
SCORE_ORDER = ("overall", "completeness", "validity", "consistency", "uniqueness", "timeliness")
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def render_html(report: dict[str, Any]) -> str:
    """The whole page for one report; byte-identical for equal dicts."""
    dataset = as_dict(report.get("dataset"))
    columns = [as_dict(c) for c in as_list(report.get("columns"))]
    defs = {str(k): str(v) for k, v in as_dict(report.get("metric_definitions")).items()}
    title = f"Data quality — {dataset.get('name') or 'dataset'}"
    body = [
        _header(dataset, report.get("as_of")),
        '<nav><a href="#scores">Scores</a><a href="#recommendations">Recommendations</a>'
        '<a href="#findings">Findings</a><a href="#missing">Missing values</a>'
        '<a href="#time">Time</a><a href="#columns">Columns</a></nav><main>',
        _scores(as_dict(report.get("scores")), as_dict(report.get("table"))),
        _recommendations(as_list(report.get("recommendations"))),
        _findings(as_list(report.get("findings"))),
        _missing(columns),
        time_section(report.get("time"), report.get("as_of")),
        _columns(columns, defs, as_list(report.get("findings"))),
        f"</main><footer>Data-quality report format {esc(report.get('report_version'))}</footer>",
    ]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


# --- sections -------------------------------------------------------------------------------


def _header(dataset: dict[str, Any], as_of: Any) -> str:
    sha = str(dataset.get("sha256") or "")
    meta = [
        f"version {text_or_dash(dataset.get('version'))}",
        f"{fmt_num(dataset.get('rows'))} rows &times; {fmt_num(dataset.get('columns'))} columns",
        f'sha256 <code title="{esc(sha)}">{esc(sha[:12])}</code>' if sha else "sha256 —",
        f"as of {esc(as_of)}" if as_of else "as of —",
    ]
    return (
        f"<header><h1>{esc(dataset.get('name') or 'dataset')}</h1>"
        f'<div class="meta">{" · ".join(meta)}</div></header>'
    )


def _scores(scores: dict[str, Any], table: dict[str, Any]) -> str:
    names = [n for n in SCORE_ORDER if n in scores] + sorted(set(scores) - set(SCORE_ORDER))
    cards = []
    for name in names:
        score = num(scores[name])
        cls = score_class(score)
        shown = "n/a" if score is None else f"{score:.1f}"
        width = 0.0 if score is None else min(max(score, 0.0), 100.0)
        cards.append(
            f'<div class="card score {cls}"><div class="n">{esc(name)}</div>'
            f'<div class="v">{shown}</div>'
            f'<div class="meter"><i style="width:{width:.1f}%"></i></div></div>'
        )
    keys = ", ".join(str(k) for k in as_list(table.get("key_columns"))) or "—"
    facts = fact_list(
        [
            ("Rows", fmt_num(table.get("rows"))),
            ("Columns", fmt_num(table.get("columns"))),
            ("Missing cells", _count_share(table, "missing_cells", "missing_cell_share")),
            ("Duplicate rows", _count_share(table, "duplicate_rows", "duplicate_row_share")),
            ("Duplicate keys", _count_share(table, "duplicate_keys", "duplicate_key_share")),
            ("Key columns", esc(keys)),
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
    items = [as_dict(r) for r in recs]
    # Priority 1 first; a missing priority goes last; ties keep the report's order.
    items.sort(key=lambda r: or_default(num(r.get("priority")), math.inf))
    rows = "".join(
        f"<li>{_priority_badge(r.get('priority'))}{rich(r.get('text'))}"
        + (f" <code>{esc(r['action'])}</code>" if r.get("action") else "")
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
        (as_dict(f) for f in findings), key=lambda f: SEVERITY_ORDER.get(str(f.get("severity")), 3)
    )
    rows = "".join(
        f'<tr><td><span class="badge {_severity_class(f.get("severity"))}">'
        f"{esc(f.get('severity') or '—')}</span></td><td>{esc(f.get('dimension'))}</td>"
        f"<td>{esc(f.get('column') or '(table)')}</td><td><code>{esc(f.get('check'))}</code></td>"
        f"<td>{rich(f.get('message'))}</td></tr>"
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
    shares = [
        (num(as_dict(c.get("metrics")).get("missing_share")), i) for i, c in enumerate(columns)
    ]
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


def _columns(columns: list[dict[str, Any]], defs: dict[str, str], findings: list[Any]) -> str:
    per_column: dict[str, int] = {}
    for f in findings:
        name = as_dict(f).get("column")
        if name is not None:
            per_column[str(name)] = per_column.get(str(name), 0) + 1
    cards = "".join(_column_card(i, c, defs, per_column) for i, c in enumerate(columns))
    return f'<section id="columns"><h2>Columns</h2><div class="cols">{cards}</div></section>'


def _column_card(i: int, col: dict[str, Any], defs: dict[str, str], flags: dict[str, int]) -> str:
    name, kind = _name(col), str(col.get("kind") or "unknown")
    dtype = f" <code>{esc(col['dtype'])}</code>" if col.get("dtype") else ""
    n = flags.get(name, 0)
    flag = f' <span class="badge high">{n} finding{"s" * (n != 1)}</span>' if n else ""
    return (
        f'<article class="card col" id="col-{i}"><h3>{esc(name)}{flag}</h3>'
        f'<div class="sub"><span class="badge">{esc(kind)}</span>{dtype}</div>'
        f"{_column_chart(col, kind)}{_metrics(as_dict(col.get('metrics')), defs)}"
        f"{_stats(as_dict(col.get('stats')))}{_spelling(as_list(col.get('spelling_groups')))}"
        f"{_breaks(as_list(col.get('period_breaks')))}</article>"
    )


def _name(col: dict[str, Any]) -> str:
    return "" if col.get("name") is None else str(col["name"])


def _metrics(metrics: dict[str, Any], defs: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td{_tip(defs.get(k))}>{esc(k)}</td><td class=num>{_metric(k, v)}</td></tr>"
        for k, v in metrics.items()
    )
    return f"<table><tr><th>Metric</th><th class=num>Value</th></tr>{rows}</table>" if rows else ""


def _tip(definition: str | None) -> str:
    return f' title="{esc(definition)}"' if definition else ""


def _metric(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name.endswith(("_share", "conformance")):
        return fmt_share(value)
    return esc(value) if isinstance(value, str) else fmt_num(value)


def _stats(stats: dict[str, Any]) -> str:
    cells = [f"<th>{esc(k)}</th><td class=num>{fmt_num(v)}</td>" for k, v in stats.items()]
    # Three pairs per row keeps the table inside a narrow card.
    rows = "".join(f"<tr>{''.join(cells[i : i + 3])}</tr>" for i in range(0, len(cells), 3))
    return f'<table class="stats">{rows}</table>' if rows else ""


def _column_chart(col: dict[str, Any], kind: str) -> str:
    hist = as_dict(col.get("histogram"))
    counts = as_list(hist.get("counts"))
    if kind in ("numeric", "timestamp") and counts:
        fmt = short_stamp if kind == "timestamp" else fmt_num
        edges = [fmt(e) for e in as_list(hist.get("edges"))]
        return f"<figure>{histogram(counts, edges, 'Histogram')}</figure>"
    tops = [as_dict(t) for t in as_list(col.get("top_values"))][:MAX_TOP_BARS]
    other = count(col.get("other_count"))
    if kind in ("categorical", "boolean") and (tops or other):
        bars = [
            Bar(show_value(t.get("value")), count(t.get("count")), fmt_num(count(t.get("count"))))
            for t in tops
        ]
        if other:
            # Name how many distinct values hide in "other" when the metrics know it.
            distinct = count(as_dict(col.get("metrics")).get("distinct_count")) - len(tops)
            plural = "s" * (distinct != 1)
            label = f"other ({distinct:,} value{plural})" if distinct > 0 else f"other ({other:,})"
            bars.append(Bar(label, other, f"{other:,}", muted=True))
        return f"<figure>{hbars(bars, 'Top values')}</figure>"
    return '<p class="note">No values to chart.</p>'


def _spelling(groups: list[Any]) -> str:
    items = []
    for group in (as_dict(g) for g in groups):
        variants = ", ".join(
            f"<code>{esc(show_value(v.get('value')))}</code> ({fmt_num(v.get('count'))})"
            for v in (as_dict(x) for x in as_list(group.get("variants")))
        )
        items.append(f"<li>{variants}</li>")
    return f"<h3>Spelling groups</h3><ul>{''.join(items)}</ul>" if items else ""


def _breaks(breaks: list[Any]) -> str:
    rows = "".join(
        f"<tr><td>{esc(b.get('start'))} &ndash; {esc(b.get('end'))}</td><td><code>"
        f"{esc(show_value(b.get('value')))}</code></td>"
        f"<td class=num>{fmt_share(b.get('share'))}</td>"
        f"<td class=num>{fmt_num(b.get('rows'))}</td>"
        f"<td class=num>{fmt_share(b.get('elsewhere_share'))}</td></tr>"
        for b in (as_dict(x) for x in breaks)
    )
    head = (
        "<tr><th>Period</th><th>Value</th><th class=num>Share</th><th class=num>Rows</th>"
        "<th class=num>Elsewhere</th></tr>"
    )
    return f"<h3>Period breaks</h3><table>{head}{rows}</table>" if rows else ""
