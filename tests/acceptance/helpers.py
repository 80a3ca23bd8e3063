"""Asserting on what real workers wrote."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.db import transaction
from storage.jobs import JobRepository
from storage.models import Artifact, Dataset, FanInGroup, Job, JobEvent

T = TypeVar("T")


def eventually(
    check: Callable[[], T], timeout: float = 30, interval: float = 0.1, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def job_row(sessions: sessionmaker[Session], job_id: str) -> Job | None:
    with transaction(sessions) as session:
        return JobRepository(session).get(job_id)


def event_kinds(sessions: sessionmaker[Session], job_id: str) -> list[str]:
    with transaction(sessions) as session:
        return [e.kind for e in JobRepository(session).events(job_id)]


def row_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with transaction(sessions) as session:
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Job, JobEvent, Dataset, Artifact, FanInGroup)
        }


def datasets_of(sessions: sessionmaker[Session], job_id: str) -> list[Dataset]:
    with transaction(sessions) as session:
        return list(session.scalars(select(Dataset).where(Dataset.created_by_job == job_id)))


def running_peak(
    sessions: sessionmaker[Session], job_ids: list[str], timeout: float = 600
) -> tuple[list[Job], int]:
    """Poll the jobs until they end: their final rows and the most RUNNING at once.

    Each poll reads every status in one statement, so one snapshot: reading the jobs one
    query at a time could see a job still RUNNING and, a few queries later, the job that
    took its slot already RUNNING (a peak above the limit that never happened)."""
    peak = 0
    ended = ("SUCCEEDED", "FAILED", "CANCELLED")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(sessions) as session:
            statuses = list(session.scalars(select(Job.status).where(Job.id.in_(job_ids))))
        peak = max(peak, statuses.count("RUNNING"))
        if len(statuses) == len(job_ids) and all(status in ended for status in statuses):
            break
        time.sleep(0.02)
    with transaction(sessions) as session:
        jobs = [JobRepository(session).require(i) for i in job_ids]
    return jobs, peak


def admitted_order(sessions: sessionmaker[Session], job_ids: list[str]) -> list[str]:
    """The jobs in the order admission control granted them a training slot."""
    with transaction(sessions) as session:
        events = session.scalars(
            select(JobEvent).where(JobEvent.kind == "admitted").order_by(JobEvent.id)
        )
        return [e.job_id for e in events if e.job_id in job_ids]


def kill_sessions_waiting_on(pg_url: str, table: str) -> int:
    """Terminate the database sessions waiting on a lock of ``table`` (what a restart or a
    failover does to them); how many there were."""
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as connection:
        return len(
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND wait_event_type = 'Lock' "
                "AND query ILIKE %s AND pid <> pg_backend_pid()",
                (pg_url.rsplit("/", 1)[1], f"%{table}%"),
            ).fetchall()
        )
