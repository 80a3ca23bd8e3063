"""Diagnostics jobs: walk the path a real job takes, to check a cluster (and to test it).

``probe`` reports progress through N checkpoints and can register a small dataset as its
output; ``fanout`` splits into parts finished by the fan-in helper. Fault injection (kill
the own process, hold a transaction open) is refused unless the settings allow it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from api_client.contract import ErrorCode
from api_client.schemas import FanoutParams, ProbeParams
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.fanin import FanInRepository
from storage.models import Dataset
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError
from workers.jobs.registry import Waiting

PART_TASK = "cipml.diagnostics.fanout_part"
FINALIZE_TASK = "cipml.diagnostics.fanout_finalize"


def _require_faults_allowed(ctx: JobContext) -> None:
    if not ctx.settings.allow_fault_injection:
        raise JobError(
            ErrorCode.FAULT_INJECTION_DISABLED,
            "fault injection is off on this worker; set "
            "CIPML_ALLOW_FAULT_INJECTION=1 on a test or drill cluster only",
        )


def kill_own_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def run_probe(ctx: JobContext, params: ProbeParams) -> dict[str, Any]:
    faults = params.faults
    if faults is not None:
        _require_faults_allowed(ctx)
    if params.steps == 0:  # a trivial job: the machinery alone (benchmarks)
        time.sleep(params.seconds)
    pause = params.seconds / max(params.steps, 1)
    for step in range(1, params.steps + 1):
        _sleep(pause, ignore_soft_limit=bool(faults and faults.ignore_soft_time_limit))
        ctx.progress(
            "probe", step, params.steps, f"probe: step {step}/{params.steps}", force=step == 1
        )
        if step == 1 and faults and ctx.attempt in faults.kill_on_attempts:
            kill_own_process()
        if faults and faults.raise_error and step == params.steps:
            raise RuntimeError("injected failure")
    result: dict[str, Any] = {"steps": params.steps, "attempt": ctx.attempt}
    if params.write_output:
        result["dataset_id"] = _write_output(ctx, params)
    return result


def _sleep(seconds: float, *, ignore_soft_limit: bool) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            time.sleep(left)
        except SoftTimeLimitExceeded:
            if not ignore_soft_limit:
                raise


def _write_output(ctx: JobContext, params: ProbeParams) -> int:
    """Register a tiny dataset; a second delivery finds the first one's (job, name) row."""
    body = json.dumps({"job_id": ctx.job_id, "steps": params.steps}, sort_keys=True).encode()
    stored = ctx.runtime.store.put_bytes(body)
    hold = params.faults.hold_transaction_s if params.faults else 0.0
    with ctx.session() as session:
        ArtifactRepository(session).record(stored, media_type="application/json")
        dataset, _ = DatasetRepository(session).register(
            Dataset(
                name=f"probe-{ctx.job_id}",
                source_sha256=stored.sha256,
                stored_sha256=stored.sha256,
                rows=1,
                columns=2,
                schema=[{"name": "job_id", "dtype": "string"}, {"name": "steps", "dtype": "int64"}],
                source_uri=None,
                created_by_job=ctx.job_id,
            )
        )
        session.flush()
        dataset_id = dataset.id
        if hold:
            time.sleep(hold)  # the connection may be dropped here: the whole write rolls back
    return dataset_id


def start_fanout(ctx: JobContext, params: FanoutParams) -> Waiting:
    if params.kill_parts or params.fail_parts:
        _require_faults_allowed(ctx)
    group_id = ctx.job_id
    with ctx.session() as session:
        FanInRepository(session).open(
            group_id,
            expected=params.parts,
            follow_up_task=FINALIZE_TASK,
            follow_up_queue=params.queue,
            follow_up_payload={"job_id": ctx.job_id},
            job_id=ctx.job_id,
        )
    for part in range(params.parts):
        ctx.send_after_commit(
            PART_TASK,
            {
                "job_id": ctx.job_id,
                "group_id": group_id,
                "part": part,
                "seconds": params.part_seconds,
                "kill": part in params.kill_parts,
                "fail": part in params.fail_parts,
            },
            queue=params.queue,
            task_id=f"{group_id}-part-{part}",
        )
    ctx.progress("fanout", 0, params.parts, f"fanout: sent {params.parts} parts", force=True)
    return Waiting(f"fanout: waiting for {params.parts} parts")


def run_part(
    payload: dict[str, Any], fault_marker_dir: Path, faults_allowed: bool
) -> dict[str, Any]:
    """One part's work; with ``kill`` it kills its process on its first delivery only."""
    time.sleep(float(payload.get("seconds", 0)))
    if payload.get("fail") and faults_allowed:
        raise RuntimeError(f"fault injection: part {payload['part']} fails")
    if payload.get("kill") and faults_allowed:
        marker = fault_marker_dir / f"{payload['group_id']}-{payload['part']}"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("killed once")
            kill_own_process()
    return {"part": payload["part"], "pid": os.getpid()}


def fanout_result(ctx: JobContext) -> dict[str, Any]:
    with ctx.session() as session:
        group = FanInRepository(session).get(ctx.job_id)
        assert group is not None
        return {"parts": group.expected, "completed": group.completed}
