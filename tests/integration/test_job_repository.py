"""JobRepository on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client.contract import JobStatus
from storage.db import transaction
from storage.errors import NotFound
from storage.jobs import JobRepository
from storage.models import Job


def new_job(job_id: str, key: str | None = None, job_type: str = "diagnostics.probe") -> Job:
    return Job(
        id=job_id,
        type=job_type,
        params={"seconds": 1},
        status=JobStatus.QUEUED.value,
        idempotency_key=key,
        attempts=0,
        cancel_requested=False,
    )


def test_create_is_idempotent_on_id_and_key(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        jobs = JobRepository(session)
        first, created = jobs.create(new_job("a", key="k1"))
        assert created and first.id == "a"
        again, created = jobs.create(new_job("a"))
        assert not created and again.id == "a"
        by_key, created = jobs.create(new_job("b", key="k1"))
        assert not created and by_key.id == "a"
    with transaction(sessions) as session:
        assert JobRepository(session).count() == 1


def test_timestamps_are_aware_utc(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        JobRepository(session).create(new_job("t"))
    with transaction(sessions) as session:
        created = JobRepository(session).require("t").created_at
    assert created.tzinfo is not None and created.utcoffset() == UTC.utcoffset(None)


def test_finish_happens_once(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        JobRepository(session).create(new_job("f"))
    with transaction(sessions) as session:
        assert JobRepository(session).finish(
            "f",
            JobStatus.SUCCEEDED,
            result={"n": 1},
            resources={"wall_s": 1.5, "cpu_s": 0.5, "peak_rss_bytes": 10},
        )
    with transaction(sessions) as session:
        assert not JobRepository(session).finish("f", JobStatus.FAILED, error_code="x")
        job = JobRepository(session).require("f")
        assert (job.status, job.result, job.error_code, job.wall_s) == (
            "SUCCEEDED",
            {"n": 1},
            None,
            1.5,
        )
        assert job.finished_at is not None


def test_progress_reports_cancel_requests(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        job, _ = JobRepository(session).create(new_job("p"))
        job.status = JobStatus.RUNNING.value
    with transaction(sessions) as session:
        assert not JobRepository(session).set_progress("p", {"done": 1})
        JobRepository(session).require("p").cancel_requested = True
    with transaction(sessions) as session:
        assert JobRepository(session).set_progress("p", {"done": 2})
        job = JobRepository(session).require("p")
        assert job.progress == {"done": 2} and job.heartbeat_at is not None


def test_list_filters_and_orders_newest_first(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        jobs = JobRepository(session)
        for index in range(5):
            job = new_job(
                f"j{index}", job_type="diagnostics.fanout" if index % 2 else "diagnostics.probe"
            )
            job.created_at = datetime(2026, 1, 1, 12, index, tzinfo=UTC)
            jobs.create(job)
        jobs.finish("j4", JobStatus.FAILED, error_code="x")
    with transaction(sessions) as session:
        jobs = JobRepository(session)
        assert [j.id for j in jobs.find()] == ["j4", "j3", "j2", "j1", "j0"]
        assert [j.id for j in jobs.find(limit=2, offset=1)] == ["j3", "j2"]
        assert [j.id for j in jobs.find(statuses=["FAILED"])] == ["j4"]
        assert [j.id for j in jobs.find(job_type="diagnostics.fanout")] == ["j3", "j1"]
        assert jobs.count(statuses=["QUEUED"]) == 4


def test_events_are_kept_in_order(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        jobs = JobRepository(session)
        jobs.create(new_job("e"))
        jobs.add_event("e", "submitted")
        jobs.add_event("e", "started", attempt=1, worker="h:1", detail={"redelivered": False})
        jobs.add_event("e", "started", attempt=2, worker="h:2", detail={"redelivered": True})
    with transaction(sessions) as session:
        events = JobRepository(session).events("e")
        assert [(e.kind, e.attempt) for e in events] == [
            ("submitted", None),
            ("started", 1),
            ("started", 2),
        ]
        assert len(JobRepository(session).events("e", kind="started")) == 2


def test_missing_job_is_not_found(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session, pytest.raises(NotFound):
        JobRepository(session).require("nope")
