"""The Celery app: JSON only, late acks, one queue per job family, bounded tasks."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, signals
from kombu import Queue

from api_client import folder_transport
from api_client.contract import ALL_QUEUES
from api_client.embedded import is_embedded
from workers import logs
from workers.settings import Settings

TASK_MODULES = [
    "workers.control.tasks",
    "workers.diagnostics.tasks",
    "workers.preprocessing.tasks",
    "workers.training.tasks",
    "workers.deployment.tasks",
    "workers.monitoring.tasks",
    # The scheduler's sweeps run on workers; named, not imported (scheduler sits above).
    "scheduler.sweeps",
    "scheduler.retraining_tasks",
]


def create_app(settings: Settings) -> Celery:
    if is_embedded(settings.broker):
        folder_transport.install()  # atomic publishing on the folder broker
    app = Celery("cipml", broker=settings.broker, backend=settings.backend, include=TASK_MODULES)
    ssl = settings.redis_ssl_options()
    control_soft, control_hard = settings.limits_for("control")
    app.conf.update(
        # JSON only on the wire: nothing from the broker may run code when decoded.
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # At-least-once: ack after the work, requeue when the worker process dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name, routing_key=name) for name in ALL_QUEUES],
        task_default_queue="control",
        task_create_missing_queues=False,
        broker_transport_options=settings.broker_transport_options(),
        broker_connection_retry_on_startup=True,
        broker_use_ssl=ssl,
        redis_backend_use_ssl=ssl,
        # Default bound for tasks that get none per message (control, fan-in parts).
        task_soft_time_limit=control_soft,
        task_time_limit=control_hard,
        # What Flower and `celery events` show.
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_track_started=True,
        result_expires=7 * 24 * 3600,
        result_extended=False,
        worker_hijack_root_logger=True,
        worker_redirect_stdouts=False,
    )
    app.cipml_settings = settings
    _install_logging(settings)
    signals.worker_process_init.connect(_count_compute_process, weak=False)
    return app


def _count_compute_process(**_: Any) -> None:
    """Each pool process counts itself, so model fitting can share the machine's cores
    among them instead of every process starting one thread per core."""
    from workers.training.threads import register_process

    register_process()


def load_monitoring_kernels_on_start() -> None:
    """Each pool process of a worker that serves the monitoring queue loads the drift
    kernels as it starts, in a thread: in the background, because a pool process must
    report itself up within Celery's 4 s and a compile in a fresh checkout can take 2 s."""
    signals.worker_process_init.connect(_load_monitoring_kernels, weak=False)


def _load_monitoring_kernels(**_: Any) -> None:
    from workers.monitoring.drift_numeric import load_kernels

    threading.Thread(target=load_kernels, name="load-drift-kernels", daemon=True).start()


def _install_logging(settings: Settings) -> None:
    def setup(logger: logging.Logger, **_: Any) -> None:
        logs.configure(logger, settings.log_format)

    signals.after_setup_logger.connect(setup, weak=False)
    signals.after_setup_task_logger.connect(setup, weak=False)
