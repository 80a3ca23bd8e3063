"""What a rollout decides on, from log rows with their joined outcomes: each arm's window
(its own version's rows only), the metric per row, the shadow comparison, and decision
sentences naming semantic versions. Hand-made rows, hand-checked numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workers.deployment.deployment_calls import _named_text
from workers.deployment.observations import arm_window, metric_per_row, metric_values
from workers.deployment.shadow_report import compare

T = pd.Timestamp("2026-01-01T00:00:00Z")


def rows(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "prediction_id": [f"p{i}" for i in range(n)],
        "routing_key": [f"c{i}" for i in range(n)],
        "arm": ["champion"] * n,
        "version_id": [1] * n,
        "score": [0.5] * n,
        "label": ["1"] * n,
        "latency_ms": [10.0] * n,
        "error": [None] * n,
        "predicted_at": [T] * n,
        "outcome_value": [np.nan] * n,
        "outcome_label": [None] * n,
    }
    return pd.DataFrame({**base, **columns})


def test_accuracy_compares_labels_or_a_numeric_outcome() -> None:
    frame = rows(
        label=["1", "0", "1", "yes", "1"],
        outcome_value=[1.0, 1.0, np.nan, np.nan, np.nan],
        outcome_label=[None, None, None, "yes", "no"],
    )
    # "1" vs 1.0: right; "0" vs 1.0: wrong; no outcome: NaN; "yes" vs "yes"; "1" vs "no".
    values = metric_per_row(frame, "accuracy")
    assert values[:2].tolist() == [1.0, 0.0] and math.isnan(values[2])
    assert values[3:].tolist() == [1.0, 0.0]
    assert metric_values(frame, "accuracy").tolist() == [1.0, 0.0, 1.0, 0.0]


def test_conversion_and_absolute_error() -> None:
    frame = rows(score=[0.2, 0.9, 0.4], outcome_value=[0.0, 1.0, np.nan])
    assert metric_values(frame, "conversion_rate").tolist() == [0.0, 1.0]
    assert metric_values(frame, "absolute_error") == pytest.approx([0.2, 0.1])
    with pytest.raises(ValueError, match="unknown metric"):
        metric_values(frame, "f1")


def test_an_arm_window_counts_its_own_version_and_its_errors() -> None:
    frame = rows(
        arm=["canary", "canary", "canary", "champion", "canary"],
        version_id=[2, 2, 2, 1, 9],  # the last: this role under another version
        score=[0.1, 0.3, np.nan, 0.5, 0.7],
        label=["0", "1", None, "1", "1"],
        latency_ms=[10.0, 30.0, 0.0, 5.0, 99.0],
        error=[None, None, "scoring_failed", None, None],
        outcome_value=[0.0, 0.0, 1.0, 1.0, 1.0],
    )
    window = arm_window(frame, "canary", 2, "accuracy")
    assert (window.predictions, window.errors) == (2, 1)
    assert window.error_rate == pytest.approx(1 / 3)
    assert window.latency_p95_ms == pytest.approx(10 + 0.95 * 20)  # numpy's linear p95
    assert window.scores.tolist() == [0.1, 0.3]
    # "0" vs 0: right, "1" vs 0: wrong.
    assert (window.metric.n, window.metric.mean) == (2, 0.5)
    assert window.metric.variance == pytest.approx(0.5)  # ddof=1 of [1, 0]
    empty = arm_window(frame, "challenger", 3, "accuracy")
    assert (empty.predictions, empty.latency_p95_ms, empty.metric.n) == (0, None, 0)


def test_the_shadow_is_compared_call_by_call() -> None:
    served = rows(
        label=["1", "0", "1", "1"],
        score=[0.9, 0.2, 0.6, 0.8],
        outcome_value=[1.0, 0.0, 0.0, np.nan],
    )
    shadow = rows(
        arm=["shadow"] * 4,
        version_id=[2] * 4,
        label=["1", "1", "0", "1"],
        score=[0.8, 0.6, 0.3, 0.7],
        outcome_value=[np.nan] * 4,  # the served row's outcome counts for both
    )
    report = compare(served, shadow, "accuracy")
    assert report["pairs"] == 4 and report["shadow_errors"] == 0
    assert report["agreement_rate"] == 0.5  # rows 0 and 3 agree
    assert report["score_correlation"] == pytest.approx(
        np.corrcoef([0.9, 0.2, 0.6, 0.8], [0.8, 0.6, 0.3, 0.7])[0, 1]
    )
    # Labelled rows 0-2: served right, right, wrong (2/3); shadow right, wrong, right (2/3).
    assert report["labelled_pairs"] == 3
    assert report["served_metric"] == pytest.approx(2 / 3)
    assert report["shadow_metric"] == pytest.approx(2 / 3)
    difference = report["metric_difference"]
    assert difference["shadow_minus_served"] == pytest.approx(0.0)
    # Paired differences [0, -1, +1]: sd 1, half-width 1.96 / sqrt(3).
    half = 1.959963984540054 / math.sqrt(3)
    assert difference["ci95"] == pytest.approx([-half, half])


def test_a_regression_shadow_has_no_label_agreement() -> None:
    served = rows(label=[None, None], score=[10.0, 20.0])
    shadow = rows(arm=["shadow"] * 2, label=[None, None], score=[11.0, 19.0])
    report = compare(served, shadow, "absolute_error")
    assert report["agreement_rate"] is None and report["score_correlation"] == pytest.approx(1.0)


def test_decision_sentences_name_semantic_versions() -> None:
    names = {3: "1.0.2", 12: "2.0.0"}
    text = "switched from version 3 to version 12; version 1.0.0 and version 7 stay"
    assert _named_text(text, names) == (
        "switched from version 1.0.2 to version 2.0.0; version 1.0.0 and version 7 stay"
    )
