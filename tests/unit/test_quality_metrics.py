"""Each named quality metric on a small frame with a hand-computed value (docs/quality.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workers.preprocessing.quality import metrics as m


def ordered(values: list[float]) -> np.ndarray:
    return np.sort(np.asarray(values, dtype=float))


def test_every_metric_has_a_definition() -> None:
    assert len(m.DEFINITIONS) >= 15
    assert all(text.strip() for text in m.DEFINITIONS.values())


def test_missing_share() -> None:
    # 2 of 4 values are missing.
    assert m.missing_share(pd.Series([1.0, None, 3.0, np.nan])) == 0.5


def test_placeholder_share_counts_disguised_missing_values() -> None:
    # 'unknown' (2 rows) and 'N/A ' (1 row) are placeholders; 'a' is not: 3 of 10 rows.
    counts = pd.Series({"unknown": 2, "a": 5, "N/A ": 1})
    assert m.placeholder_share(counts, rows=10) == pytest.approx(0.3)


def test_distinct_share_and_is_constant() -> None:
    values = ordered([1, 1, 2, 3, 3, 3])
    assert m.distinct_sorted(values) == 3
    assert m.distinct_share(3, values.size) == 0.5
    assert m.is_constant(m.distinct_sorted(ordered([7, 7, 7])))
    assert not m.is_constant(3)


def test_duplicate_row_share_with_and_without_a_probe() -> None:
    # Rows 2 and 4 repeat row 1: 2 duplicates of 4 rows.
    frame = pd.DataFrame({"a": [1, 1, 2, 1], "b": ["x", "x", "y", "x"]})
    assert m.duplicate_row_share(frame) == (2, 0.5)
    assert m.duplicate_row_share(frame, probe=["b"]) == (2, 0.5)
    # Equal in the probe column but not in the others: not a duplicate.
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "x", "x"]})
    assert m.duplicate_row_share(frame, probe=["b"]) == (0, 0.0)


def test_duplicate_key_share() -> None:
    # Key (id) 1 appears three times: the 2nd and 3rd repeat it -> 2 of 5.
    frame = pd.DataFrame({"id": [1, 1, 2, 1, 3], "v": [1, 2, 3, 4, 5]})
    assert m.duplicate_key_share(frame, ["id"]) == (2, 0.4)
    assert m.duplicate_key_share(frame, []) == (0, 0.0)


def test_numeric_conformance() -> None:
    # 3 of 4 non-missing values parse as numbers ('abc' does not).
    assert m.numeric_conformance(pd.Series(["1", "2.5", "abc", None, "4"])) == 0.75
    # As integers, 2.5 fails too: 1 and 3 of 3.
    assert m.numeric_conformance(pd.Series(["1", "2.5", "3"]), integer=True) == pytest.approx(2 / 3)


def test_timestamp_conformance() -> None:
    # Only the first parses: 'nope' and Feb 30 do not.
    values = pd.Series(["2024-01-01", "nope", "2024-02-30"])
    assert m.timestamp_conformance(values) == pytest.approx(1 / 3)


def test_boolean_conformance() -> None:
    assert m.boolean_conformance(pd.Series(["yes", "No", "1", "maybe"])) == 0.75


def test_out_of_range_count() -> None:
    # Declared [0, 10]: -1 and 11 are outside -> 2 of 5.
    values = ordered([-1, 0, 5, 10, 11])
    assert m.out_of_range_count(values, 0, 10) == 2
    assert m.out_of_range_count(values, None, 10) == 1
    assert m.out_of_range_count(values, None, None) == 0


def test_negative_share() -> None:
    assert m.negative_share(ordered([-2, -1, 0, 1])) == 0.5


def test_future_share() -> None:
    times = np.array(["2024-01-01", "2024-06-01", "2025-01-01"], dtype="datetime64[ns]")
    assert m.future_share(times, np.datetime64("2024-12-31")) == pytest.approx(1 / 3)


def test_mixed_type_share() -> None:
    # Numbers: '1' x3 + '2' x2 = 5 rows; words: 'abc' = 1 row; 'unknown' is a placeholder.
    # The minority (words, 1 row) of the 10 non-missing rows.
    counts = pd.Series({"1": 3, "2": 2, "abc": 1, "unknown": 4})
    assert m.mixed_type_share(counts) == pytest.approx(0.1)


def test_spelling_groups_and_inconsistent_spelling_share() -> None:
    # 'NY' x5 is the canonical spelling of 'ny'; 'ny ' x2 and ' Ny' x1 are off: 3 of 10.
    counts = pd.Series({"NY": 5, "ny ": 2, " Ny": 1, "LA": 2})
    groups = m.spelling_groups(counts)
    assert groups == [
        {
            "key": "ny",
            "variants": [
                {"value": "NY", "count": 5},
                {"value": "ny ", "count": 2},
                {"value": " Ny", "count": 1},
            ],
        }
    ]
    assert m.inconsistent_spelling_share(groups, 10) == pytest.approx(0.3)


def test_unit_outlier_share() -> None:
    # Positives 1..7 and 1000: Q3 (linear) at position 0.75 * 7 = 5.25 -> 6 + 0.25 = 6.25;
    # 100 x 6.25 = 625 < 1000 -> 1 of 8.
    assert m.unit_outlier_share(ordered([1, 2, 3, 4, 5, 6, 7, 1000])) == 0.125
    assert m.unit_outlier_share(ordered([-5, 0, 0])) == 0.0


def test_skewness_by_hand_and_against_scipy() -> None:
    # [0, 0, 0, 3]: mean 0.75, m2 = 1.6875, m3 = 2.53125, g1 = m3 / m2^1.5 = 2 / sqrt(3).
    assert m.skewness(ordered([0, 0, 0, 3])) == pytest.approx(2 / np.sqrt(3))
    sample = np.random.default_rng(1).lognormal(size=1000)
    assert m.skewness(sample) == pytest.approx(stats.skew(sample))
    assert m.skewness(ordered([5, 5, 5, 5])) is None


def test_iqr_outlier_share() -> None:
    # [1, 2, 3, 4, 100]: Q1 = 2, Q3 = 4, IQR = 2; 1.5 fences [-1, 7]; 3x fences [-4, 10].
    values = ordered([1, 2, 3, 4, 100])
    assert m.iqr_outlier_share(values, 2, 4) == 0.2
    assert m.iqr_outlier_share(values, 2, 4, k=3) == 0.2
    assert m.iqr_outlier_share(ordered([0, 0, 0, 1]), 0, 0) is None  # IQR 0: undefined


def test_robust_z_outlier_share() -> None:
    # [1, 2, 3, 4, 100]: median 3, |x - 3| = [2, 1, 0, 1, 97], MAD 1, scale 1.4826,
    # limit 3.5 * 1.4826 = 5.19: only 100 -> 1 of 5.
    assert m.robust_z_outlier_share(ordered([1, 2, 3, 4, 100]), 3.0) == 0.2
    # MAD 0: mean absolute deviation 96 / 6 = 16, scale 1.2533 * 16 = 20.05, limit 70.2.
    assert m.robust_z_outlier_share(ordered([5, 5, 5, 5, 6, 100]), 5.0) == pytest.approx(1 / 6)
    assert m.robust_z_outlier_share(ordered([5, 5, 5]), 5.0) == 0.0


@pytest.mark.parametrize("probs", [[0.0, 0.25, 0.5, 0.75, 1.0], [0.01, 0.99, 0.999]])
def test_sorted_quantiles_match_numpy(probs: list[float]) -> None:
    values = np.random.default_rng(2).normal(size=1001)
    assert m.sorted_quantiles(np.sort(values), probs) == pytest.approx(
        list(np.quantile(values, probs))
    )


def test_normalized_keys() -> None:
    keys = m.normalized_keys(pd.Index(["NY", "ny ", " N  y", "Ünï"]))
    assert list(keys) == ["ny", "ny", "n y", "ünï"]
