"""Jobs through real workers on Redis and PostgreSQL: lifecycle, progress, idempotence,
cancel, listings, and every bad input ending FAILED with its code while the worker serves on.
"""

from __future__ import annotations

import json
import uuid

import pytest
from kombu import Connection, Exchange, Producer
from sqlalchemy.orm import Session, sessionmaker

from api_client import Client, InvalidRequest, JobCancelled, JobFailed, JobNotFound, JobStatus
from api_client.contract import CONTRACT_VERSION, TaskName
from tests.acceptance.helpers import (
    datasets_of,
    event_kinds,
    eventually,
    job_row,
    row_counts,
)
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.slow


def test_probe_runs_with_progress_and_resources(
    client: Client, service_sessions: sessionmaker[Session]
) -> None:
    handle = client.submit("diagnostics.probe", {"seconds": 1.5, "steps": 5, "write_output": True})
    lines: set[str] = set()
    eventually(
        lambda: ((p := handle.progress()) and lines.add(p.line)) or len(lines) >= 2,
        what="two progress lines",
        interval=0.05,
    )
    result = handle.wait(timeout=30, progress=False)
    assert result["steps"] == 5 and result["attempt"] == 1
    info = client.job(handle.id)
    assert info.status == JobStatus.SUCCEEDED and info.attempts == 1
    assert info.progress is not None and info.progress.line == "probe: step 5/5"
    assert info.wall_s is not None and 1.4 < info.wall_s < 10
    assert info.cpu_s is not None and info.cpu_s >= 0
    assert info.peak_rss_bytes is not None and info.peak_rss_bytes > 10 << 20
    assert info.started_at and info.finished_at and info.started_at <= info.finished_at
    assert [d.id for d in datasets_of(service_sessions, handle.id)] == [result["dataset_id"]]
    assert event_kinds(service_sessions, handle.id) == ["submitted", "started", "succeeded"]


def test_duplicate_submit_is_the_same_job(
    client: Client, service_sessions: sessionmaker[Session]
) -> None:
    job_id = uuid.uuid4().hex
    first = client.submit(
        "diagnostics.probe", {"seconds": 0.3, "write_output": True}, job_id=job_id
    )
    second = client.submit(
        "diagnostics.probe", {"seconds": 0.3, "write_output": True}, job_id=job_id
    )
    assert first.id == second.id == job_id
    first.result(timeout=30)
    second.result(timeout=30)
    assert event_kinds(service_sessions, job_id).count("started") == 1
    assert len(datasets_of(service_sessions, job_id)) == 1

    key = f"nightly-{uuid.uuid4().hex}"
    by_key = [client.submit("diagnostics.probe", {}, idempotency_key=key) for _ in range(3)]
    assert len({h.id for h in by_key}) == 1
    by_key[0].result(timeout=30)
    assert event_kinds(service_sessions, by_key[0].id).count("started") == 1


def test_cancel_running_queued_and_finished(client: Client) -> None:
    running = client.submit("diagnostics.probe", {"seconds": 30, "steps": 60})
    eventually(lambda: running.status() == JobStatus.RUNNING, what="running")
    assert "stops at its next checkpoint" in running.cancel()
    with pytest.raises(JobCancelled):
        running.result(timeout=30)
    info = client.job(running.id)
    assert info.status == JobStatus.CANCELLED and info.error and info.error.code == "cancelled"

    done = client.submit("diagnostics.probe", {})
    done.result(timeout=30)
    message = done.cancel()
    assert "already ended SUCCEEDED; nothing to cancel" in message
    assert client.job(done.id).status == JobStatus.SUCCEEDED


def test_cancel_of_a_queued_job_ends_it_before_it_runs(
    client: Client, service_sessions: sessionmaker[Session]
) -> None:
    # Two long probes occupy both pool processes, so the third waits in the queue.
    blockers = [client.submit("diagnostics.probe", {"seconds": 4, "steps": 4}) for _ in range(2)]
    eventually(
        lambda: all(b.status() == JobStatus.RUNNING for b in blockers),
        what="both pool processes busy",
    )
    queued = client.submit("diagnostics.probe", {"seconds": 0.1, "write_output": True})
    eventually(lambda: queued.status() == JobStatus.QUEUED, what="queued")
    assert queued.cancel().endswith("cancelled")
    with pytest.raises(JobCancelled):
        queued.result(timeout=30)
    for blocker in blockers:
        blocker.result(timeout=30)
    assert "started" not in event_kinds(service_sessions, queued.id)
    assert datasets_of(service_sessions, queued.id) == []


def test_listing_and_lookup(client: Client) -> None:
    handle = client.submit("diagnostics.probe", {})
    handle.result(timeout=30)
    listed = client.jobs(status="SUCCEEDED", job_type="diagnostics.probe", limit=500)
    assert handle.id in {job.id for job in listed}
    assert all(job.status == "SUCCEEDED" for job in listed)
    with pytest.raises(JobNotFound):
        client.job("no-such-job")


