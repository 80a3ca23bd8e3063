"""Monitoring checks (docs/monitoring.md): a model's current window against its reference,
for data drift, prediction drift, performance, live data quality and a health score."""

from __future__ import annotations

from pydantic import Field, model_validator

from api_client.contract import CONTRACT_VERSION
from api_client.registry_params import AliasName
from api_client.strict import StrictModel
from api_client.train_params import ModelName

MAX_WINDOW_HOURS = 24 * 366
MAX_WINDOW_ROWS = 10_000_000


class HealthThresholdParams(StrictModel):
    """Where the health score starts to fall (docs/monitoring.md has the formula)."""

    accuracy_drop: float = Field(0.05, gt=0, le=1, description="metric drop vs the holdout")
    error_rate: float = Field(0.1, gt=0, le=1, description="share of rows failing to score")
    response_time_ms: float = Field(5000.0, gt=0, description="latency p95 budget")
    drift_score: float = Field(0.1, gt=0, le=1, description="importance share on drifted features")


class DriftThresholdParams(StrictModel):
    """When a feature (or the score) drifts; the defaults of
    ``workers.monitoring.drift.DriftThresholds`` (docs/monitoring.md, "Data drift")."""

    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of BH-adjusted p-values")
    wasserstein: float = Field(0.1, ge=0, description="least numeric effect: Wasserstein / scale")
    js: float = Field(0.1, ge=0, le=1, description="least categorical effect: JS distance")
    psi_moderate: float = Field(0.1, gt=0, description="PSI from which a shift is moderate")
    psi_major: float = Field(0.25, gt=0, description="PSI from which a shift is major")

    @model_validator(mode="after")
    def _ordered_psi_levels(self) -> DriftThresholdParams:
        if self.psi_major < self.psi_moderate:
            raise ValueError(
                f"psi_major ({self.psi_major:g}) is below psi_moderate ({self.psi_moderate:g}): "
                "give a psi_major at least as large as psi_moderate"
            )
        return self


class CheckParams(StrictModel):
    """check_model: one check of a model's current window. The window is the last
    ``window_hours`` of logged predictions (at most ``window_rows`` of the latest), or a
    registered dataset (``current_dataset_id``) scored by the version."""

    model_name: ModelName
    alias: AliasName = "champion"
    window_hours: float = Field(24.0, gt=0, le=MAX_WINDOW_HOURS)
    window_rows: int | None = Field(None, ge=1, le=MAX_WINDOW_ROWS)
    current_dataset_id: int | None = Field(None, ge=1)
    thresholds: HealthThresholdParams = Field(default_factory=HealthThresholdParams)
    drift_thresholds: DriftThresholdParams = Field(default_factory=DriftThresholdParams)

    @model_validator(mode="after")
    def _one_window(self) -> CheckParams:
        if self.current_dataset_id is not None and self.window_rows is not None:
            raise ValueError("window_rows bounds a logged window; a dataset is checked whole")
        return self


class CheckIntervalRequest(StrictModel):
    """How often the scheduler checks one deployed model (None: CIPML_DRIFT_CHECK_INTERVAL)."""

    contract: int = CONTRACT_VERSION
    model_name: ModelName
    seconds: float | None = Field(None, gt=0, le=7 * 86400)
