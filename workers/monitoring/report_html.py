"""Render one monitoring check (the JSON-able result dict) as a self-contained HTML page.

Inline CSS (the data-quality report's, plus a few rules) and inline SVG only: no JavaScript,
nothing outside the page. Every string from the check is escaped. The page is a pure function
of the dict (no clock, no random ids, stable sorting), so equal checks give equal bytes. Any
section may be missing, empty or null: the page then says "no data" or "insufficient data".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.monitoring.report_parts import (
    EXTRA_CSS,
    LEGEND,
    SEVERITY_RANK,
    distribution_chart,
    fmt_p,
    interval_chart,
    severity_class,
    status_class,
)
from workers.preprocessing.quality.html import CSS
from workers.preprocessing.quality.html_parts import (
    as_dict,
    as_list,
    esc,
    fact_list,
    short_stamp,
    text_or_dash,
)
from workers.preprocessing.quality.svg import Bar, fmt_num, fmt_share, hbars, line_chart, num

MAX_REASONS = 5
MAX_TICKS = 6


def render_check_report(check: Mapping[str, Any]) -> str:
    """The whole page for one check result; byte-identical for equal dicts."""
    model = str(check.get("model_name") or "model")
    version = check.get("version")
    stamp = check.get("checked_at")
    named = f"{model} {version}" if version not in (None, "") else model
    title = f"Monitoring check — {named} — {stamp or 'time unknown'}"
    features = sorted_features(as_list(as_dict(check.get("data_drift")).get("features")))
    body = [
        _header(check, model),
        '<nav><a href="#health">Health</a><a href="#drift">Data drift</a>'
        '<a href="#features">Features</a><a href="#prediction">Prediction drift</a>'
        '<a href="#performance">Performance</a><a href="#quality">Data quality</a>'
        '<a href="#history">Over time</a></nav><main>',
        _health(as_dict(check.get("health")), as_dict(check.get("operations"))),
        _drift_table(as_dict(check.get("data_drift")), features),
        _feature_charts(features),
        _prediction(check.get("prediction_drift")),
        _performance(check.get("performance")),
        _quality(check.get("quality")),
        _history(check),
        f"</main><footer>Monitoring check {text_or_dash(check.get('check_id'))}</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}{EXTRA_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def sorted_features(features: list[Any]) -> list[dict[str, Any]]:
    """Drifted first; otherwise the check's own order (stable, deterministic)."""
    items = [as_dict(f) for f in features]
    return sorted(items, key=lambda f: not _is_drifted(f))


def _is_drifted(feature: dict[str, Any]) -> bool:
    return feature.get("drifted") is True or feature.get("status") == "drifted"


def _section(ident: str, heading: str, content: str) -> str:
    return f'<section id="{ident}"><h2>{heading}</h2>{content}</section>'


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


# --- sections -------------------------------------------------------------------------------


def _header(check: Mapping[str, Any], model: str) -> str:
    window = as_dict(check.get("window"))
    meta = [
        f"version {text_or_dash(check.get('version'))}",
        f"checked {text_or_dash(check.get('checked_at'))}",
        f"window {esc(short_stamp(window.get('start')))} &ndash; "
        f"{esc(short_stamp(window.get('end')))}",
        f"{fmt_num(window.get('rows'))} rows vs {fmt_num(window.get('reference_rows'))} "
        "reference rows",
        f"source {text_or_dash(window.get('source'))}",
    ]
    return f'<header><h1>{esc(model)}</h1><div class="meta">{" · ".join(meta)}</div></header>'


def _health(health: dict[str, Any], ops: dict[str, Any]) -> str:
    score = num(health.get("score"))
    status = health.get("status")
    cls = status_class(status)
    reasons = [esc(r) for r in as_list(health.get("reasons"))][:MAX_REASONS]
    reason_list = (
        "<ul>" + "".join(f"<li>{r}</li>" for r in reasons) + "</ul>"
        if reasons
        else _note("No reasons given.")
    )
    components = [
        (str(k), num(v)) for k, v in as_dict(health.get("components")).items() if num(v) is not None
    ]
    chart = (
        hbars(
            [Bar(k, v or 0.0, fmt_num(v)) for k, v in components],
            "Health components",
            width=420,
            label_w=120,
        )
        if components
        else _note("No components.")
    )
    hero = (
        f'<div class="card hero"><div class="{cls}"><div class="big">'
        f"{'n/a' if score is None else f'{score:.1f}'}</div>"
        f'<div class="status">{text_or_dash(status)}</div></div>'
        f"<div><h3>Top reasons</h3>{reason_list}</div>"
        f"<div><h3>Components</h3><figure>{chart}</figure></div></div>"
    )
    facts = fact_list(
        [
            ("Predictions", fmt_num(ops.get("predictions"))),
            ("Usual volume", fmt_num(ops.get("usual_volume"))),
            ("Error rate", fmt_share(ops.get("error_rate"))),
            ("Latency p95", f"{fmt_num(ops.get('latency_p95_ms'))} ms"),
        ]
    )
    ops_card = f'<div class="card" style="margin-top:12px"><h3>Operations</h3>{facts}</div>'
    return _section("health", "Health", hero + (ops_card if ops else ""))


