"""Alerts and the retraining loop (docs/retraining.md): a model's retrain policy, manual
retrains, and the requests that list alerts and retrains."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from api_client.contract import CONTRACT_VERSION
from api_client.registry_params import Actor
from api_client.strict import DatasetName, StrictModel
from api_client.train_params import ModelName

# What can start a retrain: three findings of a check, the policy's schedule, a person.
CheckTrigger = Literal["performance_drop", "feature_drift", "health"]
CHECK_TRIGGERS: tuple[str, ...] = ("performance_drop", "feature_drift", "health")
TRIGGERS: tuple[str, ...] = (*CHECK_TRIGGERS, "schedule", "manual")
Level = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
DecisionMode = Literal["replace", "ab_test", "canary"]


def _all_check_triggers() -> list[CheckTrigger]:
    return ["performance_drop", "feature_drift", "health"]


class TrainingWindow(StrictModel):
    """What a retrain trains on: the model's labelled predictions of the last ``days``
    (the newest ``evaluation_share`` kept out to judge the challenger), or a named dataset."""

    days: float = Field(30.0, gt=0, le=3650, description="labelled predictions of the last N days")
    dataset: DatasetName | None = Field(
        None, description="train on the latest version of this registered dataset instead"
    )
    evaluation_share: float = Field(
        0.25, gt=0, le=0.9, description="newest share of the window, held out for the decision"
    )
    min_rows: int = Field(200, ge=10, description="labelled rows needed to retrain")


class DecisionPolicy(StrictModel):
    """How a retrained version (the challenger) is judged against the champion on recent
    labelled rows neither was trained on (workers/deployment/challenger.py)."""

    mode: DecisionMode = Field(
        "replace",
        description=(
            "replace: a significantly better challenger replaces the champion at once; "
            "ab_test / canary: it starts that rollout instead (config in rollout_config)"
        ),
    )
    min_improvement: float = Field(
        0.0,
        ge=0,
        description=(
            "the improvement's lower confidence bound must exceed this, in the metric's unit "
            "(ROC AUC or accuracy points; RMSE in the target's unit)"
        ),
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="one-sided level of the comparison")
    min_rows: int = Field(200, ge=20, description="labelled rows needed to decide")
    rollout_config: dict[str, Any] = Field(
        default_factory=dict, description="the ab_test or canary config (docs/deployments.md)"
    )


class RetrainPolicyConfig(StrictModel):
    """When a model is retrained and how the result is judged."""

    enabled: bool = True
    triggers: list[CheckTrigger] = Field(
        default_factory=_all_check_triggers,
        description="check findings that start a retrain",
    )
    health_below: float = Field(40.0, gt=0, le=100, description="health trigger: score below")
    drift_importance_share: float = Field(
        0.3,
        gt=0,
        le=1,
        description="feature_drift trigger: share of the importance on drifted features",
    )
    cooldown_s: float = Field(
        86400.0,
        ge=0,
        le=366 * 86400,
        description=(
            "after a retrain ends, check findings within this many seconds are recorded as "
            "skipped (a rejected challenger is not retried on every check)"
        ),
    )
    schedule_s: float | None = Field(
        None, ge=60, le=366 * 86400, description="also retrain every N seconds (604800: weekly)"
    )
    window: TrainingWindow = Field(default_factory=TrainingWindow)
    decision: DecisionPolicy = Field(default_factory=DecisionPolicy)
    n_trials: int | None = Field(
        None, ge=1, le=10_000, description="trials of the retrain's search (default: as trained)"
    )

    @field_validator("triggers")
    @classmethod
    def _distinct(cls, triggers: list[str]) -> list[str]:
        return list(dict.fromkeys(triggers))


class SetRetrainPolicyRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    policy: RetrainPolicyConfig | None = Field(None, description="None removes the policy")
    actor: Actor | None = None


class RetrainRequest(StrictModel):
    """A manual retrain: keyed, so a retried call starts one retrain."""

    contract: int = CONTRACT_VERSION
    model_name: ModelName
    reason: str = Field("manual retrain", min_length=1, max_length=500)
    key: str | None = Field(None, min_length=1, max_length=120, description="idempotency key")
    window: TrainingWindow | None = Field(None, description="default: the policy's window")
    actor: Actor | None = None


class RetrainsRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    limit: int = Field(50, ge=1, le=1000)


class AlertsRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName | None = None
    active_only: bool = Field(False, description="only the problems firing now")
    since: datetime | None = None
    min_level: Level = "LOW"
    limit: int = Field(100, ge=1, le=1000)
