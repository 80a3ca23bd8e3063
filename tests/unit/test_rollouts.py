"""Rollout state machines (workers/deployment/rollouts.py) with injected time."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from workers.deployment import rollouts as r
from workers.deployment.rollout_types import (
    CANARY,
    CHALLENGER,
    CHAMPION,
    SHADOW,
    ArmSpec,
    ArmWindow,
    MetricSample,
    NoStableVersion,
    NothingToRollBack,
    Observations,
    Rollout,
    RolloutConflict,
    SmokeResult,
    Transition,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MODEL = "churn"
STABLE, NEW = 1, 2


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def checked(transition: Transition) -> Transition:
    """Every transition: routed weights sum to 1, details and memory are strict JSON."""
    rollout = transition.rollout
    routed = [arm for arm in rollout.arms if arm.role != SHADOW]
    assert math.isclose(math.fsum(arm.weight for arm in routed), 1.0, abs_tol=1e-9)
    assert all(arm.weight >= 0 for arm in rollout.arms)
    assert all(arm.weight == 0 for arm in r.shadow_arms(rollout.arms))
    json.dumps(transition.details, allow_nan=False)
    json.dumps(rollout.memory, allow_nan=False)
    json.dumps(rollout.config, allow_nan=False)
    assert rollout.state in r.STATES
    assert transition.kind in r.EVENT_KINDS
    assert transition.reason
    return transition


def live(version: int = STABLE, previous: int | None = None) -> Rollout:
    rollout = checked(r.start(MODEL, "immediate", {}, version, None, T0)).rollout
    return replace(rollout, previous_version_id=previous)


def begin(
    strategy: str, config: dict[str, Any] | None = None, current: Rollout | None = None
) -> Transition:
    current = current if current is not None else live()
    return checked(r.start(MODEL, strategy, config or {}, NEW, current, T0))


def arms(rollout: Rollout) -> list[tuple[str, int, float]]:
    return [(arm.role, arm.version_id, arm.weight) for arm in rollout.arms]


def sample(n: int, mean: float) -> MetricSample:
    """A 0/1 metric (accuracy, conversion) of n rows with the given mean."""
    return MetricSample(n, mean, mean * (1 - mean) * n / (n - 1) if n > 1 else 0.0)


def window(
    role: str,
    version: int,
    predictions: int,
    *,
    metric: MetricSample | None = None,
    errors: int = 0,
    latency: float | None = 40.0,
    scores: np.ndarray | None = None,
) -> ArmWindow:
    if scores is None:
        scores = np.linspace(0.01, 0.99, predictions)
    return ArmWindow(
        role,
        version,
        predictions=predictions,
        errors=errors,
        latency_p95_ms=latency if predictions else None,
        scores=scores,
        metric=metric or MetricSample.empty(),
    )


def canary_obs(
    stable_n: int,
    canary_n: int,
    *,
    step_n: int | None = None,
    stable_acc: float = 0.8,
    canary_acc: float = 0.8,
    **canary_kwargs: Any,
) -> Observations:
    stable = window(CHAMPION, STABLE, stable_n, metric=sample(stable_n, stable_acc))
    canary = window(CANARY, NEW, canary_n, metric=sample(canary_n, canary_acc), **canary_kwargs)
    step_n = canary_n if step_n is None else step_n
    in_step = window(CANARY, NEW, step_n, metric=sample(step_n, canary_acc))
    return Observations({CHAMPION: stable, CANARY: canary}, {CHAMPION: stable, CANARY: in_step})


def ab_obs(control: MetricSample, challenger: MetricSample) -> Observations:
    windows = {
        CHAMPION: window(CHAMPION, STABLE, control.n, metric=control),
        CHALLENGER: window(CHALLENGER, NEW, challenger.n, metric=challenger),
    }
    return Observations(windows, windows)


# ---------------------------------------------------------------------------- constants


def test_states_and_helpers() -> None:
    assert {r.VERIFYING, r.CANARY, r.TESTING, r.SHADOWING} == r.IN_PROGRESS
    assert r.LIVE == "live" and r.CANARY == "canary" and r.TESTING == "testing"
    assert not r.IN_PROGRESS & r.ENDED
    assert len(set(r.EVENT_KINDS)) == 15
    mixed = (ArmSpec(CHAMPION, 1, 0.0), ArmSpec(CANARY, 2, 1.0), ArmSpec(SHADOW, 3, 0.0))
    assert r.routed_arms(mixed) == [mixed[1]]
    assert r.shadow_arms(mixed) == [mixed[2]]
    assert r.jsonable({"a": float("nan"), "b": [np.float64(math.inf), np.int64(3)]}) == {
        "a": None,
        "b": [None, 3],
    }


# ---------------------------------------------------------------------------- start


def test_first_deploy_is_immediate() -> None:
    t = checked(r.start(MODEL, "immediate", {}, 7, None, T0))
    assert t.changed and t.kind == r.KIND_DEPLOYED
    rollout = t.rollout
    assert arms(rollout) == [(CHAMPION, 7, 1.0)]
    assert rollout.state == r.LIVE and rollout.strategy == "immediate"
    assert (rollout.stable_version_id, rollout.previous_version_id) == (7, None)
    assert rollout.candidate_version_id == 7
    assert rollout.started_at == T0 and rollout.memory == {} and rollout.config == {}
    assert "first deploy" in t.reason


@pytest.mark.parametrize("strategy", ["blue_green", "canary", "ab_test", "shadow"])
def test_first_deploy_needs_immediate(strategy: str) -> None:
    with pytest.raises(NoStableVersion, match="strategy 'immediate' first"):
        r.start(MODEL, strategy, {}, 7, None, T0)


def test_immediate_over_a_live_version_keeps_it_for_rollback() -> None:
    t = begin("immediate")
    assert t.kind == r.KIND_DEPLOYED and t.changed
    assert arms(t.rollout) == [(CHAMPION, NEW, 1.0)]
    assert (t.rollout.stable_version_id, t.rollout.previous_version_id) == (NEW, STABLE)
    assert t.details["previous_version_id"] == STABLE


@pytest.mark.parametrize("strategy", ["immediate", "blue_green", "canary", "ab_test", "shadow"])
def test_deploying_the_serving_version_again_changes_nothing(strategy: str) -> None:
    current = live()
    t = checked(r.start(MODEL, strategy, {}, STABLE, current, at(5)))
    assert t.kind == r.KIND_ALREADY_DEPLOYED and not t.changed
    assert t.rollout == current


def test_invalid_config_and_strategy_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        r.start(MODEL, "big_bang", {}, NEW, live(), T0)
    with pytest.raises(ValueError):
        r.start(MODEL, "canary", {"steps": [0.5, 0.25]}, NEW, live(), T0)
    with pytest.raises(ValueError, match="not 'other'"):
        r.start("other", "immediate", {}, NEW, live(), T0)


def test_start_fills_and_stores_the_validated_config() -> None:
    t = begin("canary", {"steps": [0.1, 1.0]})
    assert t.rollout.config["steps"] == [0.1, 1.0]
    assert t.rollout.config["min_samples_per_step"] == 500
    assert t.rollout.config["guardrails"]["metric"] == "accuracy"


@pytest.mark.parametrize("strategy", ["blue_green", "canary", "ab_test", "shadow"])
def test_a_redelivered_deploy_is_idempotent(strategy: str) -> None:
    first = begin(strategy).rollout
    again = checked(r.start(MODEL, strategy, {}, NEW, first, at(3)))
    assert again.kind == r.KIND_ALREADY_DEPLOYED and not again.changed
    assert again.rollout is first


@pytest.mark.parametrize(
    ("strategy", "version"),
    [("canary", 3), ("immediate", 3), ("ab_test", NEW), ("immediate", NEW)],
)
def test_another_deploy_during_a_rollout_conflicts(strategy: str, version: int) -> None:
    canary = begin("canary").rollout
    with pytest.raises(RolloutConflict) as caught:
        r.start(MODEL, strategy, {}, version, canary, at(1))
    message = str(caught.value)
    assert "canary rollout of version 2 in progress" in message
    assert "rollback()" in message and "wait" in message


def test_a_rollout_can_start_after_the_last_one_ended() -> None:
    ended = checked(r.rollback(begin("canary").rollout, at(1))).rollout
    assert ended.state == r.ROLLED_BACK
    again = checked(r.start(MODEL, "canary", {}, 3, ended, at(2)))
    assert again.kind == r.KIND_CANARY_STARTED
    assert arms(again.rollout) == [(CHAMPION, STABLE, 0.95), (CANARY, 3, 0.05)]
    assert again.rollout.started_at == at(2) and again.rollout.memory == {}


# ---------------------------------------------------------------------------- blue-green


def test_blue_green_verifies_then_switches() -> None:
    t = begin("blue_green", current=live(previous=0))
    rollout = t.rollout
    assert t.kind == r.KIND_VERIFYING
    assert rollout.state == r.VERIFYING and arms(rollout) == [(CHAMPION, STABLE, 1.0)]
    assert rollout.candidate_version_id == NEW and rollout.previous_version_id == 0

    waiting = checked(r.evaluate(rollout, None, at(1)))
    assert waiting.kind == r.KIND_WAITING and not waiting.changed
    assert waiting.rollout == rollout

    smoke = SmokeResult(ok=True, rows=200, errors=0, latency_ms=312.0, message="ok")
    switched = checked(r.evaluate(rollout, None, at(2), smoke))
    assert switched.kind == r.KIND_SWITCHED and switched.changed
    assert arms(switched.rollout) == [(CHAMPION, NEW, 1.0)]
    assert switched.rollout.state == r.LIVE
    assert switched.rollout.stable_version_id == NEW
    assert switched.rollout.previous_version_id == STABLE
    assert switched.details["rows"] == 200


def test_blue_green_smoke_failure_keeps_the_stable_version() -> None:
    rollout = begin("blue_green").rollout
    smoke = SmokeResult(ok=False, rows=200, errors=17, latency_ms=9100.0, message="ValueError")
    t = checked(r.evaluate(rollout, None, at(2), smoke))
    assert t.kind == r.KIND_VERIFICATION_FAILED and t.changed
    assert t.rollout.state == r.VERIFICATION_FAILED
    assert arms(t.rollout) == [(CHAMPION, STABLE, 1.0)]
    assert t.rollout.stable_version_id == STABLE
    assert t.details == {
        "ok": False,
        "rows": 200,
        "errors": 17,
        "latency_ms": 9100.0,
        "message": "ValueError",
    }
    assert "17 errors" in t.reason and "9100 ms" in t.reason
    assert checked(r.evaluate(t.rollout, None, at(3))).kind == r.KIND_NO_CHANGE


def test_blue_green_rollback_cancels_the_verification() -> None:
    rollout = begin("blue_green").rollout
    t = checked(r.rollback(rollout, at(1)))
    assert t.kind == r.KIND_ROLLED_BACK
    assert t.rollout.state == r.ROLLED_BACK and t.rollout.arms == rollout.arms
    assert t.details["from_version_id"] == NEW and t.details["to_version_id"] == STABLE


# ---------------------------------------------------------------------------- canary


def test_canary_starts_at_the_first_step() -> None:
    t = begin("canary")
    rollout = t.rollout
    assert t.kind == r.KIND_CANARY_STARTED
    assert arms(rollout) == [(CHAMPION, STABLE, 0.95), (CANARY, NEW, 0.05)]
    assert rollout.state == r.CANARY and rollout.step == 0
    assert rollout.step_started_at == T0 and rollout.started_at == T0
    assert rollout.candidate_version_id == NEW and rollout.stable_version_id == STABLE


def test_canary_waits_without_observations() -> None:
    rollout = begin("canary").rollout
    t = checked(r.evaluate(rollout, None, at(60)))
    assert t.kind == r.KIND_WAITING and not t.changed and t.rollout == rollout


def test_canary_waits_for_samples_and_says_what_is_missing() -> None:
    rollout = begin("canary").rollout
    t = checked(r.evaluate(rollout, canary_obs(4000, 312), at(4.5)))
    assert t.kind == r.KIND_WAITING and not t.changed
    assert "312 of 500 canary predictions at 5%; 4 min of 10 min" in t.reason
    assert t.rollout.arms == rollout.arms and t.rollout.step == 0
    assert t.details["step_predictions"] == 312
    assert {check["name"] for check in t.details["checks"]} == {
        "metric",
        "error_rate",
        "latency_p95",
        "score_psi",
    }


def test_canary_waits_for_the_step_duration() -> None:
    rollout = begin("canary").rollout
    t = checked(r.evaluate(rollout, canary_obs(9000, 800), at(4)))
    assert t.kind == r.KIND_WAITING
    assert "800 of 500 canary predictions at 5%; 4 min of 10 min" in t.reason


def test_canary_never_moves_on_missing_data() -> None:
    rollout = begin("canary").rollout
    empty = Observations({}, {})
    t = checked(r.evaluate(rollout, empty, at(600)))
    assert t.kind == r.KIND_WAITING and t.rollout.step == 0
    assert {check["status"] for check in t.details["checks"]} == {"not_evaluated"}
    assert "0 of 500 canary predictions" in t.reason


def test_canary_waits_while_an_operational_guardrail_cannot_look() -> None:
    """Enough canary predictions and time, but no latency recorded: the step waits."""
    rollout = begin("canary").rollout
    t = checked(r.evaluate(rollout, canary_obs(9500, 500, latency=None), at(600)))
    assert t.kind == r.KIND_WAITING and t.rollout.step == 0
    assert "guardrail data missing: latency p95" in t.reason


def test_canary_stores_the_metric_state_between_ticks() -> None:
    rollout = begin("canary").rollout
    first = checked(r.evaluate(rollout, canary_obs(4000, 200), at(2)))
    assert first.rollout.memory[r.METRIC_STATE]["looks"] == 1
    second = checked(r.evaluate(first.rollout, canary_obs(8000, 400), at(3)))
    assert second.rollout.memory[r.METRIC_STATE]["looks"] == 2
    metric = second.details["checks"][0]
    assert metric["name"] == "metric" and metric["status"] == "ok"
    assert metric["observed"]["canary_n"] == 400


def test_canary_advances_a_step() -> None:
    rollout = begin("canary").rollout
    t = checked(r.evaluate(rollout, canary_obs(9500, 500), at(10)))
    assert t.kind == r.KIND_STEP_ADVANCED and t.changed
    after = t.rollout
    assert after.step == 1 and after.step_started_at == at(10)
    assert after.started_at == T0
    assert arms(after) == [(CHAMPION, STABLE, 0.75), (CANARY, NEW, 0.25)]
    assert after.memory[r.METRIC_STATE]["looks"] == 1
    assert t.details["next_share"] == 0.25
    assert "5% → 25%" in t.reason


def test_canary_promotes_after_the_last_step() -> None:
    rollout = replace(
        begin("canary", current=live(previous=0)).rollout,
        step=3,
        arms=(ArmSpec(CHAMPION, STABLE, 0.0), ArmSpec(CANARY, NEW, 1.0)),
        step_started_at=at(30),
    )
    assert r.routed_arms(rollout.arms) == [ArmSpec(CANARY, NEW, 1.0)]
    waiting = checked(r.evaluate(rollout, canary_obs(9500, 3000, step_n=499), at(45)))
    assert waiting.kind == r.KIND_WAITING and "at 100%" in waiting.reason
    t = checked(r.evaluate(rollout, canary_obs(9500, 3000, step_n=500), at(40)))
    assert t.kind == r.KIND_PROMOTED and t.changed
    assert arms(t.rollout) == [(CHAMPION, NEW, 1.0)]
    assert t.rollout.state == r.LIVE
    assert (t.rollout.stable_version_id, t.rollout.previous_version_id) == (NEW, STABLE)


def test_canary_whose_last_step_is_below_100_percent_promotes_to_100() -> None:
    rollout = begin("canary", {"steps": [0.1, 0.5], "min_step_duration_s": 0}).rollout
    t1 = checked(r.evaluate(rollout, canary_obs(4500, 500), at(1)))
    assert arms(t1.rollout) == [(CHAMPION, STABLE, 0.5), (CANARY, NEW, 0.5)]
    t2 = checked(r.evaluate(t1.rollout, canary_obs(5000, 1000, step_n=500), at(2)))
    assert t2.kind == r.KIND_PROMOTED and arms(t2.rollout) == [(CHAMPION, NEW, 1.0)]


def test_canary_rolls_back_on_a_worse_metric() -> None:
    rollout = begin("canary").rollout
    t = checked(r.evaluate(rollout, canary_obs(9000, 450, canary_acc=0.6), at(9)))
    assert t.kind == r.KIND_ROLLED_BACK and t.changed
    assert t.rollout.state == r.ROLLED_BACK
    assert arms(t.rollout) == [(CHAMPION, STABLE, 1.0)]
    assert t.rollout.stable_version_id == STABLE and t.rollout.candidate_version_id == NEW
    assert t.details["breached"] == ["metric"]
    assert t.details["step"] == 0 and t.details["share"] == 0.05
    checks = {check["name"]: check for check in t.details["checks"]}
    assert checks["metric"]["status"] == "breached"
    assert checks["metric"]["observed"]["ci_high"] < -0.01
    assert checks["metric"]["threshold"] == 0.01
    assert checks["error_rate"]["status"] == "ok"
    assert "rolled back from version 2 to version 1 at step 1 of 4 (5%)" in t.reason
    assert t.rollout.memory[r.METRIC_STATE]["looks"] == 1


def test_canary_rolls_back_on_errors_and_latency() -> None:
    rollout = begin("canary").rollout
    obs = canary_obs(9000, 300, errors=60, latency=400.0)
    t = checked(r.evaluate(rollout, obs, at(9)))
    assert t.kind == r.KIND_ROLLED_BACK
    assert t.details["breached"] == ["error_rate", "latency_p95"]
    checks = {check["name"]: check for check in t.details["checks"]}
    assert checks["error_rate"]["observed"]["canary_errors"] == 60
    assert checks["latency_p95"]["observed"]["canary_p95_ms"] == 400.0
    assert "error_rate" in t.reason and "latency_p95" in t.reason


def test_canary_rollback_by_hand() -> None:
    rollout = begin("canary").rollout
    t = checked(r.rollback(rollout, at(3)))
    assert t.kind == r.KIND_ROLLED_BACK
    assert arms(t.rollout) == [(CHAMPION, STABLE, 1.0)] and t.rollout.state == r.ROLLED_BACK
    assert "from version 2 to version 1" in t.reason
    assert t.details["step"] == 0 and t.details["elapsed_s"] == 180.0


# ---------------------------------------------------------------------------- A/B test

AB = {"traffic": {"champion": 0.8, "challenger": 0.2}, "min_samples_per_arm": 1000}


def test_ab_test_starts_with_the_configured_split() -> None:
    t = begin("ab_test", AB)
    assert t.kind == r.KIND_AB_STARTED
    assert arms(t.rollout) == [(CHAMPION, STABLE, 0.8), (CHALLENGER, NEW, 0.2)]
    assert t.rollout.state == r.TESTING and t.rollout.memory == {}


def test_ab_test_extends_with_too_few_samples_and_records_it() -> None:
    rollout = begin("ab_test", AB).rollout
    t = checked(r.evaluate(rollout, ab_obs(sample(900, 0.1), sample(200, 0.1)), at(60)))
    assert t.kind == r.KIND_EXTENDED and not t.changed
    assert t.rollout.arms == rollout.arms and t.rollout.state == r.TESTING
    assert t.rollout.memory[r.LAST_DECISION] == {"action": "extend", "at": at(60).isoformat()}
    assert t.details["effect"] is None and t.details["p_value"] is None
    assert (t.details["n_control"], t.details["n_challenger"]) == (900, 200)
    assert t.details["elapsed_s"] == 3600.0


def test_ab_test_extends_on_an_undecided_look_and_stores_the_state() -> None:
    rollout = begin("ab_test", AB).rollout
    obs = ab_obs(sample(4000, 0.10), sample(1000, 0.105))
    t = checked(r.evaluate(rollout, obs, at(120)))
    assert t.kind == r.KIND_EXTENDED and not t.changed
    assert t.rollout.memory[r.AB_STATE]["looks"] == 1
    for name in ("effect", "ci_low", "ci_high", "p_value", "e_value"):
        assert isinstance(t.details[name], float)
    again = checked(r.evaluate(t.rollout, obs, at(180)))
    assert again.rollout.memory[r.AB_STATE]["looks"] == 2


def test_ab_test_promotes_a_better_challenger() -> None:
    rollout = begin("ab_test", AB, current=live(previous=0)).rollout
    obs = ab_obs(sample(20000, 0.10), sample(5000, 0.15))
    t = checked(r.evaluate(rollout, obs, at(24 * 60)))
    assert t.kind == r.KIND_PROMOTED and t.changed
    assert arms(t.rollout) == [(CHAMPION, NEW, 1.0)] and t.rollout.state == r.LIVE
    assert (t.rollout.stable_version_id, t.rollout.previous_version_id) == (NEW, STABLE)
    assert t.details["effect"] == pytest.approx(0.05)
    assert t.details["p_value"] < 0.05 and t.details["ci_low"] > 0
    assert (t.details["n_control"], t.details["n_challenger"]) == (20000, 5000)
    assert t.rollout.memory[r.AB_STATE]["looks"] == 1


def test_ab_test_rejects_a_worse_challenger() -> None:
    rollout = begin("ab_test", AB).rollout
    obs = ab_obs(sample(20000, 0.10), sample(5000, 0.05))
    t = checked(r.evaluate(rollout, obs, at(24 * 60)))
    assert t.kind == r.KIND_REJECTED and t.changed
    assert arms(t.rollout) == [(CHAMPION, STABLE, 1.0)] and t.rollout.state == r.REJECTED
    assert t.rollout.stable_version_id == STABLE
    assert t.details["ci_high"] < 0.01
    assert checked(r.evaluate(t.rollout, obs, at(24 * 60 + 1))).kind == r.KIND_NO_CHANGE


def test_ab_test_rejects_at_the_maximum_duration() -> None:
    rollout = begin("ab_test", {**AB, "max_duration_s": 3600}).rollout
    t = checked(r.evaluate(rollout, ab_obs(sample(300, 0.1), sample(80, 0.1)), at(61)))
    assert t.kind == r.KIND_REJECTED and t.rollout.state == r.REJECTED
    assert "max duration" in t.reason


def test_ab_test_lower_is_better() -> None:
    config = {**AB, "metric": "absolute_error", "min_effect": 0.5}
    rollout = begin("ab_test", config).rollout
    control = MetricSample(5000, 10.0, 4.0)
    challenger = MetricSample(2000, 8.0, 4.0)
    t = checked(r.evaluate(rollout, ab_obs(control, challenger), at(600)))
    assert t.kind == r.KIND_PROMOTED
    assert t.details["effect"] == pytest.approx(2.0) and not t.details["higher_is_better"]


def test_ab_test_waits_without_observations_and_rolls_back_by_hand() -> None:
    rollout = begin("ab_test", AB).rollout
    assert checked(r.evaluate(rollout, None, at(5))).kind == r.KIND_WAITING
    t = checked(r.rollback(rollout, at(5)))
    assert t.kind == r.KIND_ROLLED_BACK and t.rollout.state == r.ROLLED_BACK
    assert arms(t.rollout) == [(CHAMPION, STABLE, 1.0)]


# ---------------------------------------------------------------------------- shadow


def test_shadow_start_evaluate_and_rollback() -> None:
    t = begin("shadow")
    rollout = t.rollout
    assert t.kind == r.KIND_SHADOW_STARTED and rollout.state == r.SHADOWING
    assert arms(rollout) == [(CHAMPION, STABLE, 1.0), (SHADOW, NEW, 0.0)]
    assert r.routed_arms(rollout.arms) == [ArmSpec(CHAMPION, STABLE, 1.0)]
    assert r.shadow_arms(rollout.arms) == [ArmSpec(SHADOW, NEW, 0.0)]

    tick = checked(r.evaluate(rollout, canary_obs(100, 100), at(5)))
    assert tick.kind == r.KIND_NO_CHANGE and not tick.changed and tick.rollout == rollout

    back = checked(r.rollback(rollout, at(6)))
    assert back.kind == r.KIND_ROLLED_BACK and back.rollout.state == r.LIVE
    assert arms(back.rollout) == [(CHAMPION, STABLE, 1.0)]
    assert "stopped shadowing version 2" in back.reason


# ---------------------------------------------------------------------------- rollback


def test_rollback_of_a_live_version_happens_once() -> None:
    deployed = begin("immediate").rollout
    t = checked(r.rollback(deployed, at(10)))
    assert t.kind == r.KIND_ROLLED_BACK and t.changed
    after = t.rollout
    assert arms(after) == [(CHAMPION, STABLE, 1.0)] and after.state == r.ROLLED_BACK
    assert after.stable_version_id == STABLE
    assert after.previous_version_id is None and after.candidate_version_id is None
    assert "from version 2 to version 1" in t.reason
    with pytest.raises(NothingToRollBack, match="already ended"):
        r.rollback(after, at(11))


def test_rollback_after_an_ended_rollout_moves_nothing() -> None:
    """A canary that rolled itself back keeps its predecessor's previous version; a
    rollback() then would move off the version serving now, so it is refused."""
    rollout = begin("canary", current=live(previous=NEW + 1)).rollout
    ended = checked(r.rollback(rollout, at(1))).rollout
    assert ended.state == r.ROLLED_BACK and ended.stable_version_id == STABLE
    with pytest.raises(NothingToRollBack, match="already ended"):
        r.rollback(ended, at(2))


def test_rollback_after_a_promoted_canary_returns_to_the_old_stable() -> None:
    rollout = begin("canary", {"steps": [1.0], "min_step_duration_s": 0}).rollout
    promoted = checked(r.evaluate(rollout, canary_obs(500, 500), at(1))).rollout
    assert promoted.state == r.LIVE and promoted.stable_version_id == NEW
    back = checked(r.rollback(promoted, at(2)))
    assert arms(back.rollout) == [(CHAMPION, STABLE, 1.0)]


def test_nothing_to_roll_back_after_a_first_deploy() -> None:
    with pytest.raises(NothingToRollBack, match="strategy 'immediate'"):
        r.rollback(live(), at(1))


@pytest.mark.parametrize("state", [r.LIVE, r.ROLLED_BACK, r.REJECTED, r.VERIFICATION_FAILED])
def test_settled_states_do_not_change_on_a_tick(state: str) -> None:
    rollout = replace(live(), state=state)
    t = checked(r.evaluate(rollout, canary_obs(1000, 0), at(1)))
    assert t.kind == r.KIND_NO_CHANGE and not t.changed and t.rollout == rollout
