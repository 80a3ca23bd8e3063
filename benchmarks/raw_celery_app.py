"""The raw Celery baseline of the job-overhead benchmark: one no-op task, nothing else.

Configured like the service's app where it matters for the comparison (JSON only, late
acks, prefetch multiplier 1) and otherwise left at Celery's defaults. The worker is
started by ``benchmarks/job_overhead.py`` as::

    BENCH_RAW_BROKER_URL=redis://127.0.0.1:6379/15 \\
        python -m celery -A benchmarks.raw_celery_app worker -c 2 --loglevel WARNING

(cwd: the repository root). The broker doubles as the result backend, as in the service.
"""

from __future__ import annotations

import os
import time

from celery import Celery

NOOP_TASK = "bench.noop"
RAW_QUEUE = "bench_raw"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/15"


def noop() -> float:
    """Does nothing; returns the wall-clock time it started (for send -> started latency)."""
    return time.time()


def create_app(broker_url: str) -> Celery:
    app = Celery("bench-raw", broker=broker_url, backend=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_default_queue=RAW_QUEUE,
        broker_connection_retry_on_startup=True,
    )
    app.task(name=NOOP_TASK)(noop)
    return app


app = create_app(os.environ.get("BENCH_RAW_BROKER_URL", DEFAULT_BROKER_URL))
