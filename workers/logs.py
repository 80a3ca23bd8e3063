"""Structured logs: one JSON object per line, carrying the job id of the task that wrote it."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

current_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)


@contextmanager
def job_logging(job_id: str) -> Iterator[None]:
    token = current_job_id.set(job_id)
    try:
        yield
    finally:
        current_job_id.reset(token)


class JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = current_job_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "job_id": getattr(record, "job_id", None) or current_job_id.get(),
            "msg": record.getMessage(),
        }
        data = getattr(record, "data", None)
        if record.name.startswith("cipml") and data is not None:
            entry["data"] = data
        elif isinstance(data, dict) and data.get("id"):
            # Celery's own task records: the task id, which is the job id for job tasks.
            entry["task_id"] = data["id"]
            if entry["job_id"] is None and str(data.get("name", "")).startswith("cipml.job."):
                entry["job_id"] = data["id"]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s [job=%(job_id)s] %(name)s: %(message)s"


def configure(logger: logging.Logger, fmt: str) -> None:
    """Give every handler of ``logger`` our format and the job-id filter."""
    formatter: logging.Formatter = (
        JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    )
    for handler in logger.handlers:
        handler.setFormatter(formatter)
        handler.addFilter(JobIdFilter())