def test_unexpected_error_fails_the_job_and_the_worker_serves_on(client: Client) -> None:
    crashing = client.submit("diagnostics.probe", {"faults": {"raise_error": True}})
    with pytest.raises(JobFailed) as caught:
        crashing.result(timeout=30)
    assert caught.value.code == "internal_error"
    assert "RuntimeError: injected failure" in caught.value.message
    assert client.submit("diagnostics.probe", {}).result(timeout=30)["attempt"] == 1


# ------------------------------------------------------------------ bad input


def _raw_submit(client: Client, payload: object) -> None:
    client._app.send_task(TaskName.SUBMIT.value, args=[payload], queue="control")


def _still_serving(client: Client) -> None:
    assert client.submit("diagnostics.probe", {}).result(timeout=30)["steps"] == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"job_type": "training.frobnicate", "params": {}}, "unknown_job_type"),
        ({"job_type": "diagnostics.probe", "params": {"seconds": "3"}}, "invalid_params"),
        ({"job_type": "diagnostics.probe", "params": {"steps": 2, "extra": 1}}, "invalid_params"),
        ({"job_type": "diagnostics.probe", "params": [1]}, "invalid_message"),
        (
            {
                "job_type": "diagnostics.probe",
                "params": {},
                "contract": CONTRACT_VERSION + 1,
                "new_field": "from the future",
            },
            "contract_version_unsupported",
        ),
    ],
)
def test_bad_requests_sent_raw_end_failed(
    client: Client, service_sessions: sessionmaker[Session], payload: dict, code: str
) -> None:
    before = row_counts(service_sessions)
    job_id = uuid.uuid4().hex
    _raw_submit(client, {"contract": CONTRACT_VERSION, "job_id": job_id, **payload})
    with pytest.raises(JobFailed) as caught:
        client.handle(job_id).result(timeout=30)
    assert caught.value.code == code
    row = job_row(service_sessions, job_id)
    assert row is not None and row.status == "FAILED" and row.attempts == 0
    assert row.error_message and len(row.error_message) > 20
    after = row_counts(service_sessions)
    assert after["jobs"] == before["jobs"] + 1
    assert (after["datasets"], after["artifacts"], after["fan_in_groups"]) == (
        before["datasets"],
        before["artifacts"],
        before["fan_in_groups"],
    )
    _still_serving(client)


def test_wrong_types_are_refused_by_the_client_before_sending(
    client: Client, service_sessions: sessionmaker[Session]
) -> None:
    before = row_counts(service_sessions)
    with pytest.raises(InvalidRequest, match="seconds"):
        client.submit("diagnostics.probe", {"seconds": "3"})
    assert row_counts(service_sessions) == before


@pytest.mark.parametrize(
    ("content_type", "body", "refusal"),
    [
        (
            "application/x-python-serialize",
            b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00N.",
            "Refusing to deserialize untrusted content of type pickle",
        ),
        ("application/json", b'{"not json', "Can't decode message body"),
        (
            "application/x-yaml",
            b"- !!python/object/apply:os.system ['true']",
            "Refusing to deserialize untrusted content of type yaml",
        ),
    ],
)
def test_non_json_messages_are_refused_without_running(
    client: Client,
    worker: WorkerProcess,
    service_sessions: sessionmaker[Session],
    content_type: str,
    body: bytes,
    refusal: str,
) -> None:
    before = row_counts(service_sessions)
    refusals_before = worker.log().count(refusal)
    with Connection(client._app.conf.broker_url) as connection:
        producer = Producer(connection.default_channel)
        producer.publish(
            body,
            exchange=Exchange("control", type="direct"),
            routing_key="control",
            content_type=content_type,
            content_encoding="binary",
            headers={
                "task": TaskName.SUBMIT.value,
                "id": uuid.uuid4().hex,
                "lang": "py",
                "argsrepr": "",
                "kwargsrepr": "",
            },
        )
    eventually(
        lambda: worker.log().count(refusal) > refusals_before, what="the refusal in the worker log"
    )
    _still_serving(client)
    assert row_counts(service_sessions)["jobs"] == before["jobs"] + 1  # only _still_serving's
    assert worker.alive()


def test_a_client_with_a_newer_contract_message_is_recorded_not_lost(
    client: Client, service_sessions: sessionmaker[Session]
) -> None:
    job_id = uuid.uuid4().hex
    _raw_submit(
        client, {"contract": 99, "job_id": job_id, "job_type": "diagnostics.probe", "params": {}}
    )
    info = eventually(lambda: job_row(service_sessions, job_id), what="the FAILED record")
    assert info.error_code == "contract_version_unsupported"
    assert "upgrade the workers" in (info.error_message or "")
    assert json.loads(json.dumps(client.job(job_id).model_dump(mode="json")))["status"] == "FAILED"


def test_reads_from_a_newer_contract_are_refused(client: Client) -> None:
    with pytest.raises(InvalidRequest) as caught:
        client._call(TaskName.GET_JOB.value, {"contract": CONTRACT_VERSION + 1, "job_id": "x"})
    assert caught.value.code == "contract_version_unsupported"
