"""Celery tasks of the diagnostics jobs (thin: the work is in probe.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Task, shared_task

from api_client.contract import job_task_name
from workers.diagnostics import probe
from workers.fanin import run_part
from workers.jobs.lifecycle import JobTask, run_follow_up, run_job
from workers.runtime import Runtime


@shared_task(name=job_task_name("diagnostics.probe"), bind=True, base=JobTask)
def probe_job(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, probe.run_probe)


@shared_task(name=job_task_name("diagnostics.fanout"), bind=True, base=JobTask)
def fanout_job(self: Task, message: Any) -> dict[str, Any]:
    return run_job(self, message, probe.start_fanout)


@shared_task(
    name=probe.PART_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def fanout_part(self: Task, payload: dict[str, Any]) -> bool:
    def work(_task: Task, runtime: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
        settings = runtime.settings
        faults = Path(settings.home) / "faults"
        return probe.run_part(payload, faults, settings.allow_fault_injection)

    return run_part(self, payload, work)


@shared_task(name=probe.FINALIZE_TASK, bind=True, base=JobTask)
def fanout_finalize(self: Task, payload: Any) -> dict[str, Any]:
    return run_follow_up(self, payload, probe.fanout_result)
