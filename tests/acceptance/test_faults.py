"""Faults against real Redis + PostgreSQL and real worker processes: killed pool children,
killed workers, a job that keeps killing its worker, a dropped database connection, and
fan-in with redelivered parts."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client, JobFailed, JobStatus
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.jobs import JobRepository
from storage.models import FanInPart
from tests.acceptance.helpers import datasets_of, eventually, job_row
from tests.conftest import service_environment
from tests.support.services import redis_database
from tests.support.workers import WorkerProcess
from workers.diagnostics.probe import PART_TASK

pytestmark = pytest.mark.slow

VISIBILITY_TIMEOUT_S = 15
SHORT_LIMITS = {
    queue: [10, 12] for queue in ("preprocessing", "training", "trials", "scoring", "monitoring")
}


@pytest.fixture(scope="module")
def fault_env(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Its own Redis db (short visibility timeout), the run's PostgreSQL database."""
    with redis_database() as redis_url:
        yield service_environment(
            pg_url,
            redis_url,
            tmp_path_factory.mktemp("faults-home"),
            CIPML_TIME_LIMITS=json.dumps({"control": [5, 8], **SHORT_LIMITS}),
            CIPML_VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S),
        )


@pytest.fixture
def start_worker(fault_env: dict[str, str], tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    started: list[WorkerProcess] = []

    def start(name: str = "f", concurrency: int = 2) -> WorkerProcess:
        process = WorkerProcess(
            fault_env, tmp_path / f"{name}.log", concurrency=concurrency, name=name
        ).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def fault_client(fault_env: dict[str, str]) -> Iterator[Client]:
    with Client(fault_env["CIPML_BROKER_URL"], control_timeout=30) as client:
        yield client


def _pid_of(sessions: sessionmaker[Session], job_id: str) -> int:
    row = eventually(
        lambda: (r := job_row(sessions, job_id)) and r.progress and r.worker and r,
        what="the job's first checkpoint",
    )
    return int(row.worker.rsplit(":", 1)[1])


def _started(sessions: sessionmaker[Session], job_id: str) -> list[tuple[int | None, bool]]:
    with transaction(sessions) as session:
        return [
            (e.attempt, bool((e.detail or {}).get("redelivered")))
            for e in JobRepository(session).events(job_id, kind="started")
        ]


def test_killed_pool_child_is_redelivered_at_once(
    start_worker,
    fault_client: Client,  # type: ignore[no-untyped-def]
    service_sessions: sessionmaker[Session],
) -> None:
    worker = start_worker()
    handle = fault_client.submit(
        "diagnostics.probe", {"seconds": 3, "steps": 6, "write_output": True}
    )
    os.kill(_pid_of(service_sessions, handle.id), signal.SIGKILL)
    killed_at = time.monotonic()
    result = handle.result(timeout=60)
    assert time.monotonic() - killed_at < VISIBILITY_TIMEOUT_S  # not the visibility timeout
    assert result["attempt"] == 2
    row = job_row(service_sessions, handle.id)
    assert row is not None and (row.status, row.attempts) == ("SUCCEEDED", 2)
    assert len(datasets_of(service_sessions, handle.id)) == 1
    assert _started(service_sessions, handle.id) == [(1, False), (2, True)]
    assert worker.alive()


def test_killed_worker_is_redelivered_after_the_visibility_timeout(  # type: ignore[no-untyped-def]
    start_worker, fault_client: Client, service_sessions: sessionmaker[Session]
) -> None:
    first = start_worker("dying", concurrency=1)
    handle = fault_client.submit(
        "diagnostics.probe", {"seconds": 4, "steps": 4, "write_output": True}
    )
    _pid_of(service_sessions, handle.id)
    first.kill_all()
    killed_at = time.monotonic()
    start_worker("rescuer", concurrency=1)
    result = handle.result(timeout=VISIBILITY_TIMEOUT_S * 4)
    assert time.monotonic() - killed_at >= VISIBILITY_TIMEOUT_S - 5
    assert result["attempt"] == 2
    assert len(datasets_of(service_sessions, handle.id)) == 1
    assert [attempt for attempt, _ in _started(service_sessions, handle.id)] == [1, 2]


def test_a_job_that_keeps_killing_its_worker_ends_worker_lost(  # type: ignore[no-untyped-def]
    start_worker, fault_client: Client, service_sessions: sessionmaker[Session]
) -> None:
    worker = start_worker()
    handle = fault_client.submit(
        "diagnostics.probe", {"seconds": 0.1, "faults": {"kill_on_attempts": [1, 2, 3, 4, 5, 6]}}
    )
    with pytest.raises(JobFailed) as caught:
        handle.result(timeout=90)
    assert caught.value.code == "worker_lost"
    assert "delivered 3 times" in caught.value.message
    row = job_row(service_sessions, handle.id)
    assert row is not None and row.attempts == 4  # the 4th delivery refused to run it
    assert [a for a, _ in _started(service_sessions, handle.id)] == [1, 2, 3]
    assert worker.alive()
    assert fault_client.submit("diagnostics.probe", {}).result(timeout=30)["attempt"] == 1


def test_dropped_database_connection_mid_job_leaves_no_half_row(  # type: ignore[no-untyped-def]
    start_worker, fault_client: Client, service_sessions: sessionmaker[Session], pg_url: str
) -> None:
    start_worker()
    handle = fault_client.submit(
        "diagnostics.probe",
        {"seconds": 0.1, "write_output": True, "faults": {"hold_transaction_s": 3}},
    )
    _pid_of(service_sessions, handle.id)
    database = pg_url.rsplit("/", 1)[1]
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://")

    def terminate_open_transactions() -> int:
        with psycopg.connect(admin, autocommit=True) as connection:
            return len(
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                    "AND state = 'idle in transaction' AND pid <> pg_backend_pid()",
                    (database,),
                ).fetchall()
            )

    eventually(terminate_open_transactions, interval=0.05, what="the held output transaction")
    result = handle.result(timeout=60)
    row = job_row(service_sessions, handle.id)
    # Retried after the transient error, which is not a lost delivery: still attempt 1.
    assert row is not None and (row.status, row.attempts) == ("SUCCEEDED", 1)
    with transaction(service_sessions) as session:
        started = [e.detail for e in JobRepository(session).events(handle.id, kind="started")]
    assert started == [{"redelivered": False, "retry": 0}, {"redelivered": False, "retry": 1}]
    datasets = datasets_of(service_sessions, handle.id)
    assert [d.id for d in datasets] == [result["dataset_id"]]


