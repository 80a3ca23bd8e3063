"""The monitoring-check HTML page: structure, ordering, escaping, empty sections, determinism."""

from __future__ import annotations

import copy
import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest

from workers.monitoring.report_html import render_check_report

XSS = "<script>alert(1)</script>"
VOID_TAGS = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "area", "base", "source"}
COORD_ATTRS = ("x", "y", "width", "height", "x1", "x2", "y1", "y2", "cx", "cy", "r")


def _numeric(name: str, drifted: bool, edges: list[float], ref: list[float], cur: list[float]):
    return {
        "name": name,
        "kind": "numeric",
        "test": "ks",
        "statistic": 0.31 if drifted else 0.02,
        "p_value": 1e-30 if drifted else 0.64,
        "p_adjusted": 1e-29 if drifted else 1.0,
        "effect": 0.8 if drifted else 0.01,
        "effect_name": "wasserstein_norm",
        "psi": 0.6 if drifted else 0.01,
        "psi_level": "major" if drifted else "none",
        "drifted": drifted,
        "status": "drifted" if drifted else "stable",
        "n_reference": 10000,
        "n_current": 2000,
        "missing_reference": 0.0,
        "missing_current": 0.0,
        "unseen_categories": [],
        "missing_categories": [],
        "histogram": {"edges": edges, "reference": ref, "current": cur},
    }


def _categorical(name: str, drifted: bool, labels: list[str], ref: list[float], cur: list[float]):
    feature = _numeric(name, drifted, [], ref, cur)
    feature.update(
        kind="categorical",
        test="chi_square",
        statistic=412.0 if drifted else 3.1,
        effect_name="js_distance",
        histogram={"labels": labels, "reference": ref, "current": cur},
        unseen_categories=["new_channel"] if drifted else [],
    )
    return feature


def full_check() -> dict[str, Any]:
    """A degraded bank-marketing churn check: 2 of 5 features drifted (drifted listed first,
    as the check writes them), score drift, an AUC drop, one quality finding, 6 earlier checks."""
    features = [
        _numeric(
            "pdays",
            True,
            [-1.0, 0.0, 100.0, 200.0, 871.0],
            [0.8, 0.1, 0.05, 0.05],
            [0.5, 0.2, 0.2, 0.1],
        ),
        _categorical(
            "poutcome",
            True,
            ["unknown", "failure", "success", "other"],
            [0.82, 0.11, 0.03, 0.04],
            [0.6, 0.2, 0.12, 0.08],
        ),
        _numeric(
            "age",
            False,
            [18.0, 30.0, 40.0, 50.0, 60.0, 95.0],
            [0.15, 0.35, 0.25, 0.17, 0.08],
            [0.16, 0.34, 0.25, 0.17, 0.08],
        ),
        _categorical(
            "contact",
            False,
            ["cellular", "telephone", "unknown"],
            [0.65, 0.06, 0.29],
            [0.64, 0.07, 0.29],
        ),
        _numeric(
            "balance",
            False,
            [-float("inf"), 0.0, 500.0, 2000.0, float("inf")],
            [0.1, 0.4, 0.3, 0.2],
            [0.1, 0.41, 0.29, 0.2],
        ),
    ]
    score = _numeric(
        "score",
        True,
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        [0.55, 0.2, 0.12, 0.08, 0.05],
        [0.4, 0.22, 0.16, 0.12, 0.1],
    )
    history = [
        {
            "checked_at": f"2026-11-{21 + i:02d}T06:00:00+00:00",
            "health": 95.0 - 3 * i,
            "performance": 0.76 - 0.02 * i,
            "drifted_share": 0.1 * (i // 2),
        }
        for i in range(6)
    ]
    return {
        "model_name": "customer_churn",
        "version": "1.0.0",
        "check_id": "chk-2026-11-27-0600",
        "checked_at": "2026-11-27T06:00:00+00:00",
        "window": {
            "start": "2026-11-26T06:00:00+00:00",
            "end": "2026-11-27T06:00:00+00:00",
            "rows": 2000,
            "reference_rows": 10000,
            "source": "prediction_log",
        },
        "health": {
            "score": 72.5,
            "status": "degraded",
            "reasons": [
                "roc_auc fell from 0.76 to 0.61 (interval 0.57 – 0.65)",
                "2 of 5 features drifted: pdays, poutcome",
                "contact: missing share jumped from 0% to 12%",
            ],
            "components": {"performance": 10.0, "drift": 12.5, "quality": 5.0, "operations": 0.0},
        },
        "data_drift": {"drifted": True, "drifted_share": 0.4, "features": features},
        "prediction_drift": score,
        "performance": {
            "metric": "roc_auc",
            "baseline": 0.76,
            "value": 0.61,
            "drop": 0.15,
            "ci_low": 0.57,
            "ci_high": 0.65,
            "n": 812,
            "status": "drifted",
            "message": "roc_auc 0.61 is 0.15 below the baseline 0.76",
        },
        "quality": [
            {
                "column": "contact",
                "kind": "missing_jump",
                "severity": "HIGH",
                "message": "contact: missing share 12% (reference 0%)",
                "numbers": {"reference": 0.0, "current": 0.12},
            },
            {
                "column": "age",
                "kind": "out_of_range",
                "severity": "LOW",
                "message": "age: 0.2% above the reference maximum",
                "numbers": {"share": 0.002},
            },
        ],
        "operations": {
            "predictions": 2000,
            "error_rate": 0.0,
            "latency_p95_ms": 35.2,
            "usual_volume": 2100.0,
        },
        "history": history,
    }


def empty_check() -> dict[str, Any]:
    """A first check on a model with no traffic to speak of: nothing to compare yet."""
    check = full_check()
    check["data_drift"] = {"drifted": False, "drifted_share": None, "features": []}
    check["prediction_drift"] = None
    check["performance"] = None
    check["quality"] = []
    check["history"] = []
    check["health"] = {"score": None, "status": "unknown", "reasons": [], "components": {}}
    return check


def hostile_check() -> dict[str, Any]:
    check = full_check()
    check["model_name"] = XSS
    feature = check["data_drift"]["features"][0]
    feature["name"] = XSS
    feature["histogram"]["labels"] = [XSS]
    check["data_drift"]["features"][1]["histogram"]["labels"][0] = XSS
    check["health"]["reasons"].append(XSS)
    check["health"]["status"] = XSS
    check["quality"][0].update(column=XSS, message=XSS, severity=XSS, numbers={XSS: XSS})
    return check


# --- helpers ---------------------------------------------------------------------------------


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]} at {self.getpos()}")
        else:
            self.stack.pop()


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, re.S)


