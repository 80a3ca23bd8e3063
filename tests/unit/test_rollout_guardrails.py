"""Canary guardrails: each check ok, breached or not evaluated, with its numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from api_client.deployment_params import CanaryGuardrails
from workers.deployment.guardrails import GUARDRAIL_TAU, GuardrailCheck, check_guardrails
from workers.deployment.rollout_types import ArmWindow, MetricSample
from workers.deployment.sequential import SequentialState, msprt_update

CONFIG = CanaryGuardrails()  # accuracy, drop 0.01, alpha 0.05, error +2%, x1.5 & 25 ms, PSI 0.25
RNG = np.random.default_rng(11)
SCORES = RNG.beta(2, 5, 2000)


def arm(
    role: str,
    *,
    predictions: int = 1000,
    errors: int = 0,
    p95: float | None = 40.0,
    scores: np.ndarray = SCORES,
    metric: MetricSample | None = None,
) -> ArmWindow:
    return ArmWindow(
        role=role,
        version_id=1 if role == "champion" else 2,
        predictions=predictions,
        errors=errors,
        latency_p95_ms=p95,
        scores=scores,
        metric=metric if metric is not None else MetricSample(1000, 0.8, 0.16),
    )


def check(stable: ArmWindow, canary: ArmWindow, name: str) -> GuardrailCheck:
    report = check_guardrails(stable, canary, CONFIG, SequentialState())
    json.dumps([c.observed for c in report.checks], allow_nan=False)  # JSON-able
    return next(c for c in report.checks if c.name == name)


def test_all_ok_for_identical_arms() -> None:
    report = check_guardrails(arm("champion"), arm("canary"), CONFIG, SequentialState())
    assert [c.name for c in report.checks] == ["metric", "error_rate", "latency_p95", "score_psi"]
    assert [c.status for c in report.checks] == ["ok"] * 4
    assert report.breaches == ()
    assert report.metric_state.looks == 1


def test_metric_breached_when_confidently_worse() -> None:
    stable = arm("champion", metric=MetricSample(2000, 0.801, 0.801 * 0.199))
    canary = arm("canary", metric=MetricSample(2000, 0.702, 0.702 * 0.298))
    report = check_guardrails(stable, canary, CONFIG, SequentialState())
    metric = report.checks[0]
    assert metric.status == "breached" and report.breaches == (metric,)
    expected = msprt_update(
        stable.metric, canary.metric, alpha=0.05, tau=GUARDRAIL_TAU, previous=SequentialState()
    )
    assert metric.observed["ci_high"] == pytest.approx(expected.ci_high)
    assert expected.ci_high < -0.01
    assert metric.observed["effect"] == pytest.approx(-0.099)
    assert metric.threshold == 0.01
    assert metric.message.startswith("canary accuracy 0.702 vs stable 0.801: confidently worse")
    assert f"95% CS upper bound {expected.ci_high:+.3g}" in metric.message
    assert report.metric_state == expected.state


def test_metric_ok_when_the_drop_is_not_confident() -> None:
    # 0.5 points worse on 1000 each: the CS spans 0.
    stable = arm("champion", metric=MetricSample(1000, 0.800, 0.16))
    canary = arm("canary", metric=MetricSample(1000, 0.795, 0.163))
    metric = check(stable, canary, "metric")
    assert metric.status == "ok"
    assert metric.observed["ci_low"] < 0 < metric.observed["ci_high"]  # type: ignore[operator]
    assert "not confidently worse" in metric.message


def test_metric_lower_is_better_for_absolute_error() -> None:
    config = CanaryGuardrails(metric="absolute_error")
    # The canary's error is larger: worse, so its advantage is negative.
    stable = arm("champion", metric=MetricSample(2000, 1.0, 0.25))
    canary = arm("canary", metric=MetricSample(2000, 1.3, 0.25))
    report = check_guardrails(stable, canary, config, SequentialState())
    assert report.checks[0].status == "breached"
    assert report.checks[0].observed["effect"] == pytest.approx(-0.3)


def test_metric_not_evaluated_keeps_the_state() -> None:
    kept = SequentialState(0.3, -0.2, 0.1, 5)
    canary = arm("canary", metric=MetricSample(99, 0.5, 0.25))
    report = check_guardrails(arm("champion"), canary, CONFIG, kept)
    metric = report.checks[0]
    assert metric.status == "not_evaluated" and report.metric_state == kept
    assert metric.observed["canary_n"] == 99
    assert "canary 99 of 100" in metric.message


def test_metric_running_state_carries_over() -> None:
    previous = SequentialState(p_value=0.2, ci_low=-0.5, ci_high=-0.02, looks=3)
    report = check_guardrails(arm("champion"), arm("canary"), CONFIG, previous)
    metric = report.checks[0]
    # This look alone spans 0, but the running intersection keeps the earlier upper bound.
    assert metric.observed["ci_high"] == -0.02 and metric.status == "breached"
    assert report.metric_state.looks == 4


def test_metric_without_labelled_outcomes_has_json_numbers() -> None:
    empty = arm("canary", metric=MetricSample.empty())
    metric = check(arm("champion"), empty, "metric")
    assert metric.status == "not_evaluated"
    assert metric.observed["canary_mean"] is None


def test_error_rate() -> None:
    ok = check(arm("champion", errors=10), arm("canary", predictions=970, errors=30), "error_rate")
    # canary 30 / 1000 = 3.00%, stable 10 / 1010 = 0.99%: +2.01% > 2%
    assert ok.status == "breached"
    assert ok.observed["canary_error_rate"] == pytest.approx(0.03)
    assert ok.observed["increase"] == pytest.approx(0.03 - 10 / 1010)
    assert "canary error rate 3.00% vs stable 0.99%: increase +2.01% above" in ok.message
    fine = check(
        arm("champion", errors=10), arm("canary", predictions=980, errors=20), "error_rate"
    )
    assert fine.status == "ok" and "within the allowed 2.00%" in fine.message
    few = check(arm("champion"), arm("canary", predictions=60, errors=30), "error_rate")
    assert few.status == "not_evaluated" and few.observed["canary_attempted"] == 90
    assert "canary attempted 90 of 100 rows" in few.message


def test_latency_needs_both_the_ratio_and_the_slack() -> None:
    breached = check(arm("champion", p95=40.0), arm("canary", p95=70.0), "latency_p95")
    # 70 > 1.5 x 40 = 60 and 70 - 40 = 30 > 25 ms
    assert breached.status == "breached"
    assert breached.observed["ratio"] == pytest.approx(1.75)
    assert breached.observed["gap_ms"] == pytest.approx(30.0)
    assert "canary p95 70.0 ms vs stable 40.0 ms (x1.75, +30.0 ms): above" in breached.message
    # x3 but only 20 ms slower: within the slack.
    fast = check(arm("champion", p95=10.0), arm("canary", p95=30.0), "latency_p95")
    assert fast.status == "ok"
    # 30 ms slower but only x1.3.
    slow = check(arm("champion", p95=100.0), arm("canary", p95=130.0), "latency_p95")
    assert slow.status == "ok"


def test_latency_not_evaluated() -> None:
    none = check(arm("champion"), arm("canary", p95=None), "latency_p95")
    assert none.status == "not_evaluated" and none.observed["canary_p95_ms"] is None
    few = check(arm("champion"), arm("canary", predictions=50, p95=500.0), "latency_p95")
    assert few.status == "not_evaluated" and "canary 50 predictions of 100" in few.message


def test_score_psi() -> None:
    shifted = np.clip(SCORES + 0.2, 0, 1)
    breached = check(arm("champion"), arm("canary", scores=shifted), "score_psi")
    assert breached.status == "breached"
    assert breached.observed["psi"] > 0.25  # type: ignore[operator]
    assert breached.message.startswith(
        f"PSI of canary vs stable scores {breached.observed['psi']:.3f}"
    )
    same = check(arm("champion"), arm("canary", scores=RNG.beta(2, 5, 2000)), "score_psi")
    assert same.status == "ok" and same.observed["psi"] < 0.05  # type: ignore[operator]
    few = check(
        arm("champion"), arm("canary", scores=np.r_[SCORES[:80], [np.nan] * 50]), "score_psi"
    )
    assert few.status == "not_evaluated" and few.observed["canary_scores"] == 80
    # Above min_samples (100) but below PSI_MIN_SAMPLES (500): a shifted canary is not
    # judged on 300 scores, whose PSI is too noisy to tell from an equal one.
    short = check(arm("champion"), arm("canary", scores=shifted[:300]), "score_psi")
    assert short.status == "not_evaluated" and "of 500" in short.message