def test_fan_in_starts_the_follow_up_exactly_once(  # type: ignore[no-untyped-def]
    start_worker, fault_client: Client, service_sessions: sessionmaker[Session]
) -> None:
    start_worker()
    handle = fault_client.submit(
        "diagnostics.fanout", {"parts": 50, "part_seconds": 0.02, "kill_parts": [3, 17, 31, 49]}
    )
    # Redeliver some parts by hand as well: duplicates of parts 5-14 and 49.
    eventually(
        lambda: (
            (r := job_row(service_sessions, handle.id))
            and r.status in (JobStatus.WAITING, JobStatus.SUCCEEDED)
        ),
        what="the fan-out to start",
    )
    for part in [*range(5, 15), 49]:
        fault_client._app.send_task(
            PART_TASK,
            args=[
                {
                    "job_id": handle.id,
                    "group_id": handle.id,
                    "part": part,
                    "seconds": 0,
                    "kill": False,
                }
            ],
            queue="preprocessing",
        )
    assert handle.result(timeout=90) == {"parts": 50, "completed": 50}
    time.sleep(2)  # let every duplicate land
    with transaction(service_sessions) as session:
        events = JobRepository(session).events(handle.id, kind="follow_up_started")
        parts = session.scalar(
            select(func.count()).select_from(FanInPart).where(FanInPart.group_id == handle.id)
        )
    assert len(events) == 1
    assert parts == 50
    row = job_row(service_sessions, handle.id)
    assert row is not None and row.status == "SUCCEEDED"


@pytest.mark.parametrize(
    ("faults", "fragment"),
    [
        ({}, "soft time limit"),
        ({"ignore_soft_time_limit": True}, "hard time limit"),
    ],
)
def test_time_limits_end_the_job_failed(  # type: ignore[no-untyped-def]
    start_worker,
    fault_client: Client,
    service_sessions: sessionmaker[Session],
    faults: dict,
    fragment: str,
) -> None:
    worker = start_worker()
    handle = fault_client.submit(
        "diagnostics.probe", {"seconds": 30, "steps": 30, "faults": faults}
    )
    with pytest.raises(JobFailed) as caught:
        handle.result(timeout=60)
    assert caught.value.code == "time_limit_exceeded"
    assert fragment in caught.value.message and "CIPML_TIME_LIMITS" in caught.value.message
    row = job_row(service_sessions, handle.id)
    assert row is not None and row.attempts == 1 and row.finished_at is not None
    assert worker.alive()
    assert fault_client.submit("diagnostics.probe", {}).result(timeout=30)["steps"] == 1


def test_killed_pool_child_mid_ingest_registers_one_version(  # type: ignore[no-untyped-def]
    start_worker,
    fault_client: Client,
    service_sessions: sessionmaker[Session],
    fault_env: dict[str, str],
) -> None:
    start_worker()
    source = Path(fault_env["CIPML_DATA_ROOTS"]) / "big.csv"
    line = b"c1,2024-01-02,10.5,3\n"
    source.write_bytes(b"customer_id,date,amount,items\n" + line * 3_000_000)  # 63 MB
    handle = fault_client.submit("ingest_dataset", {"uri": "big.csv", "name": "big"})
    row = eventually(
        lambda: (
            (r := job_row(service_sessions, handle.id))
            and r.progress
            and r.progress.get("stage") == "ingest"
            and r.worker
            and r
        ),
        interval=0.02,
        what="the first ingest checkpoint",
    )
    os.kill(int(row.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    result = handle.result(timeout=120)
    assert result["rows"] == 3_000_000 and result["version"] == 1
    row = job_row(service_sessions, handle.id)
    assert row is not None and row.attempts == 2
    with transaction(service_sessions) as session:
        assert [d.id for d in DatasetRepository(session).versions("big")] == [result["dataset_id"]]


def test_a_failing_part_ends_its_job_instead_of_leaving_it_waiting(client: Client) -> None:
    handle = client.submit("diagnostics.fanout", {"parts": 4, "fail_parts": [2]})
    with pytest.raises(JobFailed) as failure:
        handle.wait(60)
    assert failure.value.code == "internal_error"
    assert "part 2 failed: RuntimeError: fault injection: part 2 fails" in str(failure.value)
    assert client.submit("diagnostics.probe", {}).wait(60) is not None  # still serving
