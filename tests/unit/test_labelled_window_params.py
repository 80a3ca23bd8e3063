"""TrainParams says what to train on: a registered dataset, a labelled window, or both
once the worker resolved the window to a dataset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from api_client.train_params import TrainParams

BASE: dict[str, Any] = {"model_name": "churn", "model_type": "churn"}


def test_neither_a_dataset_nor_a_window_is_refused_saying_what_to_give() -> None:
    with pytest.raises(ValidationError, match=r"give dataset_id .* or labelled_window"):
        TrainParams.model_validate(BASE)


def test_a_window_alone_is_enough_and_is_unresolved_until_the_worker_sets_the_dataset() -> None:
    params = TrainParams.model_validate({**BASE, "labelled_window": {}})
    window = params.labelled_window
    assert window is not None and params.dataset_id is None
    assert (window.days, window.evaluation_share, window.min_rows) == (30.0, 0.25, 200)
    assert window.until is None and window.evaluation_dataset_id is None
    with pytest.raises(ValueError, match="not resolved"):
        _ = params.training_dataset_id


def test_both_is_a_resolved_window_and_survives_the_job_row() -> None:
    params = TrainParams.model_validate(
        {
            **BASE,
            "dataset_id": 7,
            "labelled_window": {
                "days": 14,
                "until": "2026-11-01T10:00:00+01:00",
                "evaluation_dataset_id": 8,
            },
        }
    )
    assert params.training_dataset_id == 7
    assert params.labelled_window is not None
    assert params.labelled_window.until == datetime(2026, 11, 1, 9, tzinfo=UTC)
    again = TrainParams.model_validate(params.model_dump(mode="json"))
    assert again == params


def test_a_dataset_alone_still_works() -> None:
    assert TrainParams.model_validate({**BASE, "dataset_id": 3}).training_dataset_id == 3


def test_a_window_without_a_zone_is_utc() -> None:
    window = {"until": datetime(2026, 1, 1, 12)}
    params = TrainParams.model_validate({**BASE, "labelled_window": window})
    assert params.labelled_window is not None
    until = params.labelled_window.until
    assert until is not None and until.utcoffset() == timedelta(0)
    assert until == datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "window",
    [{"days": 0}, {"evaluation_share": 0.95}, {"min_rows": 5}, {"evaluation_dataset_id": 0}],
)
def test_window_bounds(window: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TrainParams.model_validate({**BASE, "labelled_window": window})


def test_segmentation_has_no_outcomes_to_train_on() -> None:
    with pytest.raises(ValidationError, match="segmentation has no target"):
        TrainParams.model_validate(
            {"model_name": "seg", "model_type": "segmentation", "labelled_window": {}}
        )
