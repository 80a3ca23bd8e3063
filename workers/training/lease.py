"""Keep a training job's admission slot while one of its steps works: a thread renews the
lease every heartbeat, so a long fit never lets the slot expire under a live job."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from storage.admission import AdmissionRepository
from storage.db import transaction
from workers.runtime import Runtime

log = logging.getLogger("cipml.training")


def renew_lease(runtime: Runtime, job_id: str) -> None:
    with transaction(runtime.sessions) as session:
        AdmissionRepository(session).renew(job_id, runtime.settings.training_lease_s)


@contextmanager
def lease_kept(runtime: Runtime, job_id: str) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(runtime.settings.trial_heartbeat_s):
            try:
                renew_lease(runtime, job_id)
            except Exception as exc:  # the next beat retries; the lease has slack
                log.warning("training slot renewal failed: %s", exc)

    renew_lease(runtime, job_id)
    thread = threading.Thread(target=beat, name="training-slot-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
