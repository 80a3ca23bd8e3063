"""Health score: each penalty by hand, caps, status boundaries and caps, reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workers.monitoring.health import Health, HealthInputs, HealthThresholds, health_score
from workers.monitoring.live_quality import QualityFinding

NOTHING = HealthInputs(
    performance_drop=None,
    performance_drifted=False,
    drifted_importance_share=None,
    prediction_psi=None,
    prediction_drifted=False,
    quality_findings=(),
    error_rate=None,
    latency_p95_ms=None,
    volume=None,
    usual_volume=None,
)


def finding(severity: str) -> QualityFinding:
    return QualityFinding("x", "schema_break", severity, f"`x`: a {severity} problem", {})  # type: ignore[arg-type]


def health(**changes: object) -> Health:
    return health_score(replace(NOTHING, **changes))


def test_nothing_measured_is_healthy_and_says_so() -> None:
    result = health()
    assert (result.score, result.status, result.reasons) == (100.0, "healthy", ())
    assert set(result.components.values()) == {0.0}
    assert result.not_measured == (
        "performance",
        "feature_drift",
        "prediction_drift",
        "errors",
        "latency",
        "volume",
    )


@pytest.mark.parametrize(
    ("changes", "component", "penalty"),
    [
        # ramp(x, t) = min(1, x / 2t): half the cap at the threshold, full cap at twice it
        ({"performance_drop": 0.03}, "performance", 40 * 0.03 / 0.10),  # 12
        ({"performance_drop": 0.05}, "performance", 20.0),
        ({"performance_drop": 0.25}, "performance", 40.0),
        ({"performance_drop": -0.1}, "performance", 0.0),  # better than the holdout
        ({"performance_drop": 0.02, "performance_drifted": True}, "performance", 20.0),
        ({"performance_drifted": True}, "performance", 20.0),
        ({"drifted_importance_share": 0.05}, "feature_drift", 25 * 0.05 / 0.2),  # 6.25
        ({"drifted_importance_share": 0.6}, "feature_drift", 25.0),
        ({"prediction_psi": 0.05}, "prediction_drift", 2.5),
        ({"prediction_psi": 0.05, "prediction_drifted": True}, "prediction_drift", 5.0),
        ({"prediction_psi": 0.3}, "prediction_drift", 10.0),
        ({"prediction_drifted": True}, "prediction_drift", 5.0),
        ({"quality_findings": [finding("LOW")]}, "quality", 1.0),
        (
            {"quality_findings": [finding("LOW"), finding("MEDIUM"), finding("HIGH")]},
            "quality",
            10.0,
        ),
        ({"quality_findings": [finding("HIGH")] * 3}, "quality", 15.0),  # 18, capped
        ({"quality_findings": [finding("CRITICAL")]}, "quality", 15.0),
        ({"error_rate": 0.05}, "errors", 20 * 0.05 / 0.2),  # 5
        ({"error_rate": 0.5}, "errors", 20.0),
        ({"latency_p95_ms": 7500.0}, "latency", 10 * 7500 / 10000),  # 7.5
        ({"volume": 300, "usual_volume": 1000.0}, "volume", 10 * 0.7 / 1.0),  # 70% lower: 7
        ({"volume": 2000, "usual_volume": 1000.0}, "volume", 0.0),  # a spike costs nothing
    ],
)
def test_each_penalty_by_hand(changes: dict, component: str, penalty: float) -> None:
    result = health(**changes)
    assert result.components[component] == pytest.approx(penalty)
    others = {k: v for k, v in result.components.items() if k != component}
    assert set(others.values()) == {0.0}
    assert result.score == pytest.approx(100 - penalty)
    assert component not in result.not_measured


def test_volume_without_a_usual_volume_is_not_measured() -> None:
    assert "volume" in health(volume=10, usual_volume=0.0).not_measured
    assert "volume" in health(volume=10, usual_volume=None).not_measured


def test_status_boundaries() -> None:
    assert health(performance_drop=0.05).score == 80.0  # -20
    assert health(performance_drop=0.05).status == "healthy"
    just_below = health(performance_drop=0.05, latency_p95_ms=500.0)  # -20 - 0.5
    assert (just_below.score, just_below.status) == (79.5, "degraded")
    fifty = health(performance_drop=0.1, error_rate=0.1)  # -40 - 10
    assert (fifty.score, fifty.status) == (50.0, "degraded")
    below = health(performance_drop=0.1, error_rate=0.1, latency_p95_ms=500.0)
    assert (below.score, below.status) == (49.5, "critical")


def test_everything_at_its_worst_clips_at_zero() -> None:
    result = health(
        performance_drop=1.0,
        performance_drifted=True,
        drifted_importance_share=1.0,
        prediction_psi=5.0,
        prediction_drifted=True,
        quality_findings=[finding("CRITICAL")],
        error_rate=1.0,
        latency_p95_ms=1e6,
        volume=0,
        usual_volume=100.0,
    )
    assert sum(result.components.values()) == 130.0
    assert (result.score, result.status) == (0.0, "critical")


def test_performance_drift_and_critical_findings_cap_the_status_at_degraded() -> None:
    drifted = health(performance_drop=0.02, performance_drifted=True)  # score 80
    assert (drifted.score, drifted.status) == (80.0, "degraded")
    critical = health(quality_findings=[finding("CRITICAL")])  # score 85
    assert (critical.score, critical.status) == (85.0, "degraded")
    assert "status at most degraded" in critical.reasons[0]
    # the cap never lifts a critical score
    worse = health(performance_drop=0.2, performance_drifted=True, error_rate=0.2)
    assert worse.status == "critical"


def test_reasons_are_the_three_largest_worst_first_ties_in_table_order() -> None:
    result = health(
        performance_drop=0.03,  # 12
        prediction_psi=0.1,  # 5
        error_rate=0.05,  # 5 (tie: prediction_drift comes first in the table)
        latency_p95_ms=2500.0,  # 2.5, fourth: left out
    )
    assert result.score == pytest.approx(75.5) and result.status == "degraded"
    assert result.reasons == (
        "performance 0.03 below the holdout baseline (tolerated 0.05): -12 points",
        "the prediction distribution shifted: PSI 0.1 (threshold 0.1): -5 points",
        "error rate 5.0% (threshold 10%): -5 points",
    )
    volume = health(volume=300, usual_volume=1000.0).reasons
    assert volume == ("volume 300 against a usual 1,000 (70% lower; threshold 50%): -7 points",)


def test_the_score_never_rises_when_an_input_gets_worse() -> None:
    base = replace(
        NOTHING,
        performance_drop=0.01,
        drifted_importance_share=0.01,
        prediction_psi=0.01,
        error_rate=0.01,
        latency_p95_ms=100.0,
        volume=900,
        usual_volume=1000.0,
    )
    previous = health_score(base).score
    for changes in (
        {"performance_drop": 0.04},
        {"performance_drifted": True},
        {"drifted_importance_share": 0.1},
        {"prediction_psi": 0.15},
        {"prediction_drifted": True},
        {"quality_findings": [finding("MEDIUM")]},
        {"error_rate": 0.12},
        {"latency_p95_ms": 6000.0},
        {"volume": 100},
    ):
        base = replace(base, **changes)
        score = health_score(base).score
        assert score <= previous
        previous = score


def test_custom_thresholds_and_validation() -> None:
    strict = HealthThresholds(error_rate=0.01)
    assert health_score(replace(NOTHING, error_rate=0.01), strict).components["errors"] == 10.0
    with pytest.raises(ValueError, match="error_rate"):
        HealthThresholds(error_rate=0)
    with pytest.raises(ValueError, match="volume_drop"):
        HealthThresholds(volume_drop=1.5)
    assert health().to_json()["status"] == "healthy"


@pytest.mark.parametrize(
    ("changes", "penalty"),
    [
        ({"error_rate": 0.2}, 20.0),  # twice the 10% threshold: the full cap, score 80
        ({"latency_p95_ms": 10_000.0}, 10.0),  # twice the 5 s budget
        ({"drifted_importance_share": 0.15}, 18.75),  # 25 * 0.15 / 0.2
    ],
)
def test_a_crossed_threshold_is_never_healthy(changes: dict[str, float], penalty: float) -> None:
    """The score alone would call these healthy (>= 80); the crossed threshold caps it."""
    result = health(**changes)
    assert result.score == pytest.approx(100 - penalty) and result.score >= 80
    assert result.status == "degraded"
    within = health(**{name: value / 4 for name, value in changes.items()})
    assert within.status == "healthy"


def test_low_findings_together_cost_at_most_three_points() -> None:
    many_low = health(quality_findings=[finding("LOW")] * 16 + [finding("MEDIUM")] * 3)
    assert many_low.components["quality"] == 3 + 3 * 3
    assert many_low.score == 88 and many_low.status == "healthy"


def test_a_penalty_under_half_a_point_is_not_a_reason() -> None:
    tiny = health(latency_p95_ms=100.0, prediction_psi=0.0004)  # 0.1 and 0.02 points
    assert tiny.score < 100 and tiny.reasons == ()