def _drift_table(drift: dict[str, Any], features: list[dict[str, Any]]) -> str:
    if not features:
        return _section("drift", "Data drift", _note("No data: no features were compared."))
    rows = "".join(
        f'<tr class="{"drifted" if _is_drifted(f) else ""}">'
        f'<td><a href="#feat-{i}">{esc(f.get("name"))}</a></td><td>{esc(f.get("kind"))}</td>'
        f"<td>{esc(f.get('test'))}</td><td class=num>{fmt_num(f.get('statistic'))}</td>"
        f"<td class=num>{fmt_p(f.get('p_adjusted'))}</td>"
        f"<td class=num>{fmt_num(f.get('effect'))} <small>{esc(f.get('effect_name'))}</small>"
        f"</td><td class=num>{fmt_num(f.get('psi'))} "
        f'<span class="badge {_level_badge(f.get("psi_level"))}">{text_or_dash(f.get("psi_level"))}'
        f"</span></td><td>{_drift_badge(f)}</td></tr>"
        for i, f in enumerate(features)
    )
    n_drifted = sum(_is_drifted(f) for f in features)
    summary = (
        f"{n_drifted} of {len(features)} features drifted "
        f"({fmt_share(drift.get('drifted_share'))} by the check)."
    )
    head = (
        "<tr><th>Feature</th><th>Kind</th><th>Test</th><th class=num>Statistic</th>"
        "<th class=num>p adj.</th><th class=num>Effect</th><th class=num>PSI</th>"
        "<th>Drifted?</th></tr>"
    )
    table = f'<div class="card"><p>{summary}</p><table class="drift">{head}{rows}</table></div>'
    return _section("drift", "Data drift", table)


def _level_badge(level: Any) -> str:
    return {"major": "high", "moderate": "medium", "minor": "low"}.get(str(level), "")


def _drift_badge(feature: dict[str, Any]) -> str:
    if _is_drifted(feature):
        return '<span class="badge high">drifted</span>'
    return f'<span class="badge">{esc(feature.get("status") or "no")}</span>'


def _feature_charts(features: list[dict[str, Any]]) -> str:
    if not features:
        return _section("features", "Reference vs current", _note("No data."))
    cards = "".join(_feature_card(f"feat-{i}", f) for i, f in enumerate(features))
    return _section(
        "features", "Reference vs current", LEGEND + f'<div class="feats">{cards}</div>'
    )


def _feature_card(ident: str, feature: dict[str, Any]) -> str:
    flag = ' <span class="badge high">drifted</span>' if _is_drifted(feature) else ""
    return (
        f'<article class="card feat" id="{ident}"><h3>{esc(feature.get("name"))}{flag}</h3>'
        f"{distribution_chart(feature)}{_feature_facts(feature)}</article>"
    )


def _feature_facts(f: dict[str, Any]) -> str:
    unseen = ", ".join(str(c) for c in as_list(f.get("unseen_categories")))
    gone = ", ".join(str(c) for c in as_list(f.get("missing_categories")))
    pairs = [
        ("Test", f"{text_or_dash(f.get('test'))} · {text_or_dash(f.get('kind'))}"),
        ("Statistic", fmt_num(f.get("statistic"))),
        ("p / p adj.", f"{fmt_p(f.get('p_value'))} / {fmt_p(f.get('p_adjusted'))}"),
        ("Effect", f"{fmt_num(f.get('effect'))} ({text_or_dash(f.get('effect_name'))})"),
        ("PSI", f"{fmt_num(f.get('psi'))} ({text_or_dash(f.get('psi_level'))})"),
        ("Rows ref / cur", f"{fmt_num(f.get('n_reference'))} / {fmt_num(f.get('n_current'))}"),
        (
            "Missing ref / cur",
            f"{fmt_share(f.get('missing_reference'))} / {fmt_share(f.get('missing_current'))}",
        ),
    ]
    if unseen:
        pairs.append(("Unseen categories", esc(unseen)))
    if gone:
        pairs.append(("Vanished categories", esc(gone)))
    return fact_list(pairs)


def _prediction(pred: Any) -> str:
    if not isinstance(pred, dict) or not pred:
        content = _note("No data: no prediction scores to compare in this window.")
    else:
        flag = ' <span class="badge high">drifted</span>' if _is_drifted(pred) else ""
        content = (
            f'<div class="card pred"><h3>Score distribution{flag}</h3>{LEGEND}'
            f"{distribution_chart(pred)}{_feature_facts(pred)}</div>"
        )
    return _section("prediction", "Prediction drift", content)


