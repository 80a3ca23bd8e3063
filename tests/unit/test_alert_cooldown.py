"""The cooldown state machine with injected time: raised, quiet inside the cooldown,
reminders, escalations at once, resolutions after clean checks, flapping without a storm."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workers.monitoring.alert_cooldown import (
    AlertState,
    CooldownPolicy,
    Notification,
    step,
)
from workers.monitoring.alert_rules import AlertFinding

T0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
POLICY = CooldownPolicy(cooldown_s=3600, resolve_after=2)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def found(level: str = "MEDIUM", drop: float = 0.08) -> AlertFinding:
    return AlertFinding(
        "performance_drop",
        level,  # type: ignore[arg-type]
        f"churn 1.2.0 roc_auc dropped by {drop}: retrain or roll back.",
        {"drop": drop},
    )


def run(
    timeline: list[tuple[float, AlertFinding | None]],
    state: AlertState | None = None,
    policy: CooldownPolicy = POLICY,
) -> tuple[AlertState | None, list[tuple[float, Notification]]]:
    sent = []
    for at, finding in timeline:
        state, note = step(state, finding, minutes(at), policy)
        if note is not None:
            sent.append((at, note))
    return state, sent


def events(sent: list[tuple[float, Notification]]) -> list[tuple[float, str, str]]:
    return [(at, note.event, note.level) for at, note in sent]


def test_nothing_and_no_state_stays_nothing() -> None:
    assert step(None, None, T0, POLICY) == (None, None)


def test_appearing_problem_is_raised_with_its_message_and_numbers() -> None:
    state, note = step(None, found(), T0, POLICY)
    assert note == Notification(
        "raised",
        "MEDIUM",
        "churn 1.2.0 roc_auc dropped by 0.08: retrain or roll back.",
        {"drop": 0.08},
    )
    assert state is not None and state.active
    assert (state.opened_at, state.last_notified_at, state.last_notified_level) == (
        T0,
        T0,
        "MEDIUM",
    )
    assert (state.notifications, state.suppressed, state.clean_checks) == (1, 0, 0)


def test_persisting_problem_is_quiet_inside_the_cooldown_then_reminded() -> None:
    state, sent = run([(m, found()) for m in range(0, 121, 15)])  # 0, 15, ..., 120
    # raised at 0; 15..45 inside the cooldown; 60 is exactly one cooldown later.
    assert events(sent) == [
        (0, "raised", "MEDIUM"),
        (60, "reminder", "MEDIUM"),
        (120, "reminder", "MEDIUM"),
    ]
    assert sent[1][1].message.startswith("Still open since 2024-05-01T00:00:00+00:00: churn")
    assert state is not None and state.notifications == 3 and state.last_seen_at == minutes(120)


def test_worsening_problem_escalates_at_once_and_not_again_for_the_same_level() -> None:
    _, sent = run(
        [
            (0, found("MEDIUM")),
            (15, found("HIGH")),  # worse: at once, no waiting for the cooldown
            (30, found("MEDIUM")),  # better: quiet
            (45, found("HIGH")),  # back to what was sent: quiet
            (50, found("CRITICAL")),  # worse again
            (110, found("CRITICAL")),  # a cooldown after the escalation
        ]
    )
    assert events(sent) == [
        (0, "raised", "MEDIUM"),
        (15, "escalated", "HIGH"),
        (50, "escalated", "CRITICAL"),
        (110, "reminder", "CRITICAL"),
    ]
    assert sent[1][1].message.startswith("Worse, now HIGH (was MEDIUM): ")


def test_lower_level_reminders_then_escalate_again() -> None:
    _, sent = run([(0, found("HIGH")), (60, found("LOW")), (75, found("HIGH"))])
    assert events(sent) == [
        (0, "raised", "HIGH"),
        (60, "reminder", "LOW"),
        (75, "escalated", "HIGH"),
    ]


def test_resolution_needs_two_clean_checks_in_a_row() -> None:
    state, sent = run([(0, found()), (15, None)])
    assert events(sent) == [(0, "raised", "MEDIUM")]
    assert state is not None and state.active and state.clean_checks == 1
    state, sent = run([(30, found()), (45, None)], state)  # the run of clean checks broke
    assert sent == [] and state is not None and state.clean_checks == 1
    state, sent = run([(60, None)], state)
    assert events(sent) == [(60, "resolved", "MEDIUM")]
    note = sent[0][1]
    assert note.message.startswith("Resolved, clean in the last 2 checks: churn")
    assert note.numbers["clean_checks"] == 2
    assert note.numbers["last_seen_at"] == minutes(30).isoformat()
    assert state is not None and not state.active and state.last_notified_at == minutes(60)
    # inactive and clean: unchanged, silent
    assert step(state, None, minutes(75), POLICY) == (state, None)


def test_reappearing_inside_the_cooldown_of_the_resolution_reopens_silently() -> None:
    state, sent = run([(0, found()), (15, None), (30, None)])  # resolved at 30
    state, sent = run([(45, found()), (60, found())], state)
    assert sent == []
    assert state is not None and state.active and state.suppressed == 1
    assert state.opened_at == minutes(45)
    # Once a cooldown has passed since "resolved", it is announced again: "raised", as
    # the reader's last word was "resolved".
    state, sent = run([(90, found())], state)
    assert events(sent) == [(90, "raised", "MEDIUM")]
    # and now it is an announced episode: its end is a resolution
    state, sent = run([(105, None), (120, None)], state)
    assert events(sent) == [(120, "resolved", "MEDIUM")]


def test_silent_episode_ends_silently() -> None:
    state, _ = run([(0, found()), (15, None), (30, None)])  # raised 0, resolved 30
    state, sent = run([(45, found()), (60, None), (75, None)], state)
    assert sent == []  # nobody heard of the reopening, so no "resolved" either
    assert state is not None and not state.active and state.last_notified_at == minutes(30)


def test_worse_reappearance_inside_the_cooldown_escalates() -> None:
    state, _ = run([(0, found("MEDIUM")), (15, None), (30, None)])
    state, sent = run([(45, found("HIGH"))], state)
    assert events(sent) == [(45, "escalated", "HIGH")]
    assert state is not None and state.suppressed == 0


def test_reappearing_after_the_cooldown_is_raised() -> None:
    state, _ = run([(0, found()), (15, None), (30, None)])
    state, sent = run([(90, found())], state)
    assert events(sent) == [(90, "raised", "MEDIUM")]


def test_flapping_for_a_day_is_no_storm() -> None:
    # Checks every 15 minutes for 24 h (96 checks, 00:00 to 23:45), the problem present at
    # every other check (00:00, 00:30, ...), with a 1-hour cooldown.
    timeline = [(15.0 * i, found() if i % 2 == 0 else None) for i in range(96)]
    state, sent = run(timeline)
    # One clean check never reaches resolve_after = 2, so the problem never resolves: it
    # stays open and only the cooldown speaks. Raised at 00:00, then a reminder at every
    # check with the finding a full hour after the previous notification: 01:00, 02:00,
    # ..., 23:00. 1 + 23 = 24 notifications; nothing at the 00:30, 01:30, ... findings
    # (30 min after the last one) and nothing at the clean checks.
    assert len(sent) == 24
    assert events(sent) == [(0, "raised", "MEDIUM")] + [
        (60.0 * h, "reminder", "MEDIUM") for h in range(1, 24)
    ]
    assert state is not None and state.active and state.suppressed == 0

    # Flapping two checks on, two off (present at t, t+15; clean at t+30, t+45): raised at
    # 0, resolved at 45 (the second clean check); back at 60, 15 min after "resolved":
    # reopened silently, and its end at 105 is silent too; back at 120, 75 min after the
    # last notification: raised. A period of 120 min with 2 notifications: 12 periods in
    # 24 h, 24 notifications (a problem that is gone half of the time is reported gone).
    timeline = [(15.0 * i, found() if i % 4 < 2 else None) for i in range(96)]
    _, sent = run(timeline)
    assert [e for _, e, _ in events(sent)] == ["raised", "resolved"] * 12
    assert [at for at, e, _ in events(sent) if e == "raised"] == [120.0 * k for k in range(12)]
    assert len(sent) == 24


def test_flapping_with_resolve_after_one_is_bounded_by_the_cooldown() -> None:
    # A policy that resolves on the first clean check and the same every-other-check
    # flapping: raised at 0, resolved at 15, silent reopening at 30 (15 min after the
    # resolution) and silent end at 45, silent again at 60/75 (45 min after), raised at 90
    # (75 min after). Period 90 min with 2 notifications: 16 periods in 24 h, 32 in all,
    # against 96 without the cooldown.
    policy = CooldownPolicy(cooldown_s=3600, resolve_after=1)
    timeline = [(15.0 * i, found() if i % 2 == 0 else None) for i in range(96)]
    _, sent = run(timeline, policy=policy)
    assert len(sent) == 32
    assert [at for at, e, _ in events(sent) if e == "raised"] == [90.0 * k for k in range(16)]


def test_json_round_trip() -> None:
    state, _ = run([(0, found("HIGH")), (15, None), (30, None), (45, found("HIGH"))])
    assert state is not None
    data = json.loads(json.dumps(state.to_json()))
    assert data["opened_at"] == "2024-05-01T00:45:00+00:00"
    assert data["last_notified_at"] == "2024-05-01T00:30:00+00:00"
    assert data["suppressed"] == 1
    assert AlertState.from_json(data) == state
    # and the restored state behaves the same
    assert step(AlertState.from_json(data), None, minutes(60)) == step(state, None, minutes(60))


def test_times_are_kept_in_utc_and_naive_times_are_refused() -> None:
    paris = timezone(timedelta(hours=2))
    state, _ = step(None, found(), datetime(2024, 5, 1, 2, 0, tzinfo=paris), POLICY)
    assert state is not None and state.opened_at == T0 and state.opened_at.tzinfo == UTC
    with pytest.raises(ValueError, match="aware"):
        step(None, found(), datetime(2024, 5, 1), POLICY)


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="resolve_after"):
        CooldownPolicy(resolve_after=0)
    with pytest.raises(ValueError, match="cooldown_s"):
        CooldownPolicy(cooldown_s=-1)
