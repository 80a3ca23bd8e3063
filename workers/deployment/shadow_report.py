"""How a shadow version compares with the version that served the same rows: agreement of
labels, correlation of scores, and, once outcomes arrive, the metric of each with the
paired difference."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from api_client.contract import ErrorCode
from api_client.deployment_params import ShadowConfig, ShadowReportRequest
from storage.db import transaction
from storage.deployments import DeploymentRepository
from storage.models import utcnow
from storage.prediction_log import ARM, ERROR, LABEL, PREDICTED_AT, ROUTING_KEY, SCORE, VERSION_ID
from workers.deployment.errors import ScoringError
from workers.deployment.observations import metric_per_row, read_arms
from workers.deployment.resolve import require_model
from workers.deployment.rollout_types import CHAMPION, SHADOW
from workers.deployment.services import ScoringServices

_Z95 = 1.959963984540054


def shadow_report(services: ScoringServices, request: ShadowReportRequest) -> dict[str, Any]:
    now = utcnow()
    services.log_buffer.flush()
    with transaction(services.sessions) as session:
        record = DeploymentRepository(session).get(request.model_name)
        if record is None or record.strategy != "shadow" or record.candidate_version_id is None:
            require_model(session, request.model_name)
            raise ScoringError(
                ErrorCode.DEPLOYMENT_NOT_FOUND,
                f"{request.model_name!r} has no shadow deployment; start one with "
                f"client.deploy({request.model_name!r}, version, strategy='shadow')",
            )
        rows = read_arms(session, services.log_store, record.model_name, record.started_at, now)
    metric = ShadowConfig.model_validate(record.config).metric
    shadow = rows[(rows[ARM] == SHADOW) & (rows[VERSION_ID] == record.candidate_version_id)]
    served = rows[rows[ARM] == CHAMPION]
    report = compare(served, shadow, metric)
    return {
        "model_name": record.model_name,
        "state": record.state,
        "since": record.started_at.isoformat(),
        "metric": metric,
        **report,
    }


def compare(served: pd.DataFrame, shadow: pd.DataFrame, metric: str) -> dict[str, Any]:
    """Pair each shadow row with the served row of the same call (same routing key and
    time) and compare them."""
    failed = int(shadow[ERROR].notna().sum())
    keys = [ROUTING_KEY, PREDICTED_AT]
    pairs = served[served[ERROR].isna()].merge(
        shadow[shadow[ERROR].isna()], on=keys, suffixes=("_served", "_shadow")
    )
    answer: dict[str, Any] = {
        "pairs": len(pairs),
        "shadow_errors": failed,
        "agreement_rate": None,
        "score_correlation": None,
        "labelled_pairs": 0,
        "served_metric": None,
        "shadow_metric": None,
        "metric_difference": None,
    }
    if pairs.empty:
        return answer
    labelled_both = pairs[f"{LABEL}_served"].notna() & pairs[f"{LABEL}_shadow"].notna()
    if labelled_both.any():  # regression versions have no labels: no agreement to measure
        both = pairs[labelled_both]
        same = both[f"{LABEL}_served"].astype(str) == both[f"{LABEL}_shadow"].astype(str)
        answer["agreement_rate"] = float(same.mean())
    answer["score_correlation"] = _correlation(
        pairs[f"{SCORE}_served"].to_numpy(float), pairs[f"{SCORE}_shadow"].to_numpy(float)
    )
    labelled = pairs[pairs["outcome_value_served"].notna() | pairs["outcome_label_served"].notna()]
    if labelled.empty:
        return answer
    mine = _side(labelled, "_served")
    theirs = _side(labelled, "_shadow").assign(
        outcome_value=mine["outcome_value"].to_numpy(),  # one outcome per call: the served row's
        outcome_label=mine["outcome_label"].to_numpy(),
    )
    served_values = metric_per_row(mine, metric)
    shadow_values = metric_per_row(theirs, metric)
    both = np.isfinite(served_values) & np.isfinite(shadow_values)
    served_values, shadow_values = served_values[both], shadow_values[both]
    n = len(served_values)
    if n == 0:
        return answer
    difference = shadow_values - served_values
    spread = float(difference.std(ddof=1)) if n > 1 else math.nan
    half = _Z95 * spread / math.sqrt(n) if n > 1 else math.nan
    mean = float(difference.mean())
    answer.update(
        labelled_pairs=n,
        served_metric=float(served_values.mean()),
        shadow_metric=float(shadow_values.mean()),
        metric_difference={
            "shadow_minus_served": mean,
            "ci95": [mean - half, mean + half] if math.isfinite(half) else None,
        },
    )
    return answer


def _side(pairs: pd.DataFrame, suffix: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            SCORE: pairs[f"{SCORE}{suffix}"].to_numpy(),
            LABEL: pairs[f"{LABEL}{suffix}"].to_numpy(),
            "outcome_value": pairs[f"outcome_value{suffix}"].to_numpy(),
            "outcome_label": pairs[f"outcome_label{suffix}"].to_numpy(),
        }
    )


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])
