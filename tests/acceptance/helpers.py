"""Asserting on what real workers wrote."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

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
