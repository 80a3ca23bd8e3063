"""Real PostgreSQL and Redis for tests: a database and a Redis db number per test run.

Locally a missing service skips the tests that need it; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN_URL = os.environ.get("CIPML_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_HOST = os.environ.get("CIPML_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("CIPML_TEST_REDIS_PORT", "6379"))
LOCK_KEY = "cipml:test-run-lock"


def missing(service: str, exc: BaseException) -> None:
    message = f"{service} is not reachable ({exc}); start it (see README, 'Run the tests')"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database for this run; dropped (with its connections) at the end."""
    import psycopg

    name = f"cipml_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        missing("PostgreSQL at " + PG_ADMIN_URL, exc)
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            yield f"{base}/{name}"
        finally:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextmanager
def redis_database() -> Iterator[str]:
    """An unused Redis db number (1-15), held by a lock key for the run, flushed after."""
    import redis

    token = uuid.uuid4().hex
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        missing(f"Redis at {REDIS_HOST}:{REDIS_PORT}", exc)
        raise
    for number in range(1, 16):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
        if client.dbsize() == 0 and client.set(LOCK_KEY, token, nx=True, ex=4 * 3600):
            break
    else:
        pytest.fail("no free Redis db number (1-15) for this test run", pytrace=False)
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
    finally:
        client.flushdb()
