"""What scoring tasks share in one worker process: settings, sessions, the artifact store,
the prediction log and its write buffer."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from storage.artifact_store import ArtifactStore
from storage.prediction_log import PredictionLog
from workers.deployment.log_buffer import LogBuffer
from workers.runtime import Runtime
from workers.settings import Settings


@dataclass
class ScoringServices:
    settings: Settings
    sessions: sessionmaker[Session]
    store: ArtifactStore
    log_store: PredictionLog
    log_buffer: LogBuffer


_services: dict[int, ScoringServices] = {}
_lock = threading.Lock()


def scoring_services(runtime: Runtime) -> ScoringServices:
    """One per process (keyed by the runtime's pid, like the runtime itself)."""
    with _lock:
        current = _services.get(runtime.pid)
        if current is None or current.sessions is not runtime.sessions:
            log_store = PredictionLog(runtime.settings.prediction_logs)
            current = ScoringServices(
                settings=runtime.settings,
                sessions=runtime.sessions,
                store=runtime.store,
                log_store=log_store,
                log_buffer=LogBuffer(
                    log_store, runtime.sessions, runtime.settings.prediction_log_flush_s
                ),
            )
            _services[runtime.pid] = current
        return current
