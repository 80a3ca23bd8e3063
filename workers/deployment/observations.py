"""What each arm of a rollout did: its logged predictions and their joined outcomes, read
into ``Observations`` for the strategies (the only I/O of an evaluation besides storing
its decision)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from storage.outcomes import OutcomeRepository, join_outcomes
from storage.prediction_log import (
    ARM,
    ERROR,
    LABEL,
    LATENCY_MS,
    PREDICTED_AT,
    PREDICTION_ID,
    ROUTING_KEY,
    SCORE,
    VERSION_ID,
    PredictionLog,
)
from workers.deployment.rollout_types import (
    ArmWindow,
    MetricSample,
    Observations,
    Rollout,
)

LOG_COLUMNS = [PREDICTION_ID, ROUTING_KEY, ARM, VERSION_ID, SCORE, LABEL, LATENCY_MS, ERROR]
# Outcomes observed up to this long after the window's end still join (clock skew between
# the process that logged a prediction and the one that records its outcome).
_OUTCOME_SLACK = timedelta(minutes=5)


def read_arms(
    session: Session, log: PredictionLog, model_name: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """The window's log rows with outcome_value / outcome_label joined (NaN/None when no
    outcome has arrived)."""
    rows = log.read(session, model_name, start, end, columns=LOG_COLUMNS)
    outcomes = OutcomeRepository(session, log).window(model_name, start, end + _OUTCOME_SLACK)
    if rows.empty or outcomes.empty:
        return rows.assign(outcome_value=np.nan, outcome_label=None)
    return join_outcomes(rows, outcomes)


def metric_values(rows: pd.DataFrame, metric: str) -> np.ndarray:
    """One value per labelled row (rows without an outcome are left out)."""
    values = metric_per_row(rows, metric)
    return values[np.isfinite(values)]


def metric_per_row(rows: pd.DataFrame, metric: str) -> np.ndarray:
    """The metric's value of each row, NaN where its outcome has not arrived."""
    value = pd.to_numeric(rows["outcome_value"], errors="coerce").to_numpy(dtype=float)
    if metric in ("conversion_rate", "outcome_mean"):
        return value
    if metric == "absolute_error":
        return np.abs(rows[SCORE].to_numpy(dtype=float) - value)
    if metric == "accuracy":
        return _correct(rows)
    raise ValueError(f"unknown metric {metric!r}")


def _correct(rows: pd.DataFrame) -> np.ndarray:
    """1.0 where the predicted label equals the outcome: its label when recorded, else its
    value compared as a number (a 0/1 churn flag against the labels "0"/"1")."""
    predicted = rows[LABEL].astype("object")
    outcome_label = rows["outcome_label"].astype("object")
    value = pd.to_numeric(rows["outcome_value"], errors="coerce")
    by_label = outcome_label.notna() & predicted.notna()
    as_number = pd.to_numeric(predicted, errors="coerce")
    by_value = ~by_label & value.notna() & as_number.notna()
    correct = np.full(len(rows), np.nan)
    correct[by_label.to_numpy()] = (
        predicted[by_label].astype(str) == outcome_label[by_label].astype(str)
    ).to_numpy(dtype=float)
    correct[by_value.to_numpy()] = (as_number[by_value] == value[by_value]).to_numpy(dtype=float)
    return correct


def arm_window(rows: pd.DataFrame, role: str, version_id: int, metric: str) -> ArmWindow:
    """One arm's rows of the window: its role and version (rows an arm logged under
    another version, before this rollout, are not its own)."""
    mine = rows[(rows[ARM] == role) & (rows[VERSION_ID] == version_id)]
    failed = mine[ERROR].notna()
    served = mine[~failed]
    latency = served[LATENCY_MS].to_numpy(dtype=float)
    scores = served[SCORE].to_numpy(dtype=float)
    labelled = served[served["outcome_value"].notna() | served["outcome_label"].notna()]
    return ArmWindow(
        role=role,
        version_id=version_id,
        predictions=len(served),
        errors=int(failed.sum()),
        latency_p95_ms=float(np.percentile(latency, 95)) if len(latency) else None,
        scores=scores[np.isfinite(scores)],
        metric=MetricSample.of(metric_values(labelled, metric))
        if len(labelled)
        else MetricSample.empty(),
    )


def observe(
    session: Session, log: PredictionLog, rollout: Rollout, metric: str, now: datetime
) -> Observations:
    """Every arm since the rollout started, and since the current step started."""
    rows = read_arms(session, log, rollout.model_name, rollout.started_at, now)
    step_start = rollout.step_started_at or rollout.started_at
    step_rows = rows[pd.to_datetime(rows[PREDICTED_AT], utc=True) >= pd.Timestamp(step_start)]
    since_start, since_step = {}, {}
    for arm in rollout.arms:
        since_start[arm.role] = arm_window(rows, arm.role, arm.version_id, metric)
        since_step[arm.role] = arm_window(step_rows, arm.role, arm.version_id, metric)
    return Observations(since_start=since_start, since_step=since_step)
