"""A check's own drift decision thresholds: the params' bounds and defaults, the client
refusing bad ones before sending, and the check deciding with them."""

from __future__ import annotations

from dataclasses import asdict, fields
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from api_client import Client, InvalidRequest
from api_client.monitoring_params import CheckParams, DriftThresholdParams
from workers.monitoring.check_inputs import Current, Reference
from workers.monitoring.check_job import compute_check, drift_thresholds_of
from workers.monitoring.drift import DEFAULT_THRESHOLDS, DriftThresholds, data_drift

STRUCTURAL = {"max_levels", "min_rows", "psi_bins"}


def _check_params(**drift: Any) -> CheckParams:
    return CheckParams.model_validate({"model_name": "churn", "drift_thresholds": drift})


def test_defaults_are_those_of_the_drift_module() -> None:
    decisions = {f.name for f in fields(DriftThresholds)} - STRUCTURAL
    assert set(DriftThresholdParams.model_fields) == decisions
    defaults = DriftThresholdParams().model_dump()
    assert defaults == {name: getattr(DEFAULT_THRESHOLDS, name) for name in decisions}
    assert _check_params().drift_thresholds == DriftThresholdParams()
    assert drift_thresholds_of(_check_params()) == DEFAULT_THRESHOLDS


@pytest.mark.parametrize(
    ("drift", "fragment"),
    [
        ({"alpha": 0}, "alpha"),
        ({"alpha": 1}, "alpha"),
        ({"js": 1.5}, "js"),
        ({"wasserstein": -0.1}, "wasserstein"),
        ({"psi_moderate": 0.3}, "psi_major (0.25) is below psi_moderate (0.3)"),
        ({"psi_major": 0.05}, "psi_major (0.05) is below psi_moderate (0.1)"),
        ({"min_rows": 10}, "min_rows"),  # structural: not settable by a check
        ({"wasserstien": 0.2}, "wasserstien"),
    ],
)
def test_bad_thresholds_are_refused(drift: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _check_params(**drift)
    assert fragment in str(caught.value)


def test_the_client_refuses_bad_thresholds_before_sending() -> None:
    # Port 1 has no broker: an InvalidRequest proves nothing was sent.
    client = Client("redis://127.0.0.1:1/0")
    with pytest.raises(InvalidRequest, match="js"):
        client.check("churn", drift_thresholds={"js": 2})
    with pytest.raises(InvalidRequest, match="psi_major"):
        client.check("churn", drift_thresholds={"psi_moderate": 0.5, "psi_major": 0.3})


def test_a_check_sets_the_decision_thresholds_and_keeps_the_structural_ones() -> None:
    limits = drift_thresholds_of(_check_params(wasserstein=0.02, js=0.03, alpha=0.01))
    assert (limits.wasserstein, limits.js, limits.alpha) == (0.02, 0.03, 0.01)
    assert (limits.psi_moderate, limits.psi_major) == (0.1, 0.25)
    assert {name: getattr(limits, name) for name in STRUCTURAL} == {
        name: getattr(DEFAULT_THRESHOLDS, name) for name in STRUCTURAL
    }


def _small_shift(seed: int = 7, n: int = 10_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A 0.08 sigma shift: significant with 10,000 rows, but a normalised Wasserstein
    distance of about 0.06, below the default 0.1."""
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({"x": rng.normal(0.0, 1.0, n)})
    current = pd.DataFrame({"x": rng.normal(0.08, 1.0, n)})
    return reference, current


def test_a_lowered_wasserstein_flags_a_small_shift_the_default_does_not() -> None:
    reference, current = _small_shift()
    default = data_drift(reference, current)
    lowered = data_drift(
        reference, current, thresholds=drift_thresholds_of(_check_params(wasserstein=0.03))
    )
    (feature,) = default.features
    assert feature.p_adjusted is not None and feature.p_adjusted < 0.05
    assert feature.effect is not None and 0.03 < feature.effect < 0.1
    assert not default.drifted and lowered.drifted


def _compute(params: CheckParams) -> dict[str, Any]:
    """compute_check on the small shift, for features and scores alike, of a segmentation
    version (no outcome to judge, so no performance check)."""
    reference, current = _small_shift()
    version = SimpleNamespace(
        serving=SimpleNamespace(
            input_schema=[{"name": "x", "kind": "numeric"}], problem="clustering"
        ),
        row=SimpleNamespace(importances=[], metrics={}),
    )
    return compute_check(
        version,  # type: ignore[arg-type]
        Reference(reference, reference["x"].to_numpy(), {}),
        Current(current, current["x"].to_numpy(), "dataset", None, None),
        params,
        [],
        [],
    )


def test_compute_check_decides_with_the_checks_thresholds() -> None:
    default = _compute(_check_params())
    lowered = _compute(_check_params(wasserstein=0.03))
    assert default["data_drift"]["thresholds"] == asdict(DEFAULT_THRESHOLDS)
    assert lowered["data_drift"]["thresholds"]["wasserstein"] == 0.03
    assert not default["data_drift"]["drifted"] and lowered["data_drift"]["drifted"]
    # The score distribution is judged by the same thresholds.
    assert not default["prediction_drift"]["drifted"]
    assert lowered["prediction_drift"]["drifted"]
