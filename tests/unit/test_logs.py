"""Structured logs carry the job id, from our code and from Celery's task records."""

from __future__ import annotations

import json
import logging

from workers.logs import JobIdFilter, JsonFormatter, job_logging


def _format(name: str, message: str, **extra: object) -> dict:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    JobIdFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_job_id_from_the_running_job() -> None:
    with job_logging("job-1"):
        entry = _format("cipml.job", "progress", data={"error_code": None})
    assert (entry["job_id"], entry["msg"], entry["data"]) == (
        "job-1",
        "progress",
        {"error_code": None},
    )
    assert _format("cipml.job", "outside")["job_id"] is None


def test_celery_task_records_get_their_ids() -> None:
    job = _format(
        "celery.app.trace",
        "Task succeeded",
        data={"id": "abc", "name": "cipml.job.diagnostics.probe"},
    )
    assert (job["job_id"], job["task_id"]) == ("abc", "abc")
    control = _format(
        "celery.app.trace", "Task succeeded", data={"id": "x-1", "name": "cipml.control.get_job"}
    )
    assert (control["job_id"], control["task_id"]) == (None, "x-1")
    assert "data" not in control
