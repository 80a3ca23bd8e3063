"""The data-quality HTML page: self-contained, escaped, deterministic, robust, lean."""

from __future__ import annotations

import copy
import math
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from workers.preprocessing.quality.html import render_html

XSS = "<script>alert(1)</script>"
VOID_TAGS = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "area", "base", "source"}
COORD_ATTRS = ("x", "y", "width", "height", "x1", "x2", "y1", "y2", "cx", "cy", "r")


def _daily(days: int, start: date) -> dict[str, Any]:
    counts = [100 + (i * 37) % 50 for i in range(days)]
    return {"start": start.isoformat(), "counts": counts}


def full_report() -> dict[str, Any]:
    """Three columns of different kinds and a time section, as the assessment writes it."""
    daily = _daily(546, date(1997, 1, 1))
    for day in range(183, 186):  # the largest gap: 1997-07-03 .. 1997-07-05
        daily["counts"][day] = 0
    return {
        "report_version": 1,
        "dataset": {
            "id": 3,
            "name": "cdnow_transactions",
            "version": 1,
            "sha256": "ab12" + "0" * 60,
            "rows": 69659,
            "columns": 3,
        },
        "as_of": "1998-07-01T00:00:00+00:00",
        "scores": {
            "completeness": 99.2,
            "validity": 100.0,
            "consistency": 75.0,
            "uniqueness": 99.9,
            "timeliness": 42.0,
            "overall": 87.3,
        },
        "table": {
            "rows": 69659,
            "columns": 3,
            "missing_cells": 0,
            "missing_cell_share": 0.0,
            "duplicate_rows": 2,
            "duplicate_row_share": 0.00003,
            "duplicate_keys": 0,
            "duplicate_key_share": 0.0,
            "key_columns": [],
        },
        "columns": [
            {
                "name": "dollar_value",
                "kind": "numeric",
                "dtype": "float64",
                "metrics": {
                    "missing_share": 0.0,
                    "distinct_count": 3000,
                    "is_constant": False,
                    "skewness": 6.1,
                    "iqr_outlier_share": 0.05,
                    "out_of_range_share": None,
                    "type_conformance": 1.0,
                },
                "stats": {"min": 0.0, "median": 25.0, "max": 1554.6, "mean": 35.9, "std": 36.3},
                "histogram": {
                    "edges": [float(50 * i) for i in range(33)],
                    "counts": [500 // (i + 1) for i in range(32)],
                },
                "top_values": None,
                "other_count": 0,
                "spelling_groups": [],
                "period_breaks": [],
            },
            {
                "name": "state",
                "kind": "categorical",
                "dtype": "object",
                "metrics": {"missing_share": 0.12, "distinct_count": 4},
                "stats": {},
                "histogram": None,
                "top_values": [
                    {"value": "NY", "count": 10},
                    {"value": "CA", "count": 7},
                    {"value": "ny ", "count": 1},
                ],
                "other_count": 3,
                "spelling_groups": [
                    {
                        "key": "ny",
                        "variants": [{"value": "NY", "count": 10}, {"value": "ny ", "count": 1}],
                    }
                ],
                "period_breaks": [
                    {
                        "start": "2008-05",
                        "end": "2008-06",
                        "value": "unknown",
                        "share": 1.0,
                        "rows": 13000,
                        "elsewhere_share": 0.21,
                    }
                ],
            },
            {
                "name": "date",
                "kind": "timestamp",
                "dtype": "datetime64[ns, UTC]",
                "metrics": {"missing_share": 0.5},
                "stats": {},
                "histogram": {
                    "edges": [f"1997-{m:02d}-01T00:00:00+00:00" for m in range(1, 8)],
                    "counts": [10, 20, 30, 0, 50, 60],
                },
                "top_values": None,
                "other_count": 0,
            },
        ],
        "time": {
            "column": "date",
            "first": "1997-01-01T00:00:00+00:00",
            "last": "1998-06-30T00:00:00+00:00",
            "last_event_age_days": 1.0,
            "span_days": 545,
            "missing_day_share": 0.01,
            "largest_gap_days": 3,
            "largest_gap_start": "1997-07-03",
            "largest_gap_end": "1997-07-06",
            "daily": daily,
            "trend": {
                "slope_per_year": -0.8,
                "kendall_tau": -0.6,
                "p_value": 0.0001,
                "direction": "down",
            },
            "weekly_seasonality_strength": 0.31,
            "annual_seasonality_strength": None,
            "change_points": [
                {"date": "1997-04-01", "before_mean": 300.1, "after_mean": 80.2},
                {"date": "1998-01-01", "before_mean": 80.2, "after_mean": 120.0},
            ],
        },
        "findings": [
            {
                "check": "iqr_outlier_share",
                "column": "dollar_value",
                "severity": "low",
                "dimension": "validity",
                "message": "dollar_value: 5% outliers",
            },
            {
                "check": "missing_share",
                "column": "state",
                "severity": "high",
                "dimension": "completeness",
                "message": "`state`: 12% missing",
            },
        ],
        "recommendations": [
            {
                "column": "state",
                "action": "fix_spelling",
                "text": "merge `ny ` into `NY`",
                "priority": 2,
            },
            {
                "column": "state",
                "action": "impute_iterative",
                "text": "`state`: 12% missing, correlated with `dollar_value` (r=0.61)",
                "priority": 1,
            },
        ],
        "metric_definitions": {"missing_share": "share of rows where the value is missing"},
    }


def minimal_report() -> dict[str, Any]:
    """No time column, a null score, an entirely missing column, a near-empty column entry."""
    return {
        "report_version": 1,
        "dataset": {"name": "tiny", "version": 2, "sha256": None, "rows": 0, "columns": 2},
        "as_of": None,
        "scores": {"completeness": 0.0, "timeliness": None, "overall": 50.0},
        "table": None,
        "columns": [
            {
                "name": "empty",
                "kind": "numeric",
                "dtype": "float64",
                "metrics": {"missing_share": 1.0, "skewness": None, "is_constant": None},
                "stats": {},
                "histogram": None,
                "top_values": None,
                "other_count": 0,
                "spelling_groups": None,
                "period_breaks": None,
            },
            {"name": "bare", "kind": "categorical", "top_values": [], "histogram": {"counts": []}},
        ],
        "time": None,
        "findings": [],
        "recommendations": [],
    }


def wide_report(n_columns: int = 60, days: int = 3000) -> dict[str, Any]:
    """A 10,000-level categorical (top 20 + other_count), an XSS name, 60 columns, 3,000 days."""
    report = full_report()
    report["dataset"]["name"] = XSS
    many = {
        "name": XSS,
        "kind": "categorical",
        "dtype": "object",
        "metrics": {"missing_share": 0.3, "distinct_count": 10_000},
        "stats": {},
        "histogram": None,
        "top_values": [{"value": f"{XSS}{i}", "count": 1000 - i} for i in range(20)],
        "other_count": 50_000,
        "spelling_groups": [{"key": "x", "variants": [{"value": XSS, "count": 1}]}],
        "period_breaks": [],
    }
    base = report["columns"]
    columns = [many]
    for i in range(n_columns - 1):
        column = copy.deepcopy(base[i % len(base)])
        column["name"] = f"{column['name']}_{i}"
        column["metrics"]["missing_share"] = (i % 17) / 17
        columns.append(column)
    report["columns"] = columns
    report["time"]["daily"] = _daily(days, date(1990, 1, 1))
    report["time"]["change_points"] = [
        {"date": (date(1990, 1, 1) + timedelta(days=d)).isoformat()} for d in (10, 1500, 2999)
    ]
    report["findings"].append(
        {"check": XSS, "column": XSS, "severity": XSS, "dimension": XSS, "message": XSS}
    )
    report["recommendations"].append({"column": XSS, "action": XSS, "text": f"`{XSS}`"})
    return report


# --- helpers ---------------------------------------------------------------------------------


class _Balance(HTMLParser):
    """Every non-void start tag must be closed by the matching end tag, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]} at {self.getpos()}")
        else:
            self.stack.pop()


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, re.S)


def _card(page: str, index: int) -> str:
    match = re.search(rf'<article class="card col" id="col-{index}">.*?</article>', page, re.S)
    assert match, f"no card for column {index}"
    return match.group(0)


def _coordinates(svg: str) -> list[float]:
    root = ET.fromstring(svg)  # also proves the fragment is well-formed XML
    values = []
    for element in root.iter():
        for name in COORD_ATTRS:
            if name in element.attrib:
                values.append(float(element.attrib[name]))
        for pair in element.attrib.get("points", "").split():
            values.extend(float(v) for v in pair.split(","))
    return values


ALL = [full_report, minimal_report, wide_report]


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ALL)
def test_page_references_nothing_outside_itself(make: Any) -> None:
    page = render_html(make())
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:|//)""", page, re.I)
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(", page, re.I)
    assert page.startswith("<!DOCTYPE html>")


def test_data_strings_are_escaped() -> None:
    page = render_html(wide_report())
    assert XSS not in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in page  # backticks in text
    assert 'class="badge "' in page  # an unknown severity is text, not a CSS class


def test_header_scores_and_table_facts() -> None:
    page = render_html(full_report())
    assert "<h1>cdnow_transactions</h1>" in page
    assert "69,659 rows &times; 3 columns" in page
    assert ">ab1200000000</code>" in page and "1998-07-01T00:00:00+00:00" in page
    for name, value, cls in [
        ("overall", "87.3", "good"),
        ("consistency", "75.0", "warn"),
        ("timeliness", "42.0", "bad"),
        ("validity", "100.0", "good"),
    ]:
        assert (
            f'class="card score {cls}"><div class="n">{name}</div><div class="v">{value}<' in page
        )
    assert page.index(">overall<") < page.index(">completeness<")
    assert "2 (<0.01%)" in page  # duplicate rows with their share


def test_null_score_time_and_metrics_render_placeholders() -> None:
    page = render_html(minimal_report())
    assert '<div class="n">timeliness</div><div class="v">n/a</div>' in page
    assert "No time column" in page
    card = _card(page, 0)
    assert "No values to chart." in card and "<svg" not in card
    assert "<td>skewness</td><td class=num>—</td>" in card
    assert "<td>missing_share</td><td class=num>100.0%</td>" in card
    assert "No values to chart." in _card(page, 1)
    assert "No findings." in page


def test_recommendations_in_priority_order_with_code_spans() -> None:
    page = render_html(full_report())
    first = page.index("<code>state</code>: 12% missing, correlated with <code>dollar_value</code>")
    second = page.index("merge <code>ny </code> into <code>NY</code>")
    assert first < second
    assert '<span class="badge">P1</span>' in page
    section = page[page.index('id="findings"') :]
    assert section.index('<span class="badge high">high</span>') < section.index(
        '<span class="badge low">low</span>'
    )


def test_missing_values_chart_covers_all_columns_capped_at_40() -> None:
    page = render_html(full_report())
    assert page.count('class="ms"') == 3
    section = page[page.index('id="missing"') : page.index('id="time"')]
    # Worst first: date (50%), state (12%), dollar_value (0%).
    assert section.index(">date<") < section.index(">state<") < section.index(">dollar_value<")
    wide = render_html(wide_report())
    assert wide.count('class="ms"') == 40
    assert "20 more columns not shown." in wide


def test_histogram_has_one_bar_per_count() -> None:
    report = full_report()
    page = render_html(report)
    for index in (0, 2):  # numeric and timestamp
        counts = report["columns"][index]["histogram"]["counts"]
        assert _card(page, index).count('<rect class="hb"') == len(counts)
    assert "1997-01-01" in _card(page, 2) and "1997-07-01" in _card(page, 2)  # edge labels


def test_top_values_are_capped_with_an_other_bar() -> None:
    report = wide_report()
    report["columns"][0]["top_values"] *= 3  # more than the 20 promised: still capped
    card = _card(render_html(report), 0)
    assert card.count('<rect class="tb') == 21
    assert card.count('<rect class="tb other"') == 1
    assert "other (9,980 values)" in card
    small = _card(render_html(full_report()), 1)
    assert small.count('<rect class="tb') == 4  # 3 values + other
    assert "&quot;ny &quot;" in small  # a trailing blank stays visible


def test_time_section_marks_change_points_and_gap() -> None:
    report = full_report()
    page = render_html(report)
    section = page[page.index('id="time"') : page.index('id="columns"')]
    assert section.count('<line class="cp"') == len(report["time"]["change_points"])
    assert section.count('<rect class="gap"') == 1
    assert "↓ down" in section and "p &lt;0.001" in section
    assert "Events per day, 1997-01-01 to 1998-06-30 (546 days)" in section
    points = re.search(r'<polyline class="series" points="([^"]*)"', section)
    assert points and len(points.group(1).split()) == 546


def test_long_daily_series_is_downsampled() -> None:
    page = render_html(wide_report(days=3000))
    points = re.search(r'<polyline class="series" points="([^"]*)"', page)
    assert points
    assert len(points.group(1).split()) == math.ceil(3000 / 7) <= 1000
    assert "(3,000 days), as weekly sums (429 points; the last covers 4 days)" in page
    assert page.count('<line class="cp"') == 3
    huge = render_html(wide_report(n_columns=3, days=20_000))
    points = re.search(r'<polyline class="series" points="([^"]*)"', huge)
    assert points and len(points.group(1).split()) <= 1000


@pytest.mark.parametrize("make", ALL)
def test_rendering_is_deterministic(make: Any) -> None:
    report = make()
    assert render_html(report) == render_html(copy.deepcopy(report))


def test_non_finite_values_never_reach_svg_coordinates() -> None:
    report = full_report()
    nan, inf = float("nan"), float("inf")
    report["scores"]["overall"] = nan
    report["columns"][0]["histogram"]["counts"][3] = inf
    report["columns"][0]["histogram"]["edges"][0] = nan
    report["columns"][0]["stats"]["std"] = inf
    report["columns"][0]["metrics"]["skewness"] = nan
    report["columns"][1]["top_values"][0]["count"] = nan
    report["columns"][1]["metrics"]["missing_share"] = inf
    report["time"]["daily"]["counts"][5] = None
    report["time"]["daily"]["counts"][6] = inf
    report["time"]["change_points"].append({"date": "not a date"})
    for make in (lambda: report, *ALL):
        page = render_html(make())
        for svg in _svgs(page):
            assert all(math.isfinite(v) for v in _coordinates(svg))
            assert not re.search(r'="[^"]*\b(?:nan|inf)', svg, re.I)
        assert not re.search(r">\s*-?(?:nan|inf)\b", page, re.I)


def test_markup_is_balanced(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(render_html(full_report()), encoding="utf-8")
    page = path.read_text(encoding="utf-8")
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    for tag in ("html", "head", "body", "main", "header", "footer"):
        assert parser.counts.get(tag) == 1, tag
    assert parser.counts["section"] == 6 and parser.counts["article"] == 3
    assert parser.counts["svg"] == len(_svgs(page)) == 5  # missing, daily, 3 column charts
    for svg in _svgs(page):
        ET.fromstring(svg)


@pytest.mark.parametrize(
    "report",
    [
        {},
        {"columns": None, "scores": None, "time": {}, "findings": None},
        {"columns": [{}, {"kind": "boolean", "top_values": [{"value": True, "count": 3}]}]},
        {"time": {"daily": {"start": "1997-01-01", "counts": []}, "trend": None}},
        {"time": {"daily": {"start": "1997-01-01", "counts": [4]}, "change_points": None}},
        {"time": {"daily": {"start": "garbage", "counts": [1, 2]}}},
        {"columns": [{"kind": "timestamp", "histogram": {"edges": None, "counts": [0, 0]}}]},
        {"findings": [{"severity": ["x"], "column": 0}, "junk"], "recommendations": ["junk"]},
        {"columns": [{"name": None, "metrics": [], "stats": "x", "top_values": [None, 3]}]},
    ],
)
def test_odd_reports_still_render(report: dict[str, Any]) -> None:
    page = render_html(report)
    parser = _Balance()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    for svg in _svgs(page):
        assert all(math.isfinite(v) for v in _coordinates(svg))


def test_metric_definitions_become_tooltips() -> None:
    page = render_html(full_report())
    assert '<td title="share of rows where the value is missing">missing_share</td>' in page


def test_sixty_column_page_stays_lean(tmp_path: Path) -> None:
    page = render_html(wide_report(n_columns=60, days=3000))
    path = tmp_path / "wide.html"
    path.write_text(page, encoding="utf-8")
    assert path.stat().st_size < 1_500_000
