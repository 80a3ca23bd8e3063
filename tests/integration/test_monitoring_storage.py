"""Stored monitoring checks on SQLite and PostgreSQL: one row per check job (a redelivered
job finds its result instead of storing a second), and a model's history in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.db import transaction
from storage.jobs import JobRepository
from storage.models import Job, MonitoringCheck
from storage.monitoring import MonitoringRepository
from tests.integration.test_deployments_storage import versions

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def check(job_id: str, version_id: int, at: datetime, score: float) -> dict[str, object]:
    return {
        "job_id": job_id,
        "model_name": "churn",
        "version_id": version_id,
        "checked_at": at,
        "window_start": at - timedelta(hours=24),
        "window_end": at,
        "window_rows": 2000,
        "source": "prediction_log",
        "health_score": score,
        "status": "healthy" if score >= 80 else "degraded",
        "drifted": score < 80,
        "result": {"health": {"score": score}},
    }


def add_job(session: Session, job_id: str) -> None:
    JobRepository(session).create(
        Job(id=job_id, type="check_model", params={}, status="RUNNING", attempts=1)
    )


def test_one_stored_check_per_job_and_the_history(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    version_id = versions(sessions, tmp_path, count=1)[0]
    with transaction(sessions) as session:
        for i in range(3):
            add_job(session, f"check-{i}")
        repository = MonitoringRepository(session)
        first, created = repository.record(check("check-0", version_id, T0, 95.0))
        assert created and first.health_score == 95.0
        # A redelivered job computes again (other numbers) and finds its stored result.
        again, created = repository.record(check("check-0", version_id, T0, 10.0))
        assert not created and again.id == first.id and again.health_score == 95.0
        repository.record(check("check-2", version_id, T0 + timedelta(hours=2), 60.0))
        repository.record(check("check-1", version_id, T0 + timedelta(hours=1), 85.0))
    with transaction(sessions) as session:
        count = session.scalar(select(func.count()).select_from(MonitoringCheck))
        assert count == 3
        history = MonitoringRepository(session).history("churn")
        assert [row.job_id for row in history] == ["check-0", "check-1", "check-2"]
        latest_two = MonitoringRepository(session).history("churn", limit=2)
        assert [row.job_id for row in latest_two] == ["check-1", "check-2"]
        before = MonitoringRepository(session).history("churn", before=T0 + timedelta(hours=2))
        assert [row.job_id for row in before] == ["check-0", "check-1"]
        assert MonitoringRepository(session).history("other") == []
