"""Recorded outcomes as the metrics want them (shared by checks and labelled-window training)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workers.monitoring.check_inputs import recorded_truth, truth_values


def joined(values: list[float | None], labels: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "outcome_value": pd.Series(values, dtype="float64"),
            "outcome_label": pd.Series(labels, dtype="object"),
        }
    )


def test_binary_numbers_and_labels_mixed() -> None:
    rows = joined([1.0, 0.0, None, None, None, 1.0], [None, None, "churned", "stayed", None, "x"])
    labelled, truth = recorded_truth(rows)
    assert labelled.tolist() == [True, True, True, True, False, True]
    # A value wins over a label; a label counts as 1 when it is the positive class.
    got = truth_values(truth, "binary", ["stayed", "churned"])
    assert got.tolist() == [1, 0, 1, 0, 1]
    assert got.dtype == np.int64


def test_binary_numbers_only_stay_numbers() -> None:
    labelled, truth = recorded_truth(joined([0.0, 1.0, None, 1.0], [None] * 4))
    assert truth.dtype == np.float64 and labelled.tolist() == [True, True, False, True]
    assert truth_values(truth, "binary", ["0", "1"]).tolist() == [0, 1, 1]


def test_binary_label_text_of_a_number_and_two_class_names() -> None:
    truth = pd.Series(["1", "0", "yes", "no", 2.0], dtype="object")
    assert truth_values(truth, "binary", ["no", "yes"]).tolist() == [1, 0, 1, 0, 0]


def test_regression_and_multiclass() -> None:
    truth = pd.Series([1.5, "2.25", None], dtype="object")
    assert np.allclose(truth_values(truth, "regression", []), [1.5, 2.25, np.nan], equal_nan=True)
    labels = truth_values(pd.Series(["a", 3]), "multiclass", ["a", "3"])
    assert labels.tolist() == ["a", "3"]
