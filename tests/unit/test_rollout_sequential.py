"""The always-valid mSPRT (Lambda, p, confidence sequence) and the A/B decision rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from workers.deployment.rollout_types import MetricSample
from workers.deployment.sequential import (
    ABDecision,
    SequentialState,
    ab_decision,
    effect_variance,
    msprt_update,
    tau_for,
)

# Control: n 100, mean 0.5, variance 0.25; challenger: n 100, mean 0.6, variance 0.24.
CONTROL = MetricSample(100, 0.5, 0.25)
CHALLENGER = MetricSample(100, 0.6, 0.24)
INITIAL = SequentialState()


def test_lambda_and_cs_by_hand() -> None:
    # V = 0.25/100 + 0.24/100 = 0.0049; tau = 0.1 so tau^2 = 0.01; theta = 0.1.
    # sqrt(V/(V+tau^2)) = sqrt(0.0049/0.0149) = sqrt(0.328859) = 0.573462
    # exponent = tau^2 theta^2 / (2 V (V+tau^2)) = 0.0001 / (2 * 0.0049 * 0.0149) = 0.684838
    # Lambda = 0.573462 * exp(0.684838) = 0.573462 * 1.983450 = 1.137434; p = 1/Lambda
    # CS radius = sqrt(0.0049 * 0.0149 / 0.01 * (2 ln 20 + ln(0.0149/0.0049)))
    #           = sqrt(0.007301 * (5.991465 + 1.112126)) = sqrt(0.0518633) = 0.227735
    result = msprt_update(CONTROL, CHALLENGER, alpha=0.05, tau=0.1, previous=INITIAL)
    assert result.effect == pytest.approx(0.1)
    assert result.e_value == pytest.approx(1.137434, abs=1e-6)
    assert result.p_value == pytest.approx(1 / 1.137434, abs=1e-6)
    assert result.ci_low == pytest.approx(0.1 - 0.227735, abs=1e-6)
    assert result.ci_high == pytest.approx(0.1 + 0.227735, abs=1e-6)
    assert (result.n_control, result.n_challenger) == (100, 100)
    assert result.state == SequentialState(result.p_value, result.ci_low, result.ci_high, 1)


def test_lower_is_better_flips_the_sign() -> None:
    result = msprt_update(
        CONTROL, CHALLENGER, alpha=0.05, tau=0.1, previous=INITIAL, higher_is_better=False
    )
    assert result.effect == pytest.approx(-0.1)
    assert result.e_value == pytest.approx(1.137434, abs=1e-6)  # symmetric in theta
    assert result.ci_high == pytest.approx(-0.1 + 0.227735, abs=1e-6)


def test_a_huge_tau_makes_lambda_small_and_the_cs_wider() -> None:
    # As tau -> inf the mixture spreads over implausible effects: Lambda -> sqrt(V)/tau *
    # exp(z^2/2), so it never reaches 1/alpha; the CS radius grows only like
    # sqrt(V (2 ln(1/alpha) + ln(tau^2/V))).
    v = effect_variance(CONTROL, CHALLENGER)
    z2 = 0.1**2 / v
    small = msprt_update(CONTROL, CHALLENGER, alpha=0.05, tau=1e3, previous=INITIAL)
    assert small.e_value == pytest.approx(math.sqrt(v) / 1e3 * math.exp(z2 / 2), rel=1e-4)
    radius = (small.ci_high - small.ci_low) / 2
    assert radius == pytest.approx(math.sqrt(v * (2 * math.log(20) + math.log(1e6 / v))))
    assert radius > 0.227735  # wider than with tau = 0.1


def test_z_statistic_is_welchs_t() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 2.0, 57), rng.normal(1.4, 0.7, 131)
    control, challenger = MetricSample.of(a), MetricSample.of(b)
    result = msprt_update(control, challenger, alpha=0.05, tau=0.5, previous=INITIAL)
    z = result.effect / math.sqrt(effect_variance(control, challenger))
    welch = stats.ttest_ind(b, a, equal_var=False).statistic
    assert z == pytest.approx(float(welch), abs=1e-9)


def test_p_value_is_a_running_minimum() -> None:
    strong = MetricSample(100, 0.8, 0.24)  # theta 0.3: Lambda 272.46
    first = msprt_update(CONTROL, strong, alpha=0.05, tau=0.1, previous=INITIAL)
    assert first.p_value == pytest.approx(1 / 272.4558, rel=1e-5)
    second = msprt_update(CONTROL, CHALLENGER, alpha=0.05, tau=0.1, previous=first.state)
    assert second.e_value == pytest.approx(1.137434, abs=1e-6)  # this look's Lambda
    assert second.p_value == first.p_value  # but p keeps its minimum
    assert second.state.looks == 2


def test_confidence_sequence_is_a_running_intersection() -> None:
    previous = SequentialState(p_value=0.5, ci_low=-0.2, ci_high=0.2, looks=3)
    result = msprt_update(CONTROL, CHALLENGER, alpha=0.05, tau=0.1, previous=previous)
    # This look alone: [0.1 - 0.227735, 0.1 + 0.227735] = [-0.127735, 0.327735].
    assert result.ci_low == pytest.approx(-0.127735, abs=1e-6)
    assert result.ci_high == 0.2
    assert result.state.ci_high == 0.2 and result.state.looks == 4


def test_an_empty_intersection_keeps_the_latest_interval() -> None:
    previous = SequentialState(p_value=0.01, ci_low=0.5, ci_high=0.6, looks=1)
    result = msprt_update(CONTROL, CHALLENGER, alpha=0.05, tau=0.1, previous=previous)
    assert result.ci_low == pytest.approx(-0.127735, abs=1e-6)
    assert result.ci_high == pytest.approx(0.327735, abs=1e-6)


def test_no_variance_is_no_information() -> None:
    constant_a, constant_b = MetricSample(50, 1.0, 0.0), MetricSample(50, 0.0, 0.0)
    result = msprt_update(constant_a, constant_b, alpha=0.05, tau=0.1, previous=INITIAL)
    assert result.e_value == 1.0 and result.p_value == 1.0
    assert (result.ci_low, result.ci_high) == (-math.inf, math.inf)
    assert result.state == SequentialState(1.0, None, None, 1)
    kept = SequentialState(0.2, -0.1, 0.3, 2)
    again = msprt_update(constant_a, constant_b, alpha=0.05, tau=0.1, previous=kept)
    assert (again.ci_low, again.ci_high, again.p_value) == (-0.1, 0.3, 0.2)
    empty = msprt_update(MetricSample.empty(), CHALLENGER, alpha=0.05, tau=0.1, previous=kept)
    assert math.isnan(empty.effect) and empty.e_value == 1.0 and empty.state.looks == 3


def test_overwhelming_evidence_does_not_overflow() -> None:
    big = MetricSample(10**6, 0.9, 0.09)
    result = msprt_update(
        MetricSample(10**6, 0.1, 0.09), big, alpha=0.05, tau=0.1, previous=INITIAL
    )
    assert result.e_value == math.inf and result.p_value == 0.0
    assert result.state.p_value == 0.0


@pytest.mark.parametrize("tau", [0.0, -1.0, math.inf, math.nan])
def test_tau_must_be_positive(tau: float) -> None:
    with pytest.raises(ValueError, match="tau"):
        msprt_update(CONTROL, CHALLENGER, alpha=0.05, tau=tau, previous=INITIAL)


def test_tau_for() -> None:
    assert tau_for(0.02, CONTROL, CHALLENGER) == 0.02
    # pooled sd = sqrt((99 * 0.25 + 99 * 0.24) / 198) = sqrt(0.245)
    assert tau_for(0.0, CONTROL, CHALLENGER) == pytest.approx(0.1 * math.sqrt(0.245))
    assert tau_for(0.0, MetricSample.empty(), MetricSample.empty()) > 0
    assert tau_for(0.0, MetricSample(5, 1.0, 0.0), MetricSample(5, 1.0, 0.0)) > 0


def test_state_json_round_trip() -> None:
    state = SequentialState(p_value=0.0123, ci_low=-0.5, ci_high=None, looks=7)
    stored = json.loads(json.dumps(state.to_json(), allow_nan=False))
    assert SequentialState.from_json(stored) == state
    assert SequentialState.from_json(None) == SequentialState()
    assert SequentialState.from_json({}) == SequentialState(1.0, None, None, 0)


def decide(
    control: MetricSample,
    challenger: MetricSample,
    *,
    elapsed_s: float = 10.0,
    min_effect: float = 0.01,
    min_samples: int = 1000,
    previous: SequentialState = INITIAL,
) -> ABDecision:
    return ab_decision(
        control,
        challenger,
        alpha=0.05,
        min_effect=min_effect,
        min_samples=min_samples,
        elapsed_s=elapsed_s,
        max_duration_s=100.0,
        previous=previous,
    )


def test_too_few_samples_extends_without_a_look() -> None:
    kept = SequentialState(0.3, -0.1, 0.2, 4)
    decision = decide(MetricSample(420, 0.1, 0.09), MetricSample(1200, 0.1, 0.09), previous=kept)
    assert decision.action == "extend" and decision.result is None
    assert decision.state == kept
    assert "champion 420 of 1000" in decision.reason
    assert "challenger 1200 of 1000" in decision.reason


def test_too_few_samples_at_max_duration_rejects() -> None:
    decision = decide(MetricSample(420, 0.1, 0.09), MetricSample(400, 0.1, 0.09), elapsed_s=100)
    assert decision.action == "reject" and decision.result is None
    assert "max duration" in decision.reason


def test_promote() -> None:
    # 10% vs 13% on 5000 each: V = 0.09/5000 + 0.1131/5000 = 4.062e-5, theta 0.03 (z 4.7)
    decision = decide(MetricSample(5000, 0.10, 0.09), MetricSample(5000, 0.13, 0.1131))
    assert decision.action == "promote"
    assert decision.result is not None and decision.result.p_value <= 0.05
    assert decision.state == decision.result.state and decision.state.looks == 1
    assert "challenger lift +0.03 [" in decision.reason and "promote" in decision.reason


def test_significant_but_below_min_effect_extends() -> None:
    # theta 0.03 with p <= 0.05, but below min effect 0.04 while the CS still reaches it.
    decision = decide(
        MetricSample(5000, 0.10, 0.09), MetricSample(5000, 0.13, 0.1131), min_effect=0.04
    )
    assert decision.result is not None and decision.result.p_value <= 0.05
    assert decision.result.ci_high > 0.04
    assert decision.action == "extend"


def test_significant_lift_that_cannot_reach_min_effect_rejects() -> None:
    # Same data, min effect 0.06: the CS upper bound (about 0.051) is below it.
    decision = decide(
        MetricSample(5000, 0.10, 0.09), MetricSample(5000, 0.13, 0.1131), min_effect=0.06
    )
    assert decision.result is not None and decision.result.p_value <= 0.05
    assert decision.result.ci_high < 0.06
    assert decision.action == "reject"


def test_reject_by_the_confidence_sequence() -> None:
    # Challenger 2 points worse on 10,000 each: the CS lies below +0.01.
    decision = decide(MetricSample(10_000, 0.12, 0.1056), MetricSample(10_000, 0.10, 0.09))
    assert decision.action == "reject"
    assert decision.result is not None and decision.result.ci_high < 0.01
    assert "CS upper bound below min effect" in decision.reason


def test_extend_then_reject_at_max_duration() -> None:
    control, challenger = MetricSample(2000, 0.10, 0.09), MetricSample(2000, 0.105, 0.094)
    decision = decide(control, challenger)
    assert decision.action == "extend" and decision.result is not None
    assert decision.state.looks == 1
    late = decide(control, challenger, elapsed_s=100.0, previous=decision.state)
    assert late.action == "reject" and "max duration" in late.reason
    assert late.state.looks == 2
