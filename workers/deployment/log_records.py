"""The prediction log's rows for a scored batch: the core columns and the typed features."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from storage.prediction_log import new_prediction_ids
from workers.deployment.outputs import Outputs
from workers.deployment.serving import ServingVersion

FEATURE_PREFIX = "feature."


def log_records(
    version: ServingVersion,
    arms: Sequence[str],
    keys: Sequence[str],
    outputs: Outputs,
    features: pd.DataFrame,
    *,
    latency_ms: float,
    at: datetime,
    prediction_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per prediction; features keep their column types (the log is columnar, read
    by monitoring without parsing)."""
    n = len(keys)
    ids = list(prediction_ids) if prediction_ids is not None else new_prediction_ids(n, at)
    core = pd.DataFrame(
        {
            "prediction_id": pd.array(ids, dtype="string"),
            "model_name": pd.array([version.model_name] * n, dtype="string"),
            "version": pd.array([version.version] * n, dtype="string"),
            "version_id": np.full(n, version.id, dtype=np.int64),
            "arm": pd.array(list(arms), dtype="string"),
            "routing_key": pd.array(list(keys), dtype="string"),
            "score": np.asarray(outputs.score, dtype=float),
            "label": pd.array(list(outputs.label), dtype="string"),
            "latency_ms": np.full(n, latency_ms, dtype=float),
            "predicted_at": pd.Series([at] * n, dtype="datetime64[us, UTC]"),
        }
    )
    named = features.reset_index(drop=True).add_prefix(FEATURE_PREFIX)
    return pd.concat([core, named], axis=1)
