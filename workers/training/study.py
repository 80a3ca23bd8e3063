"""The shared Optuna study of a training job: its RDB storage, with heartbeats.

Optuna's heartbeat runs only inside ``study.optimize()`` (not with ask/tell, optuna#3293):
a runner killed mid-trial stops beating, the next ``optimize()`` call on the study marks
its trial failed, and RetryHeartbeatStaleTrialCallback (Optuna 4.9+) queues the same
parameters again as a WAITING trial, which the next trial to start picks up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is our job, not theirs

# A trial killed three times in a row is not retried again (its slot is, with new params).
STALE_TRIAL_RETRIES = 3

_storages: dict[tuple[str, int, int], RDBStorage] = {}
_INIT_LOCK = 0x63697062  # "cipb": Optuna's table creation


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def study_storage(url: str, heartbeat_s: int) -> RDBStorage:
    """The RDB storage at ``url`` for this process (built once; never across a fork)."""
    key = (url, os.getpid(), heartbeat_s)
    storage = _storages.get(key)
    if storage is None:
        with _initialising(url):
            storage = RDBStorage(
                url,
                engine_kwargs={"pool_pre_ping": True} if not is_sqlite(url) else None,
                heartbeat_interval=heartbeat_s,
                grace_period=3 * heartbeat_s,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=STALE_TRIAL_RETRIES
                ),
            )
        _storages[key] = storage
    return storage


@contextmanager
def _initialising(url: str) -> Iterator[None]:
    """Hold a lock while Optuna creates its tables: two processes creating them at once
    on a fresh database collide (duplicate alembic_version). PostgreSQL: an advisory lock,
    after creating the schema a ``search_path`` option in ``url`` names (Optuna keeps its
    tables, and its own alembic_version, out of the job database's schema). SQLite runs
    one writer at a time already."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        yield
        return
    engine = create_engine(parsed.difference_update_query(["options"]))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _INIT_LOCK})
            try:
                schema = _search_path_schema(url)
                if schema:
                    quoted = connection.dialect.identifier_preparer.quote_identifier(schema)
                    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted}"))
                    connection.commit()
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _INIT_LOCK})
                connection.commit()
    finally:
        engine.dispose()


def _search_path_schema(url: str) -> str | None:
    options = make_url(url).query.get("options", "")
    option = options if isinstance(options, str) else " ".join(options)
    for part in option.split():
        if part.startswith("-csearch_path="):
            return part.split("=", 1)[1].split(",")[0].strip() or None
    return None


def open_study(
    url: str,
    heartbeat_s: int,
    name: str,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    return optuna.load_study(
        study_name=name,
        storage=study_storage(url, heartbeat_s),
        sampler=sampler,
        pruner=pruner,
    )


def create_study(
    url: str,
    heartbeat_s: int,
    name: str,
    direction: Literal["minimize", "maximize"],
    attrs: dict[str, object],
) -> optuna.Study:
    """Create the study (or load it: a redelivered coordinator finds it made)."""
    study = optuna.create_study(
        study_name=name,
        storage=study_storage(url, heartbeat_s),
        direction=direction,
        load_if_exists=True,
    )
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    return study
