"""One tick of an A/B test: the sequential decision on the arms' outcomes, with its numbers.

Pure: ``ab_tick`` decides; ``rollouts.py`` turns the decision into the rollout's next state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api_client.deployment_params import ABTestConfig
from workers.deployment.canary import arm_window
from workers.deployment.rollout_types import CHALLENGER, CHAMPION, MetricSample, Observations
from workers.deployment.sequential import ABDecision, SequentialState, ab_decision

_NUMBERS = ("effect", "ci_low", "ci_high", "p_value", "e_value")


@dataclass(frozen=True)
class ABTick:
    decision: ABDecision  # action "promote" | "reject" | "extend", reason, state to store
    details: dict[str, Any]  # the numbers (NaN/inf still in: the caller makes them JSON-able)


def sample_json(sample: MetricSample) -> dict[str, Any]:
    return {"n": sample.n, "mean": sample.mean, "variance": sample.variance}


def ab_tick(
    config: ABTestConfig,
    observations: Observations,
    *,
    champion_version_id: int | None,
    challenger_version_id: int | None,
    elapsed_s: float,
    previous: SequentialState,
) -> ABTick:
    """``ab_decision`` on the champion's and challenger's metric since the test started."""
    control = arm_window(observations.since_start, CHAMPION, champion_version_id).metric
    challenger = arm_window(observations.since_start, CHALLENGER, challenger_version_id).metric
    decision = ab_decision(
        control,
        challenger,
        alpha=config.alpha,
        min_effect=config.min_effect,
        min_samples=config.min_samples_per_arm,
        elapsed_s=elapsed_s,
        max_duration_s=config.max_duration_s,
        previous=previous,
        higher_is_better=config.higher_is_better,
    )
    result = decision.result
    details: dict[str, Any] = {
        "action": decision.action,
        "metric": config.metric,
        "higher_is_better": config.higher_is_better,
        **{name: getattr(result, name) if result is not None else None for name in _NUMBERS},
        "n_control": result.n_control if result is not None else control.n,
        "n_challenger": result.n_challenger if result is not None else challenger.n,
        "control": sample_json(control),
        "challenger": sample_json(challenger),
        "alpha": config.alpha,
        "min_effect": config.min_effect,
        "min_samples_per_arm": config.min_samples_per_arm,
        "elapsed_s": elapsed_s,
        "max_duration_s": config.max_duration_s,
    }
    return ABTick(decision, details)
