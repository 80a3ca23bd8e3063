"""What a registered model version tells its user (the train job's result)."""

from __future__ import annotations

from typing import Any

from storage.models import ModelVersion

TOP_FEATURES = 10


def version_summary(version: ModelVersion, *, deduplicated: bool = False) -> dict[str, Any]:
    metrics = {k: v for k, v in version.metrics.items() if k not in ("calibration", "confusion")}
    return {
        "model_version_id": version.id,
        "model_name": version.model_name,
        "version": version.version,
        "model_type": version.model_type,
        "family": version.family,
        "metrics": metrics,
        "cv": version.cv,
        "threshold": version.decision.get("threshold"),
        "params": version.params,
        "top_features": version.importances[:TOP_FEATURES],
        "study_name": version.study_name,
        "artifact_sha256": version.artifact_sha256,
        "input_schema": version.input_schema,
        "library_versions": version.library_versions,
        "training": version.training,
        "deduplicated": deduplicated,
    }