def _performance(perf: Any) -> str:
    perf = as_dict(perf)
    value = num(perf.get("value"))
    if not perf or value is None:
        message = f" {esc(perf.get('message'))}" if perf.get("message") else ""
        return _section(
            "performance",
            "Performance",
            _note(f"Insufficient data: no labelled outcomes to score in this window.{message}"),
        )
    low, high, base = num(perf.get("ci_low")), num(perf.get("ci_high")), num(perf.get("baseline"))
    metric = str(perf.get("metric") or "metric")
    chart = interval_chart(value, low, high, base, f"{metric} vs baseline")
    interval = f"{fmt_num(low)} – {fmt_num(high)}" if low is not None and high is not None else "—"
    status = perf.get("status")
    facts = fact_list(
        [
            ("Metric", esc(metric)),
            ("Current", fmt_num(value)),
            ("Interval", interval),
            ("Baseline", fmt_num(base)),
            ("Drop", fmt_num(perf.get("drop"))),
            ("Labelled rows", fmt_num(perf.get("n"))),
            ("Status", f'<span class="{status_class(status)}">{text_or_dash(status)}</span>'),
        ]
    )
    message = f"<p>{esc(perf['message'])}</p>" if perf.get("message") else ""
    content = f'<div class="card"><figure>{chart}</figure>{message}{facts}</div>'
    return _section("performance", "Performance", content)


def _quality(quality: Any) -> str:
    if not isinstance(quality, list):
        return _section("quality", "Data quality", _note("No data: quality checks did not run."))
    items = sorted(
        (as_dict(q) for q in quality),
        key=lambda q: SEVERITY_RANK.get(str(q.get("severity")).lower(), 3),
    )
    rows = "".join(
        f'<tr><td><span class="badge {severity_class(q.get("severity"))}">'
        f"{text_or_dash(q.get('severity'))}</span></td><td>{esc(q.get('column') or '(table)')}"
        f"</td><td><code>{esc(q.get('kind'))}</code></td><td>{esc(q.get('message'))}</td>"
        f"<td>{_numbers(q.get('numbers'))}</td></tr>"
        for q in items
    )
    head = "<tr><th>Severity</th><th>Column</th><th>Kind</th><th>Message</th><th>Numbers</th></tr>"
    content = f"<table>{head}{rows}</table>" if rows else _note("No data-quality findings.")
    return _section("quality", "Data quality", f'<div class="card">{content}</div>')


def _numbers(numbers: Any) -> str:
    pairs = sorted(as_dict(numbers).items())
    return "<br>".join(
        f"{esc(k)} = {esc(v) if isinstance(v, str) else fmt_num(v)}" for k, v in pairs
    )


def _history(check: Mapping[str, Any]) -> str:
    """Earlier checks (oldest first) and this one as the last point."""
    points = [as_dict(h) for h in as_list(check.get("history"))]
    health = as_dict(check.get("health"))
    drift = as_dict(check.get("data_drift"))
    points.append(
        {
            "checked_at": check.get("checked_at"),
            "health": health.get("score"),
            "performance": as_dict(check.get("performance")).get("value"),
            "drifted_share": drift.get("drifted_share"),
        }
    )
    metric = as_dict(check.get("performance")).get("metric")
    baseline = num(as_dict(check.get("performance")).get("baseline"))
    charts = [
        _trend(points, "health", "Health score", ""),
        _trend(
            points,
            "performance",
            f"Performance ({metric})" if metric else "Performance",
            "" if baseline is None else f" Baseline {fmt_num(baseline)}.",
        ),
        _trend(points, "drifted_share", "Share of drifted features", ""),
    ]
    return _section("history", "Over time", f'<div class="charts">{"".join(charts)}</div>')


def _trend(points: list[dict[str, Any]], key: str, label: str, note: str) -> str:
    known = [(p.get("checked_at"), num(p.get(key))) for p in points]
    series = [(stamp, v) for stamp, v in known if v is not None]
    if len(series) < 2:
        body = _note(f"Insufficient data: {len(series)} check(s) with a value, 2 needed.")
        return f'<figure class="card"><h3>{esc(label)}</h3>{body}</figure>'
    values = [v for _, v in series]
    every = max(1, -(-len(series) // MAX_TICKS))
    ticks = [
        (float(i), short_stamp(stamp)[:10])
        for i, (stamp, _) in enumerate(series)
        if i % every == 0 or i == len(series) - 1
    ]
    chart = line_chart(values, ticks, [], None, label)
    caption = f"{len(series)} checks, oldest first; latest {fmt_num(values[-1])}.{note}"
    return (
        f'<figure class="card wide"><h3>{esc(label)}</h3>{chart}'
        f"<figcaption>{caption}</figcaption></figure>"
    )
