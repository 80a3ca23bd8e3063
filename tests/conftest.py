"""Fixtures for real services: PostgreSQL databases, Redis db numbers, worker processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client
from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade
from storage.models import Base
from tests.support.services import postgres_database, redis_database
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.workers import WorkerProcess


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database shared by the service tests of this run."""
    with postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def pg_repo_url() -> Iterator[str]:
    """A second migrated database for repository tests (emptied between tests)."""
    with postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """One repository test suite over every backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'repo.sqlite'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("pg_repo_url")
    engine = make_engine(url)
    yield make_session_factory(engine)
    if request.param == "postgresql":
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


def service_environment(pg: str, redis: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPML_")}
    env.update(
        {
            "CIPML_BROKER_URL": redis,
            "CIPML_DATABASE_URL": pg,
            "CIPML_HOME": str(home),
            "CIPML_ARTIFACT_ROOT": str(home / "artifacts"),
            "CIPML_ALLOW_FAULT_INJECTION": "1",
            "CIPML_PROGRESS_INTERVAL_S": "0",
            "CIPML_LOG_LEVEL": "INFO",
            "CIPML_DATA_ROOTS": str(home / "data"),
            "CIPML_INGEST_BLOCK_BYTES": str(1 << 20),  # several blocks from a few MB
            "CIPML_CLEAN_KNN_MAX_ROWS": "20000",  # the bundled CDNOW log is above it
            # A killed trial runner is noticed in seconds (stale after 3 beats).
            "CIPML_TRIAL_HEARTBEAT_S": "2",
            # Inline predictions reach the log within a fifth of a second.
            "CIPML_PREDICTION_LOG_FLUSH_S": "0.2",
        }
    )
    env.update(extra)
    (home / "data").mkdir(parents=True, exist_ok=True)
    return env


@pytest.fixture(scope="session")
def webhooks() -> Iterator[WebhookReceiver]:
    """The alert webhook of every worker the tests start (a local receiver)."""
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture(scope="session")
def service_env(
    pg_url: str,
    redis_url: str,
    webhooks: WebhookReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    return service_environment(
        pg_url,
        redis_url,
        tmp_path_factory.mktemp("cipml-home"),
        CIPML_ALERT_WEBHOOKS=webhooks.url,
        CIPML_WEBHOOK_SECRET=WEBHOOK_SECRET,
        CIPML_WEBHOOK_TIMEOUT_S="1",
    )


@pytest.fixture(scope="session")
def worker(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """Two pool processes serving every queue, for the whole run."""
    process = WorkerProcess(
        service_env, tmp_path_factory.mktemp("logs") / "worker.log", concurrency=2, name="shared"
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def client(service_env: dict[str, str], worker: WorkerProcess) -> Iterator[Client]:
    with Client(service_env["CIPML_BROKER_URL"], control_timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def service_sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    """Direct database access for asserting on what the workers wrote."""
    engine = make_engine(pg_url)
    yield make_session_factory(engine)
    engine.dispose()
