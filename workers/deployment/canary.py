"""One tick of a canary: the guardrails first, then the step's samples and duration.

Pure: ``canary_tick`` decides on the observed windows; ``rollouts.py`` turns the decision
into the rollout's next state. Also the small text and window helpers the strategies share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from api_client.deployment_params import CanaryConfig
from workers.deployment.guardrails import GuardrailCheck, check_guardrails
from workers.deployment.rollout_types import CANARY, CHAMPION, ArmWindow, Observations
from workers.deployment.sequential import SequentialState

CanaryAction = Literal["rollback", "wait", "advance", "promote"]


@dataclass(frozen=True)
class CanaryTick:
    action: CanaryAction
    reason: str  # why, with the numbers (the caller names the versions)
    details: dict[str, Any]  # step, share, every guardrail check, counts, elapsed
    metric_state: SequentialState  # the guardrail metric's test state, to store


def percent(share: float) -> str:
    """0.05 -> '5%', 0.025 -> '2.5%'."""
    return f"{share * 100:.4g}%"


def duration_text(seconds: float) -> str:
    """Whole seconds below 2 minutes, whole minutes (rounded down) above."""
    if seconds < 120:
        return f"{math.floor(seconds):.0f} s"
    return f"{math.floor(seconds / 60):.0f} min"


def arm_window(windows: Mapping[str, ArmWindow], role: str, version_id: int | None) -> ArmWindow:
    """The role's window; an empty one (0 predictions, no metric) when it did not appear."""
    found = windows.get(role)
    if found is not None:
        return found
    return ArmWindow(role, version_id or 0, predictions=0, errors=0, latency_p95_ms=None)


def check_json(check: GuardrailCheck) -> dict[str, Any]:
    return {
        "name": check.name,
        "status": check.status,
        "observed": dict(check.observed),
        "threshold": check.threshold,
        "message": check.message,
    }


# Guardrails a step cannot pass without: the labelled metric waits for outcomes "when
# available", but these need only predictions (the score PSI only for models with scores).
OPERATIONAL = ("error_rate", "latency_p95", "score_psi")


def _unchecked(checks: Sequence[GuardrailCheck], *, has_scores: bool) -> list[GuardrailCheck]:
    return [
        check
        for check in checks
        if check.status == "not_evaluated"
        and check.name in OPERATIONAL
        and (has_scores or check.name != "score_psi")
    ]


def canary_tick(
    config: CanaryConfig,
    step: int,
    observations: Observations,
    *,
    stable_version_id: int | None,
    canary_version_id: int | None,
    step_elapsed_s: float,
    metric_state: SequentialState,
) -> CanaryTick:
    """Roll back on any breached guardrail (over ``since_start``); else move on once the
    step has ``min_samples_per_step`` canary predictions (``since_step``) and has lasted
    ``min_step_duration_s``: to the next step, or promote after the last; else wait."""
    share = config.steps[step]
    where = f"step {step + 1} of {len(config.steps)} ({percent(share)})"
    stable = arm_window(observations.since_start, CHAMPION, stable_version_id)
    canary = arm_window(observations.since_start, CANARY, canary_version_id)
    report = check_guardrails(stable, canary, config.guardrails, metric_state)
    details: dict[str, Any] = {
        "step": step,
        "share": share,
        "steps": list(config.steps),
        "checks": [check_json(check) for check in report.checks],
        "stable_predictions": stable.predictions,
        "canary_predictions": canary.predictions,
    }
    if report.breaches:
        details["breached"] = [check.name for check in report.breaches]
        why = "; ".join(f"{check.name}: {check.message}" for check in report.breaches)
        return CanaryTick("rollback", f"at {where}: {why}", details, report.metric_state)

    in_step = arm_window(observations.since_step, CANARY, canary_version_id)
    need_n, need_s = config.min_samples_per_step, config.min_step_duration_s
    details |= {"step_predictions": in_step.predictions, "step_elapsed_s": step_elapsed_s}
    if in_step.predictions < need_n or step_elapsed_s < need_s:
        reason = (
            f"{in_step.predictions} of {need_n} canary predictions at {percent(share)}; "
            f"{duration_text(step_elapsed_s)} of {duration_text(need_s)}"
        )
        return CanaryTick("wait", reason, details, report.metric_state)
    pending = _unchecked(report.checks, has_scores=bool(stable.scores.size or canary.scores.size))
    if pending:
        # Never promoted on missing data: every operational guardrail must have looked.
        reason = "guardrail data missing: " + "; ".join(c.message for c in pending)
        return CanaryTick("wait", reason, details, report.metric_state)
    done = (
        f"{in_step.predictions} canary predictions in {duration_text(step_elapsed_s)} at "
        f"{percent(share)}, all guardrails held"
    )
    if step == len(config.steps) - 1:
        return CanaryTick("promote", f"last step done ({done})", details, report.metric_state)
    next_share = config.steps[step + 1]
    details |= {"next_step": step + 1, "next_share": next_share}
    reason = f"{percent(share)} → {percent(next_share)} ({done})"
    return CanaryTick("advance", reason, details, report.metric_state)