def _section(page: str, ident: str) -> str:
    match = re.search(rf'<section id="{ident}">.*?</section>', page, re.S)
    assert match, f"no section {ident}"
    return match.group(0)


def _coordinates(svg: str) -> list[float]:
    values = []
    for element in ET.fromstring(svg).iter():  # also proves the fragment is well-formed XML
        for name in COORD_ATTRS:
            if name in element.attrib:
                values.append(float(element.attrib[name]))
        for pair in element.attrib.get("points", "").split():
            values.extend(float(v) for v in pair.split(","))
    return values


ALL = [full_check, empty_check, hostile_check]


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ALL)
def test_page_is_self_contained_and_balanced(make: Any) -> None:
    page = render_check_report(make())
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:|//)""", page, re.I)
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(", page, re.I)
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    for svg in _svgs(page):
        coords = _coordinates(svg)
        assert coords and all(math.isfinite(v) for v in coords)


def test_title_and_health_header() -> None:
    page = render_check_report(full_check())
    assert (
        "<title>Monitoring check — customer_churn 1.0.0 — 2026-11-27T06:00:00+00:00</title>" in page
    )
    health = _section(page, "health")
    assert (
        '<div class="warn"><div class="big">72.5</div><div class="status">degraded</div>' in health
    )
    assert health.count("<li>") == 3 and "2 of 5 features drifted: pdays, poutcome" in health
    assert health.count('<rect class="tb"') == 4  # one bar per component
    assert "35.2 ms" in health and "2,100" in health


def test_drifted_features_come_first_in_table_and_charts() -> None:
    check = full_check()
    features = check["data_drift"]["features"]
    features.reverse()  # the page must not rely on the check's order
    page = render_check_report(check)
    table = _section(page, "drift")
    order = [table.index(f">{name}</a>") for name in ("pdays", "poutcome", "contact", "age")]
    assert order[:2] < order[2:] and max(order[:2]) < min(order[2:])
    assert table.count('<tr class="drifted">') == 2
    assert "2 of 5 features drifted" in table
    charts = _section(page, "features")
    names = [
        n.strip()
        for n in re.findall(r'<article class="card feat" id="feat-\d+"><h3>([^<]*)', charts)
    ]
    assert set(names[:2]) == {"pdays", "poutcome"} and len(names) == 5
    # A stable sort: among the stable features the check's (reversed) order is kept.
    assert names[2:] == ["balance", "contact", "age"]


def test_one_overlaid_histogram_per_feature() -> None:
    check = full_check()
    page = render_check_report(check)
    charts = _section(page, "features")
    cards = re.findall(r'<article class="card feat".*?</article>', charts, re.S)
    assert len(cards) == 5
    for card, feature in zip(cards, check["data_drift"]["features"], strict=True):
        assert len(_svgs(card)) == 1
        hist = feature["histogram"]
        bins = len(hist.get("labels") or hist["edges"][1:])
        assert card.count('<rect class="ref"') == bins == card.count('<rect class="cur"')
    pdays = cards[0]
    assert "[-1, 0): reference 80.0%, current 50.0%" in pdays  # tooltip per bin
    assert "[200, 871]: reference 5.0%, current 10.0%" in pdays  # the last bin is closed
    assert ">-∞</text>" in page and ">∞</text>" in page  # balance's open outer edges


def test_many_categories_are_capped() -> None:
    check = full_check()
    labels = [f"job_{i}" for i in range(50)]
    check["data_drift"]["features"][1]["histogram"] = {
        "labels": labels,
        "reference": [0.02] * 50,
        "current": [0.02] * 50,
    }
    card = re.findall(r'<article class="card feat".*?</article>', render_check_report(check), re.S)
    assert card[1].count('<rect class="ref"') == 30
    assert "20 more bins not shown." in card[1]


def test_prediction_performance_quality_and_history() -> None:
    page = render_check_report(full_check())
    prediction = _section(page, "prediction")
    assert len(_svgs(prediction)) == 1 and "Score distribution" in prediction
    perf = _section(page, "performance")
    assert '<line class="base"' in perf and '<circle class="pt"' in perf
    assert perf.count('<line class="ci"') == 3
    assert "0.57 – 0.65" in perf and "812" in perf
    quality = _section(page, "quality")
    assert quality.index('<span class="badge high">HIGH</span>') < quality.index(
        '<span class="badge low">LOW</span>'
    )
    history = _section(page, "history")
    series = re.findall(r'<polyline class="series" points="([^"]*)"', history)
    assert [len(s.split()) for s in series] == [7, 7, 7]  # 6 earlier checks + this one


def test_empty_sections_say_no_data_or_insufficient_data() -> None:
    page = render_check_report(empty_check())
    assert "No data: no features were compared." in _section(page, "drift")
    assert "No data" in _section(page, "features")
    assert "No data: no prediction scores" in _section(page, "prediction")
    assert "Insufficient data" in _section(page, "performance")
    assert "No data-quality findings." in _section(page, "quality")
    history = _section(page, "history")
    assert history.count("Insufficient data") == 3 and "<svg" not in history
    assert '<div class="na"><div class="big">n/a</div>' in page
    assert len(_svgs(page)) == 0


@pytest.mark.parametrize(
    "check",
    [
        {},
        {"data_drift": None, "health": None, "window": None, "operations": None, "quality": None},
        {"data_drift": {"features": [{}, {"histogram": {"edges": [1.0], "reference": None}}]}},
        {"data_drift": {"features": ["junk", {"histogram": {"labels": [None, 3]}}]}},
        {"prediction_drift": {"histogram": {"edges": [0, 1], "reference": [float("nan")]}}},
        {"performance": {"value": 0.7}, "history": [{"performance": "x"}, "junk"]},
        {"performance": {"value": 0.7, "baseline": 0.7, "ci_low": 0.7, "ci_high": 0.7}},
        {"quality": [{"severity": ["x"], "numbers": [1]}, "junk"]},
    ],
)
def test_odd_checks_still_render(check: dict[str, Any]) -> None:
    page = render_check_report(check)
    parser = _Balance()
    parser.feed(page)
    assert parser.errors == [] and parser.stack == []
    for svg in _svgs(page):
        assert all(math.isfinite(v) for v in _coordinates(svg))
    assert "Insufficient data" in page or "No data" in page


def test_missing_performance_value_is_insufficient_data_with_the_message() -> None:
    check = full_check()
    check["performance"] = {
        "metric": "roc_auc",
        "value": None,
        "n": 12,
        "message": "only 12 labels",
    }
    perf = _section(render_check_report(check), "performance")
    assert "Insufficient data" in perf and "only 12 labels" in perf and "<svg" not in perf


def test_everything_from_the_check_is_escaped() -> None:
    page = render_check_report(hostile_check())
    assert XSS not in page
    assert "<script" not in page.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<h1>{escaped}</h1>" in page
    assert f'<a href="#feat-0">{escaped}</a>' in page
    assert f'<div class="na"><div class="big">72.5</div><div class="status">{escaped}' in page
    assert 'class="badge "' in page  # an unknown severity is text, not a CSS class
    assert page.count(escaped) >= 8


@pytest.mark.parametrize("make", ALL)
def test_rendering_is_deterministic(make: Any) -> None:
    check = make()
    page = render_check_report(check)
    assert page == render_check_report(copy.deepcopy(check))
    assert check == make()  # the input is not modified
