"""Inline predictions reach the log in batches: a per-process buffer flushed by a
background thread every CIPML_PREDICTION_LOG_FLUSH_S (and when the process stops), so a
one-row predict call never waits for a Parquet write. The cost: a process killed with
SIGKILL loses the predictions of its last flush interval from the log (not the replies)."""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
from collections import defaultdict

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from storage.db import transaction
from storage.prediction_log import PredictionLog

log = logging.getLogger("cipml.scoring")


class LogBuffer:
    def __init__(
        self,
        log_store: PredictionLog,
        sessions: sessionmaker[Session],
        flush_s: float,
        max_rows: int = 50_000,
    ) -> None:
        self.log_store = log_store
        self.sessions = sessions
        self.flush_s = flush_s
        self.max_rows = max_rows
        self._pending: dict[str, list[pd.DataFrame]] = defaultdict(list)
        self._rows = 0
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        atexit.register(self.flush)

    def add(self, model_name: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        with self._lock:
            self._pending[model_name].append(frame)
            self._rows += len(frame)
            full = self._rows >= self.max_rows
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="cipml-prediction-log", daemon=True
                )
                self._thread.start()
        if full or self.flush_s == 0:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_s or None)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the next interval retries what is still pending
                log.exception("prediction log flush failed; retrying next interval")

    def flush(self) -> int:
        """Write everything pending, one Parquet batch per model; returns rows written."""
        with self._flushing:
            with self._lock:
                pending, self._pending, self._rows = self._pending, defaultdict(list), 0
            written = 0
            models = list(pending)
            for done, model_name in enumerate(models):
                batch = pd.concat(pending[model_name], ignore_index=True)
                try:
                    with transaction(self.sessions) as session:
                        written += self.log_store.write(
                            session, model_name, batch, f"inline-{uuid.uuid4().hex}"
                        )
                except Exception:
                    with self._lock:  # keep it, and the models not reached, for the next flush
                        self._pending[model_name].insert(0, batch)
                        self._rows += len(batch)
                        for later in models[done + 1 :]:
                            items = pending[later]
                            self._pending[later][:0] = items
                            self._rows += sum(len(item) for item in items)
                    raise
            return written
