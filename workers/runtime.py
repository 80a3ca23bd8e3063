"""Per-process resources a task needs: settings, database sessions, artifact store.

Built lazily in each worker process (never before the pool forks: an engine must not be
shared across a fork) and keyed by pid so a forked child builds its own.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from celery import Celery
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage.artifact_store import ArtifactStore
from storage.db import make_engine, make_session_factory
from workers.settings import Settings


@dataclass
class Runtime:
    app: Celery
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ArtifactStore
    pid: int

    @property
    def worker_name(self) -> str:
        return f"{socket.gethostname()}:{self.pid}"


_runtimes: dict[int, Runtime] = {}


def runtime_for(app: Celery) -> Runtime:
    pid = os.getpid()
    current = _runtimes.get(id(app))
    if current is None or current.pid != pid:
        settings: Settings = app.cipml_settings
        # Enough connections for a threads pool (the control worker runs 4 threads by
        # default); a prefork child only ever opens the one it uses.
        engine = make_engine(settings.database, pool_size=8)
        current = Runtime(
            app=app,
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            store=ArtifactStore(settings.artifacts),
            pid=pid,
        )
        _runtimes[id(app)] = current
    return current
