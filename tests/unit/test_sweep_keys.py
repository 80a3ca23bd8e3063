"""The monitoring sweep's idempotency keys: one check job per model per period of the
model's own interval, whichever sweep (or beat) asks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.sweeps import check_key

T = datetime(2026, 1, 1, tzinfo=UTC)  # 1,767,225,600 s after the epoch


def test_one_key_per_period_of_the_models_interval() -> None:
    # 900 s periods: 1,767,225,600 / 900 = 1,963,584 exactly.
    assert check_key("churn", 900, T) == "check_model:churn:900:1963584"
    assert check_key("churn", 900, T + timedelta(seconds=899)) == "check_model:churn:900:1963584"
    assert check_key("churn", 900, T + timedelta(seconds=900)) == "check_model:churn:900:1963585"


def test_a_longer_override_skips_the_sweeps_inside_its_period() -> None:
    """Sweeps every 15 minutes, the model checked hourly: four sweeps, one key."""
    sweeps = [T + timedelta(minutes=15 * i) for i in range(4)]
    assert len({check_key("churn", 3600, at) for at in sweeps}) == 1
    assert len({check_key("churn", 900, at) for at in sweeps}) == 4
