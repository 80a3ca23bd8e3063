"""Live data quality against the reference statistics a version stores (every rule)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from workers.monitoring.live_quality import QualityFinding, live_quality
from workers.training.reference import reference_statistics


def training() -> pd.DataFrame:
    # amount 0..99 with 10% missing; city a/b/c/d (25 each); flag booleans.
    amount = np.arange(100.0)
    amount[:10] = np.nan
    return pd.DataFrame(
        {
            "amount": amount,
            "flag": np.arange(100) % 3 == 0,
            "city": np.tile(["a", "b", "c", "d"], 25),
        }
    )


def reference(top_categories: int = 50) -> dict[str, Any]:
    return reference_statistics(
        training(),
        ["amount", "flag"],
        ["city"],
        np.linspace(0, 1, 11),
        top_categories=top_categories,
    )


def window(rows: int = 100, **columns: Any) -> pd.DataFrame:
    """A clean window (values inside the training range, known categories), then overrides."""
    base = {
        "amount": np.linspace(10, 99, rows),
        "flag": np.arange(rows) % 2 == 0,
        "city": np.resize(["a", "b", "c", "d"], rows),
    }
    base.update(columns)
    return pd.DataFrame(base)


def only(findings: list[QualityFinding], kind: str) -> QualityFinding:
    matching = [f for f in findings if f.kind == kind]
    assert len(matching) == 1, findings
    return matching[0]


def test_a_clean_window_has_no_findings_and_extra_columns_are_ignored() -> None:
    assert live_quality(reference(), window(extra=np.zeros(100))) == []


def test_whole_reference_or_its_features_mapping() -> None:
    current = window().drop(columns="city")
    assert live_quality(reference(), current) == live_quality(reference()["features"], current)


def test_missing_feature_is_a_high_schema_break() -> None:
    findings = live_quality(reference(), window().drop(columns="city"))
    finding = only(findings, "schema_break")
    assert (finding.column, finding.severity) == ("city", "HIGH")
    assert findings == [finding]


def test_missing_jump_medium_then_high_when_all_missing() -> None:
    amount = np.linspace(10, 99, 100)
    amount[:21] = np.nan  # 21% missing against 10%: up 0.11 > 0.1
    finding = only(live_quality(reference(), window(amount=amount)), "missing_jump")
    assert finding.severity == "MEDIUM" and finding.column == "amount"
    assert finding.numbers == {
        "missing_share": pytest.approx(0.21),
        "reference_missing_share": pytest.approx(0.1),
    }
    amount[:21] = 50.0
    amount[:20] = np.nan  # up exactly 0.1: not more than missing_jump
    assert live_quality(reference(), window(amount=amount)) == []
    city = np.resize(np.array(["a", "b"], dtype=object), 100)
    city[:] = None
    everything = only(live_quality(reference(), window(city=city)), "missing_jump")
    assert everything.severity == "HIGH" and "no value at all" in everything.message


def test_infinities_count_as_missing_like_the_reference() -> None:
    amount = np.linspace(10, 99, 100)
    amount[:25] = np.inf
    findings = live_quality(reference(), window(amount=amount))
    assert only(findings, "missing_jump").numbers["missing_share"] == pytest.approx(0.25)
    assert not [f for f in findings if f.kind == "out_of_range"]


def test_new_categories_low_below_five_percent_medium_from_it() -> None:
    city = np.resize(np.array(["a", "b", "c", "d"], dtype=object), 100)
    city[:4] = "z"  # 4% of the values: LOW
    low = only(live_quality(reference(), window(city=city)), "new_categories")
    assert low.severity == "LOW" and low.numbers["share"] == pytest.approx(0.04)
    city[:5] = ["z", "z", "y", "x", "w"]  # 5%: MEDIUM; 4 categories, 3 named
    medium = only(live_quality(reference(), window(city=city)), "new_categories")
    assert medium.severity == "MEDIUM"
    assert (medium.numbers["count"], medium.numbers["categories"]) == (5, 4)
    assert medium.message.endswith("('z', 'w', 'x' and 1 more)")


def test_no_new_categories_finding_when_the_reference_kept_only_the_top() -> None:
    city = np.resize(np.array(["a", "b", "c", "d"], dtype=object), 100)
    city[:30] = "z"
    truncated = reference(top_categories=2)  # a, b listed; c, d folded into other_share
    assert live_quality(truncated, window(city=city)) == []


def test_out_of_range_low_and_medium_with_sides() -> None:
    # The reference range is [10, 99] (rows 0-9 were missing).
    amount = np.linspace(10, 99, 100)
    amount[0], amount[1] = -1.0, 150.0  # 2%: LOW
    low = only(live_quality(reference(), window(amount=amount)), "out_of_range")
    assert low.severity == "LOW"
    assert {k: low.numbers[k] for k in ("count", "below", "above", "min", "max")} == {
        "count": 2,
        "below": 1,
        "above": 1,
        "min": -1.0,
        "max": 150.0,
    }
    assert (low.numbers["reference_min"], low.numbers["reference_max"]) == (10.0, 99.0)
    amount[2:5] = 100.0  # 5 of 100: MEDIUM
    medium = only(live_quality(reference(), window(amount=amount)), "out_of_range")
    assert medium.severity == "MEDIUM" and medium.numbers["share"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("dtype", "missing"),
    [("int64", 0), ("int32", 0), ("float32", 4), ("Int64", 3), ("Float64", 4), ("object", 4)],
)
def test_out_of_range_counts_the_same_whatever_the_number_type(dtype: str, missing: int) -> None:
    # 3 below 10, 2 above 99; `missing` of the 60s missing (one of them +inf when it can be).
    values: list[object] = [5, 7, 9, 10, 50, 99, 100, 120, *([60] * 92)]
    gaps: list[object] = [np.inf, None, None, None] if missing == 4 else [None] * missing
    values[10 : 10 + missing] = gaps
    amount = pd.Series(values, dtype=dtype)
    found = only(live_quality(reference(), window(amount=amount)), "out_of_range")
    assert {k: found.numbers[k] for k in ("count", "below", "above", "min", "max")} == {
        "count": 5,
        "below": 3,
        "above": 2,
        "min": 5.0,
        "max": 120.0,
    }
    assert found.numbers["share"] == pytest.approx(5 / (100 - missing))


def test_text_in_a_numeric_feature_is_a_type_change_by_share() -> None:
    amount = np.linspace(10, 99, 100).astype(object)
    amount[:3] = "n/a"  # 3%: LOW
    assert only(live_quality(reference(), window(amount=amount)), "type_change").severity == "LOW"
    amount[:10] = "n/a"  # 10%: MEDIUM
    assert (
        only(live_quality(reference(), window(amount=amount)), "type_change").severity == "MEDIUM"
    )
    amount[:60] = "n/a"  # 60%: HIGH
    high = only(live_quality(reference(), window(amount=amount)), "type_change")
    assert high.severity == "HIGH" and high.numbers["not_number_share"] == pytest.approx(0.6)
    # numbers written as text are numbers; booleans are numbers as in the reference
    assert live_quality(reference(), window(amount=np.linspace(10, 99, 100).astype(str))) == []


def test_findings_are_worst_first_and_an_empty_window_gets_schema_findings_only() -> None:
    amount = np.linspace(10, 99, 100)
    amount[0] = 500.0
    findings = live_quality(reference(), window(amount=amount).drop(columns="city"))
    assert [(f.kind, f.severity) for f in findings] == [
        ("schema_break", "HIGH"),
        ("out_of_range", "LOW"),
    ]
    empty = window(rows=0).drop(columns="flag")
    assert [f.kind for f in live_quality(reference(), empty)] == ["schema_break"]
    assert findings[0].to_json()["numbers"] == {"rows": 100}
