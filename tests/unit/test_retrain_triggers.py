"""Which check findings start a retrain under a policy (hand-checked shares)."""

from __future__ import annotations

from typing import Any

import pytest

from api_client.retrain_params import RetrainPolicyConfig
from scheduler.retrain_triggers import check_triggers
from workers.monitoring.importance import drifted_importance_share

IMPORTANCES = [
    {"feature": "pdays", "mean": 0.05},
    {"feature": "poutcome", "mean": 0.03},
    {"feature": "age", "mean": 0.01},
    {"feature": "balance", "mean": 0.01},
]


def check(
    drifted: tuple[str, ...] = (),
    score: float | None = 90.0,
    performance: str = "ok",
    insufficient: tuple[str, ...] = (),
) -> dict[str, Any]:
    names = ["pdays", "poutcome", "age", "balance"]
    return {
        "health": {"score": score, "status": "healthy"},
        "performance": {
            "metric": "roc_auc",
            "value": 0.62,
            "baseline": 0.76,
            "drop": 0.14,
            "n": 3000,
            "status": performance,
        },
        "data_drift": {
            "features": [
                {
                    "name": n,
                    "drifted": n in drifted,
                    "status": "insufficient_data" if n in insufficient else "ok",
                }
                for n in names
            ]
        },
    }


def test_the_importance_share_of_drifted_features() -> None:
    # pdays + poutcome = 0.08 of 0.10 in total
    share, drifted = drifted_importance_share(
        check(("poutcome", "pdays"))["data_drift"], IMPORTANCES
    )
    assert share == pytest.approx(0.8, abs=1e-12) and drifted == ["pdays", "poutcome"]
    # without importances every feature counts alike: 1 of 4
    assert drifted_importance_share(check(("age",))["data_drift"], []) == (0.25, ["age"])
    # unmeasured features are out of the denominator: age of (pdays, poutcome, age) = 0.01/0.09
    share, _ = drifted_importance_share(
        check(("age",), insufficient=("balance",))["data_drift"], IMPORTANCES
    )
    assert abs(share - 0.01 / 0.09) < 1e-12  # type: ignore[operator]
    assert drifted_importance_share(None, IMPORTANCES) == (None, [])


def test_each_trigger_fires_on_its_finding_in_the_policy_order() -> None:
    policy = RetrainPolicyConfig()
    assert check_triggers(check(), policy, IMPORTANCES) == []
    # age alone carries 10% of the importance: below the 30% default
    assert check_triggers(check(("age",)), policy, IMPORTANCES) == []
    fired = check_triggers(
        check(("pdays",), score=35.0, performance="drifted"), policy, IMPORTANCES
    )
    assert [t.kind for t in fired] == ["performance_drop", "feature_drift", "health"]
    assert fired[0].reason == "roc_auc 0.620 vs holdout 0.760 (drop 0.140)"
    assert fired[1].numbers == {"importance_share": pytest.approx(0.5), "drifted": ["pdays"]}
    assert fired[2].reason == "health 35/100 below 40"


def test_a_policy_chooses_its_triggers_and_thresholds() -> None:
    policy = RetrainPolicyConfig(triggers=["health"], health_below=60)
    fired = check_triggers(check(("pdays",), score=55.0, performance="drifted"), policy)
    assert [t.kind for t in fired] == ["health"]
    # insufficient data or no score never fires
    quiet = check(score=None, performance="insufficient_data")
    assert check_triggers(quiet, RetrainPolicyConfig(), IMPORTANCES) == []
