"""The whole assessment: scores move the right way, recommendations follow the findings,
and the same input gives the same report bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from workers.preprocessing.quality.assess import (
    AssessmentError,
    AssessOptions,
    assess,
    report_json,
)
from workers.preprocessing.quality.scores import freshness, timeliness

AS_OF = datetime(2024, 7, 1, tzinfo=UTC)
DIMENSIONS = ("completeness", "validity", "consistency", "uniqueness", "timeliness")


def clean_frame(rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(rows)],
            "amount": rng.gamma(4, 10, rows).round(2),
            "age": rng.integers(18, 80, rows),
            "channel": pd.Series(rng.choice(["web", "store", "phone"], rows), dtype="str"),
            "at": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(rows) * 7200, unit="s"),
        }
    )


def scores(frame: pd.DataFrame, **options: Any) -> dict[str, float]:
    report = assess(frame, AssessOptions(as_of=AS_OF, **options))
    result: dict[str, float] = report["scores"]
    return result


def test_a_clean_frame_scores_full_marks_but_for_timeliness() -> None:
    result = scores(clean_frame(), key_columns=["customer_id"])
    assert {k: result[k] for k in DIMENSIONS[:4]} == dict.fromkeys(DIMENSIONS[:4], 100.0)
    # Last event 1,999 x 2 h after 2024-01-01: 2024-06-15 14:00, 15.42 days before as_of;
    # 50 x (0.5 ** (15.42 / 30) + 1) = 85.0.
    assert result["timeliness"] == timeliness(15 + 10 / 24, 0.0, 30.0) == 85.0


def _changed(before: dict[str, float], after: dict[str, float]) -> set[str]:
    return {k for k in DIMENSIONS if after[k] != before[k]}


def test_missing_values_lower_completeness_only() -> None:
    base = clean_frame()
    frame = base.copy()
    frame.loc[::10, "age"] = np.nan  # 200 of 10,000 cells
    before, after = scores(base), scores(frame)
    assert _changed(before, after) == {"completeness"}
    assert after["completeness"] == 98.0
    assert after["overall"] < before["overall"]


def test_duplicates_lower_uniqueness_only() -> None:
    base = clean_frame()
    frame = pd.concat([base, base.iloc[:100]], ignore_index=True)  # 100 of 2,100 rows
    before, after = scores(base), scores(frame)
    assert _changed(before, after) == {"uniqueness"}
    assert after["uniqueness"] == round(100 * (1 - 100 / 2100), 1)


def test_invalid_values_lower_validity_only() -> None:
    base = clean_frame()
    frame = base.copy()
    frame.loc[:39, "amount"] = -frame.loc[:39, "amount"]  # 40 negative amounts of 2,000
    before, after = scores(base), scores(frame)
    assert _changed(before, after) == {"validity"}
    # Checked: `amount` (non-negative by name) and `at` (not after as_of): 40 of 4,000 cells.
    assert after["validity"] == 99.0


def test_inconsistent_spellings_lower_consistency_only() -> None:
    base = clean_frame()
    frame = base.copy()
    frame.loc[:99, "channel"] = " WEB"  # 100 of 10,000 cells
    before, after = scores(base), scores(frame)
    assert _changed(before, after) == {"consistency"}
    assert after["consistency"] == 99.0


def test_freshness_and_timeliness_formulas() -> None:
    assert freshness(30, 30) == 0.5
    assert freshness(-3, 30) == 1.0  # a future last event is invalid, not extra fresh
    assert timeliness(30, 0.0, 30) == 75.0  # 50 x (0.5 + 1)
    assert timeliness(0, 0.5, 30) == 75.0  # 50 x (1 + 0.5)


def test_same_input_same_report_bytes() -> None:
    frame = clean_frame()
    frame.loc[::7, "amount"] = np.nan
    first = report_json(assess(frame, AssessOptions(as_of=AS_OF)))
    second = report_json(assess(frame.copy(), AssessOptions(as_of=AS_OF)))
    assert first == second


def test_recommendations_follow_findings() -> None:
    rng = np.random.default_rng(1)
    rows = 5000
    age = rng.normal(45, 12, rows)
    income = 1000 * age + rng.normal(0, 3000, rows)
    income[rng.random(rows) < 0.23] = np.nan
    amount = rng.normal(100, 10, rows)
    amount[:20] = 50_000  # a far tail: 0.4%
    frame = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "amount": amount,
            "state": pd.Series(
                rng.choice(["NY", "ny ", "CA"], rows, p=[0.6, 0.1, 0.3]), dtype="str"
            ),
            "constant": 1,
        }
    )
    report = assess(frame, AssessOptions(as_of=AS_OF))
    by_action = {(r["column"], r["action"]): r for r in report["recommendations"]}
    income_rule = by_action[("income", "impute_iterative")]
    assert income_rule["text"].startswith("`income`: 23% missing, correlated with `age`")
    assert income_rule["clean"] == {"missing": {"columns": {"income": {"strategy": "iterative"}}}}
    cap = by_action[("amount", "cap_outliers")]
    assert cap["text"].startswith("`amount`: 0.4% beyond 3×IQR")
    assert cap["clean"] == {"outliers": {"cap": "iqr", "iqr_k": 3.0, "columns": ["amount"]}}
    assert ("state", "normalize_categories") in by_action
    assert ("constant", "drop_column") in by_action
    priorities = [r["priority"] for r in report["recommendations"]]
    assert priorities == sorted(priorities)


def test_an_empty_frame_and_unknown_columns_are_refused_with_codes() -> None:
    with pytest.raises(AssessmentError) as empty:
        assess(clean_frame().iloc[:0], AssessOptions(as_of=AS_OF))
    assert empty.value.code == "dataset_empty"
    with pytest.raises(AssessmentError) as unknown:
        assess(clean_frame(), AssessOptions(as_of=AS_OF, key_columns=["nope"]))
    assert unknown.value.code == "column_missing" and "'nope'" in str(unknown.value)
    with pytest.raises(AssessmentError) as not_time:
        assess(clean_frame(), AssessOptions(as_of=AS_OF, time_column="amount"))
    assert not_time.value.code == "column_type_mismatch"
    with pytest.raises(AssessmentError) as text_range:
        assess(clean_frame(), AssessOptions(as_of=AS_OF, ranges={"channel": (0, 1)}))
    assert text_range.value.code == "column_type_mismatch" and "channel" in str(text_range.value)


def test_an_all_missing_column_and_no_time_column_are_reported() -> None:
    frame = clean_frame().drop(columns=["at"])
    frame["empty"] = np.nan
    report = assess(frame, AssessOptions(as_of=AS_OF))
    empty = next(c for c in report["columns"] if c["name"] == "empty")
    assert empty["metrics"]["missing_share"] == 1.0 and empty["histogram"] is None
    assert report["time"] is None and report["scores"]["timeliness"] is None
    assert any(
        r["action"] == "drop_column" and r["column"] == "empty" for r in report["recommendations"]
    )


def test_a_numeric_column_missing_for_two_months_is_a_period_break() -> None:
    frame = clean_frame(2000)  # 2,000 x 2 h: 2024-01-01 .. 2024-06-15
    march_april = frame["at"].dt.month.isin([3, 4])
    frame.loc[march_april, "age"] = np.nan
    report = assess(frame, AssessOptions(as_of=AS_OF))
    age = next(c for c in report["columns"] if c["name"] == "age")
    assert [(b["start"], b["end"], b["value"]) for b in age["period_breaks"]] == [
        ("2024-03", "2024-04", "(missing)")
    ]


@pytest.mark.parametrize(
    ("name", "amount_like"),
    [
        ("dollar_value", True),
        ("number_of_cds", True),
        ("Amount", True),
        ("item_count", True),
        ("discount", False),
        ("account_id", False),
        ("valuer", False),
    ],
)
def test_amount_like_names_are_checked_for_negatives(name: str, amount_like: bool) -> None:
    frame = pd.DataFrame({name: [-1.0, 2.0, 3.0, 4.0]})
    report = assess(frame, AssessOptions(as_of=AS_OF))
    assert (name in report["config"]["non_negative"]) is amount_like
    negative = [f for f in report["findings"] if f["check"] == "negative_share"]
    assert bool(negative) is amount_like
    assert report["scores"]["validity"] == (75.0 if amount_like else 100.0)


def test_declaring_a_column_text_scores_nothing() -> None:
    base = clean_frame()
    report = assess(base, AssessOptions(as_of=AS_OF, declared_types={"channel": "string"}))
    assert report["scores"] == scores(base)


def test_a_missing_timestamp_is_advised_to_drop_its_rows() -> None:
    frame = clean_frame()
    frame["signup"] = frame["at"]
    frame.loc[::4, "signup"] = pd.NaT
    report = assess(frame, AssessOptions(as_of=AS_OF, time_column="at"))
    (advice,) = [r for r in report["recommendations"] if r["column"] == "signup"]
    assert advice["clean"] == {"missing": {"columns": {"signup": {"strategy": "drop"}}}}
