"""The drift detector on the two real datasets of data/ (see data/README.md).

Bank marketing: the campaign changed over time (previous-campaign contacts appear from
August 2008, the success rate climbs from 6% in 2008H2 to 17% in 2009 and 52% in 2010),
so 2009 and 2010 drift from 2008H2. ``y01`` is checked as a categorical *feature* (the
outcome rate is the share of its level "1"; a chi-square on the 2 x 2 table), not as the
score: there is no model score in this dataset. ``duration`` is dropped (known only after
the call); ``y``, ``date`` and ``period`` are not features.

CDNOW: the dollar value of purchases, quarter against the next quarter.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workers.monitoring.drift import DataDrift, data_drift

DATA = Path(__file__).resolve().parents[2] / "data"
NOT_FEATURES = ("duration", "y", "date", "period")
KINDS = {"y01": "categorical"}


@pytest.fixture(scope="module")
def bank() -> pd.DataFrame:
    return pd.read_parquet(DATA / "bank_marketing_dated.parquet")


def features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=list(NOT_FEATURES))


def flagged(result: DataDrift) -> set[str]:
    return {f.name for f in result.features if f.drifted}


@pytest.mark.parametrize("period", ["P2_2009", "P3_2010"])
def test_bank_later_periods_drift_from_2008h2(bank: pd.DataFrame, period: str) -> None:
    reference = features(bank[bank["period"] == "P1_2008H2"])
    current = features(bank[bank["period"] == period])
    result = data_drift(reference, current, kinds=KINDS)
    assert result.drifted
    assert {"poutcome", "pdays", "previous", "y01"} <= flagged(result)
    by_name = {f.name: f for f in result.features}
    # pdays is -1 ("never contacted") for most rows: IQR 0, so the std scales it.
    assert by_name["pdays"].scale_name == "std"
    assert by_name["pdays"].psi_level == "major"
    assert "duration" not in by_name


def test_bank_random_halves_of_2008h2_do_not_drift(bank: pd.DataFrame) -> None:
    reference = features(bank[bank["period"] == "P1_2008H2"])
    order = np.random.default_rng(0).permutation(len(reference))
    half = len(order) // 2
    result = data_drift(reference.iloc[order[:half]], reference.iloc[order[half:]], kinds=KINDS)
    assert not result.drifted
    assert all(f.effect is not None and f.effect < 0.1 for f in result.features)


def test_bank_halves_of_2008h2_in_time_do_drift(bank: pd.DataFrame) -> None:
    # The halves in time really differ: in the first half (to 10 August 2008) poutcome is
    # all "unknown" (no earlier campaign yet), in the second it has failure/other/success;
    # balance, month and day move too. An honest detector flags them.
    period = bank[bank["period"] == "P1_2008H2"].sort_values("date", kind="stable")
    half = len(period) // 2
    first, second = period.iloc[:half], period.iloc[half:]
    assert set(first["poutcome"]) == {"unknown"}
    assert len(set(second["poutcome"])) > 1
    result = data_drift(features(first), features(second), kinds=KINDS)
    assert result.drifted
    assert {"poutcome", "month", "balance"} <= flagged(result)


def test_cdnow_quarterly_purchase_amounts_drift_little() -> None:
    # Quarter against the next quarter. 1997Q1 is the acquisition quarter (every customer's
    # first purchases), and against 1997Q2 it is flagged with a small effect (0.12); after
    # that no pair is flagged. No pair's effect reaches 0.15 or its PSI 0.1.
    frame = pd.read_parquet(DATA / "cdnow_transactions.parquet", columns=["date", "dollar_value"])
    quarter = frame["date"].dt.to_period("Q")
    quarters = sorted(quarter.unique())
    assert len(quarters) == 6
    for earlier, later in itertools.pairwise(quarters):
        result = data_drift(
            frame.loc[quarter == earlier, ["dollar_value"]],
            frame.loc[quarter == later, ["dollar_value"]],
        )
        feature = result.features[0]
        assert feature.effect is not None and feature.effect < 0.15, (earlier, later)
        assert feature.psi_level == "none", (earlier, later)
        assert feature.drifted == (str(earlier) == "1997Q1"), (earlier, later)
