"""Alerts and retrains in the store, on SQLite and PostgreSQL: a check's findings through
the cooldown states (raised once, reminded after the cooldown, resolved after clean
checks), webhook deliveries per alert and URL, concurrent checks raising a problem once;
retrain triggers opened once per model, coalesced, skipped in the cooldown, keyed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.alerts import AlertRepository, delivery_id
from storage.db import transaction
from storage.errors import Conflict
from storage.jobs import JobRepository
from storage.models import Alert, Job, Retrain
from storage.retrains import RetrainRepository
from tests.integration.test_deployments_storage import versions
from workers.monitoring.alert_cooldown import CooldownPolicy
from workers.monitoring.alerting import apply_alerts

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = CooldownPolicy(cooldown_s=3600, resolve_after=2)
HOOKS = ["http://127.0.0.1:9/hook", "https://alerts.example.com/cipml"]


def check(drop: float | None) -> dict[str, Any]:
    """A stored check of model churn: ROC AUC dropped by ``drop`` (None: healthy)."""
    drifted = drop is not None
    return {
        "model_name": "churn",
        "version": "1.0.0",
        "window": {"source": "prediction_log", "rows": 5000},
        "health": {
            "score": 55.0 if drifted else 92.0,
            "status": "degraded" if drifted else "healthy",
        },
        "data_drift": {"drifted": False, "features": []},
        "prediction_drift": {"drifted": False, "psi": 0.01},
        "performance": {
            "metric": "roc_auc",
            "baseline": 0.78,
            "value": 0.78 - (drop or 0.0),
            "drop": drop or 0.0,
            "ci_low": 0.70,
            "ci_high": 0.74,
            "n": 4000,
            "status": "drifted" if drifted else "ok",
        },
        "quality": [],
        "operations": {"predictions": 5000, "errors": 0, "error_rate": 0.0, "latency_p95_ms": 12},
        "thresholds": {"accuracy_drop": 0.05, "error_rate": 0.1, "response_time_ms": 5000},
    }


def apply(
    sessions: sessionmaker[Session], job_id: str, at: datetime, drop: float | None, version: int
) -> list[tuple[str, str, str]]:
    with transaction(sessions) as session:
        JobRepository(session).create(
            Job(id=job_id, type="check_model", params={}, status="RUNNING", attempts=1)
        )
    with transaction(sessions) as session:
        notes = apply_alerts(
            session,
            check=check(drop),
            check_job_id=job_id,
            version_id=version,
            importances=[],
            now=at,
            policy=POLICY,
            webhook_urls=HOOKS,
        )
        return [(a.kind, a.event, a.level) for a in notes]


def test_a_problem_is_raised_once_reminded_after_the_cooldown_and_resolved(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    version = versions(sessions, tmp_path, count=1)[0]
    minute = timedelta(minutes=1)
    assert apply(sessions, "c0", T0, 0.08, version) == [
        ("performance_drop", "raised", "HIGH"),
        ("health", "raised", "LOW"),
    ]
    assert apply(sessions, "c1", T0 + 15 * minute, 0.08, version) == []  # in the cooldown
    assert apply(sessions, "c2", T0 + 60 * minute, 0.08, version) == [
        ("performance_drop", "reminder", "HIGH"),
        ("health", "reminder", "LOW"),
    ]
    assert apply(sessions, "c3", T0 + 75 * minute, None, version) == []  # one clean check
    resolved = apply(sessions, "c4", T0 + 90 * minute, None, version)
    assert sorted(resolved) == [
        ("health", "resolved", "LOW"),
        ("performance_drop", "resolved", "HIGH"),
    ]
    with transaction(sessions) as session:
        repository = AlertRepository(session)
        assert repository.active_states("churn") == []
        alerts = repository.recent("churn")
        assert len(alerts) == 6 and alerts[0].event == "resolved"  # newest first
        assert [a.kind for a in repository.recent("churn", min_level="HIGH")] == [
            "performance_drop"
        ] * 3
        deliveries = repository.deliveries_of([a.id for a in alerts])
        assert len(deliveries) == 6 * len(HOOKS)
        assert {d.id for d in deliveries} == {delivery_id(a.id, u) for a in alerts for u in HOOKS}
        assert {d.status for d in deliveries} == {"pending"}


def test_a_new_versions_problem_is_raised_inside_the_old_ones_cooldown(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    old, new = versions(sessions, tmp_path, count=2)
    minute = timedelta(minutes=1)
    apply(sessions, "c0", T0, 0.08, old)
    apply(sessions, "c1", T0 + 5 * minute, None, old)
    resolved = apply(sessions, "c2", T0 + 10 * minute, None, old)
    assert ("performance_drop", "resolved", "HIGH") in resolved
    # The same version flapping back inside the cooldown would reopen silently; a new
    # version with the problem is news.
    assert ("performance_drop", "raised", "HIGH") in apply(
        sessions, "c3", T0 + 15 * minute, 0.08, new
    )


def test_a_promoted_version_raises_its_own_problem_and_clears_the_old_one(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    old, new = versions(sessions, tmp_path, count=2)
    minute = timedelta(minutes=1)
    apply(sessions, "c0", T0, 0.08, old)  # raised while the old version serves
    # The new version still drops: its own episode is raised at once, not held back by
    # the old one's cooldown.
    assert ("performance_drop", "raised", "HIGH") in apply(
        sessions, "c1", T0 + 5 * minute, 0.08, new
    )
    apply(sessions, "c2", T0 + 10 * minute, None, new)
    assert ("performance_drop", "resolved", "HIGH") in apply(
        sessions, "c3", T0 + 15 * minute, None, new
    )


def test_a_notification_is_stored_once_per_check_and_kind(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    version = versions(sessions, tmp_path, count=1)[0]
    apply(sessions, "c0", T0, 0.08, version)
    values = {
        "model_name": "churn",
        "kind": "performance_drop",
        "level": "HIGH",
        "event": "raised",
        "message": "again",
        "numbers": {},
        "check_job_id": "c0",
        "version_id": version,
        "at": T0,
    }
    with transaction(sessions) as session:
        repository = AlertRepository(session)
        again, created = repository.record(values)
        assert not created and again.message != "again"
        first = repository.add_delivery(again.id, HOOKS[0], T0)
        assert repository.add_delivery(again.id, HOOKS[0], T0).id == first.id
        count = session.scalar(select(func.count()).select_from(Alert))
    assert count == 2


def test_a_delivery_attempt_is_recorded(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    version = versions(sessions, tmp_path, count=1)[0]
    apply(sessions, "c0", T0, 0.08, version)
    with transaction(sessions) as session:
        repository = AlertRepository(session)
        delivery = repository.deliveries_of([a.id for a in repository.of_check("c0")])[0]
        repository.record_attempt(
            delivery.id,
            status="pending",
            status_code=500,
            error="HTTP 500",
            next_attempt_at=T0 + timedelta(seconds=2),
            at=T0,
        )
    with transaction(sessions) as session:
        repository = AlertRepository(session)
        assert [d.id for d in repository.overdue_deliveries(T0 + timedelta(minutes=5))][0:1]
        repository.record_attempt(
            delivery.id,
            status="delivered",
            status_code=200,
            error=None,
            next_attempt_at=None,
            at=T0,
        )
    with transaction(sessions) as session:
        done = AlertRepository(session).delivery(delivery.id)
        assert done is not None
        assert (done.status, done.attempts, done.last_status_code) == ("delivered", 2, 200)
        assert done.delivered_at == T0


def test_concurrent_checks_raise_a_problem_once(pg_repo_url: str, tmp_path: Path) -> None:
    from storage.db import make_engine, make_session_factory

    engine = make_engine(pg_repo_url)
    sessions = make_session_factory(engine)
    try:
        version = versions(sessions, tmp_path, count=1)[0]
        barrier = threading.Barrier(6)
        results: list[list[tuple[str, str, str]]] = []

        def one(i: int) -> None:
            barrier.wait()
            results.append(apply(sessions, f"race-{i}", T0, 0.08, version))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        raised = [note for notes in results for note in notes]
        assert sorted(raised) == [
            ("health", "raised", "LOW"),
            ("performance_drop", "raised", "HIGH"),
        ]
    finally:
        engine.dispose()


# ---------------------------------------------------------------- retrains


def trigger(
    session: Session, key: str, at: datetime, cooldown_s: float = 0.0
) -> tuple[Retrain, bool]:
    return RetrainRepository(session).trigger(
        model_name="churn",
        trigger="manual",
        trigger_key=key,
        reason="test",
        numbers={},
        check_job_id=None,
        from_version_id=None,
        at=at,
        cooldown_s=cooldown_s,
    )


def test_one_open_retrain_per_model_the_rest_coalesced_then_the_cooldown(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        first, created = trigger(session, "k1", T0)
        assert created and first.status == "open"
        second, created = trigger(session, "k2", T0)
        assert created and second.status == "coalesced" and second.coalesced_into == first.id
        again, created = trigger(session, "k1", T0)
        assert not created and again.id == first.id
        repository = RetrainRepository(session)
        assert repository.coalesced_counts([first.id]) == {first.id: 1}
        assert repository.finish(first.id, "rejected", {"verdict": "reject"}, T0)
        assert not repository.finish(first.id, "promoted", {}, T0)  # closed already
        hour = timedelta(hours=1)
        skipped, _ = trigger(session, "k3", T0 + hour, cooldown_s=86400)
        assert skipped.status == "skipped"
        reopened, _ = trigger(session, "k4", T0 + 25 * hour, cooldown_s=86400)
        assert reopened.status == "open"
        assert [r.trigger_key for r in repository.recent("churn")] == ["k4", "k3", "k2", "k1"]
        with pytest.raises(ValueError, match="ends as one of"):
            repository.finish(reopened.id, "open", {}, T0)


def test_a_second_open_retrain_is_refused_by_the_index(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        trigger(session, "k1", T0)
    with pytest.raises(Conflict), transaction(sessions) as session:
        session.add(
            Retrain(
                model_name="churn",
                trigger="manual",
                trigger_key="sneaky",
                reason="bypassing the lock",
                numbers={},
                status="open",
                decision={},
                created_at=T0,
            )
        )


def test_simultaneous_triggers_open_one_retrain(pg_repo_url: str) -> None:
    from storage.db import make_engine, make_session_factory

    engine = make_engine(pg_repo_url)
    sessions = make_session_factory(engine)
    try:
        barrier = threading.Barrier(12)

        def one(i: int) -> None:
            barrier.wait()
            with transaction(sessions) as session:
                trigger(session, f"t{i}", T0)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with transaction(sessions) as session:
            statuses = [r.status for r in RetrainRepository(session).recent("churn")]
        assert sorted(statuses) == ["coalesced"] * 11 + ["open"]
    finally:
        engine.dispose()
