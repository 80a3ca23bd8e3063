"""Which findings of a stored check call for a retrain, under a model's retrain policy.

==================  ============================================================
trigger             fires when
==================  ============================================================
performance_drop    the check's performance is ``drifted``: the metric on the
                    window dropped by more than ``accuracy_drop`` below the
                    holdout baseline and the interval excludes no drop
feature_drift       the drifted features carry at least
                    ``drift_importance_share`` of the version's permutation
                    importance (every feature alike when it has none)
health              the health score is below ``health_below``
==================  ============================================================

A window without enough rows or labels never fires: its statuses are
``insufficient_data`` / ``no_data``, not drifted. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from api_client.retrain_params import RetrainPolicyConfig
from workers.monitoring.importance import drifted_importance_share


@dataclass(frozen=True)
class Trigger:
    kind: str
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


def check_triggers(
    check: Mapping[str, Any],
    policy: RetrainPolicyConfig,
    importances: Sequence[Mapping[str, Any]] = (),
) -> list[Trigger]:
    """The policy's triggers that the check fires, in the policy's order."""
    fired: dict[str, Trigger] = {}
    performance = check.get("performance") or {}
    if performance.get("status") == "drifted":
        fired["performance_drop"] = Trigger(
            "performance_drop",
            f"{performance.get('metric')} {_num(performance.get('value'))} vs holdout "
            f"{_num(performance.get('baseline'))} (drop {_num(performance.get('drop'))})",
            {k: performance.get(k) for k in ("metric", "value", "baseline", "drop", "n")},
        )
    share, drifted = drifted_importance_share(check.get("data_drift"), importances)
    if share is not None and share >= policy.drift_importance_share:
        fired["feature_drift"] = Trigger(
            "feature_drift",
            f"drifted features carry {share:.0%} of the importance "
            f"(>= {policy.drift_importance_share:.0%}): {', '.join(drifted[:5])}",
            {"importance_share": share, "drifted": drifted},
        )
    health = check.get("health") or {}
    score = health.get("score")
    if score is not None and float(score) < policy.health_below:
        fired["health"] = Trigger(
            "health",
            f"health {float(score):.0f}/100 below {policy.health_below:g}",
            {"score": float(score), "status": health.get("status")},
        )
    return [fired[kind] for kind in policy.triggers if kind in fired]


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"
