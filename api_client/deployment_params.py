"""Requests of deployments and rollouts (docs/deployments.md).

A deployment belongs to one model name and holds arms (version, role, traffic weight). A
rollout strategy moves them: ``immediate``, ``blue_green``, ``canary``, ``ab_test`` or
``shadow``; the beat scheduler evaluates running rollouts on every tick. Every call is
answered at once (a reply, not a job).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from api_client.contract import CONTRACT_VERSION
from api_client.registry_params import Actor, SemVer
from api_client.strict import StrictModel
from api_client.train_params import ModelName

Strategy = Literal["immediate", "blue_green", "canary", "ab_test", "shadow"]
STRATEGIES: tuple[str, ...] = ("immediate", "blue_green", "canary", "ab_test", "shadow")
Role = Literal["champion", "challenger", "canary", "shadow"]

# What a rollout compares on labelled outcomes:
#   conversion_rate  mean of the outcome value (0/1 per prediction), higher is better
#   outcome_mean     mean of a numeric outcome value (e.g. revenue), higher is better
#   accuracy         share of predictions whose label equals the outcome, higher is better
#   absolute_error   |score - outcome value| (regression), lower is better
Metric = Literal["conversion_rate", "outcome_mean", "accuracy", "absolute_error"]
LOWER_IS_BETTER: frozenset[str] = frozenset({"absolute_error"})

WEIGHT_TOLERANCE = 1e-9


class ImmediateConfig(StrictModel):
    """The new version takes all traffic at once; the old one is kept for rollback()."""


class BlueGreenConfig(StrictModel):
    smoke_rows: int = Field(
        200, ge=1, le=10_000, description="rows of the version's training data scored first"
    )
    latency_budget_ms: float = Field(
        5000.0, gt=0, description="the smoke batch must score within this, in one call"
    )


class CanaryGuardrails(StrictModel):
    metric: Metric = Field("accuracy", description="compared when outcomes have arrived")
    max_metric_drop: float = Field(
        0.01, ge=0, description="roll back when the canary is confidently worse by more"
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="of the metric's sequential test")
    max_error_rate_increase: float = Field(0.02, ge=0, le=1)
    max_latency_ratio: float = Field(1.5, ge=1, description="canary p95 over stable p95")
    latency_slack_ms: float = Field(25.0, ge=0, description="p95 gap ignored below this")
    max_score_psi: float = Field(0.25, gt=0, description="PSI of canary vs stable scores")
    min_samples: int = Field(
        100, ge=10, description="predictions per arm before an operational guardrail counts"
    )


class CanaryConfig(StrictModel):
    steps: list[float] = Field(
        default_factory=lambda: [0.05, 0.25, 0.5, 1.0],
        min_length=1,
        max_length=20,
        description="the canary's traffic share at each step, strictly increasing in (0, 1]",
    )
    min_samples_per_step: int = Field(500, ge=1, description="canary predictions per step")
    min_step_duration_s: float = Field(600.0, ge=0)
    guardrails: CanaryGuardrails = Field(default_factory=CanaryGuardrails)

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[float]) -> list[float]:
        for share in steps:
            if not (math.isfinite(share) and 0 < share <= 1):
                raise ValueError(f"each step is a traffic share in (0, 1]; got {share}")
        if any(later <= earlier for earlier, later in itertools.pairwise(steps)):
            raise ValueError(f"steps must be strictly increasing; got {steps}")
        return steps


class ABTestConfig(StrictModel):
    traffic: dict[str, float] = Field(default_factory=lambda: {"champion": 0.5, "challenger": 0.5})
    metric: Metric = "conversion_rate"
    min_samples_per_arm: int = Field(
        1000, ge=100, description="outcomes per arm before any decision"
    )
    max_duration_s: float = Field(14 * 86400.0, gt=0, description="then the test rejects")
    alpha: float = Field(0.05, gt=0, lt=0.5)
    min_effect: float = Field(
        0.01, ge=0, description="smallest lift worth promoting, in the metric's units"
    )

    @field_validator("traffic")
    @classmethod
    def _split(cls, traffic: dict[str, float]) -> dict[str, float]:
        if set(traffic) != {"champion", "challenger"}:
            raise ValueError("traffic names both arms: {'champion': x, 'challenger': y}")
        for role, weight in traffic.items():
            if not (math.isfinite(weight) and 0 < weight < 1):
                raise ValueError(f"traffic of {role} must be in (0, 1); got {weight}")
        total = math.fsum(traffic.values())
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(f"traffic weights must sum to 1; they sum to {total!r}")
        return traffic

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER


class ShadowConfig(StrictModel):
    """The shadow version scores every routed row; its outputs are only logged."""

    metric: Metric = Field("accuracy", description="compared in shadow_report on outcomes")


CONFIG_MODELS: dict[str, type[StrictModel]] = {
    "immediate": ImmediateConfig,
    "blue_green": BlueGreenConfig,
    "canary": CanaryConfig,
    "ab_test": ABTestConfig,
    "shadow": ShadowConfig,
}


def validate_config(strategy: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """The strategy's config with its defaults filled in (ValueError when it is invalid)."""
    model = CONFIG_MODELS.get(strategy)
    if model is None:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return model.model_validate(config or {}).model_dump(mode="json")


class DeployRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    version: SemVer
    strategy: Strategy = "immediate"
    config: dict[str, Any] = Field(default_factory=dict)
    reason: str = Field("deployed", min_length=1, max_length=2000)
    actor: Actor | None = None
    expected_revision: int | None = Field(
        None, ge=0, description="refuse unless the deployment is at this revision (0: none)"
    )

    @field_validator("config")
    @classmethod
    def _config_fits_strategy(cls, config: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        strategy = info.data.get("strategy")
        return config if strategy is None else validate_config(strategy, config)


class RollbackRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    reason: str = Field("rolled back", min_length=1, max_length=2000)
    actor: Actor | None = None


class DeploymentRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
    events: int = Field(50, ge=0, le=10_000, description="the most recent decisions to list")


class EvaluateRequest(StrictModel):
    """Evaluate one rollout now, as a scheduler tick would (the demo and operators)."""

    contract: int = CONTRACT_VERSION
    model_name: ModelName
    tick: str | None = Field(
        None, min_length=1, max_length=64, description="the sweep's period key: decided once"
    )


class ShadowReportRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    model_name: ModelName
