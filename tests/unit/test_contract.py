"""The contract validates requests the same way in the client and in the worker."""

from __future__ import annotations

import pytest

from api_client import Client, InvalidRequest
from api_client.client import job_id_for_key
from api_client.contract import CONTRACT_VERSION, ErrorCode, JobStatus, job_task_name
from api_client.schemas import ProbeParams, job_queue, validate_params
from workers.jobs.messages import JobMessage


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"seconds": "3"}, "seconds: Input should be a valid number"),
        ({"steps": 2.5}, "steps: Input should be a valid integer"),
        ({"steps": -1}, "steps: Input should be greater than or equal to 0"),
        ({"seconds": -1}, "seconds: Input should be greater than or equal to 0"),
        ({"queue": "gpu"}, "queue: Input should be"),
        ({"secnods": 1}, "secnods: Extra inputs are not permitted"),
        ({"write_output": "yes"}, "write_output: Input should be a valid boolean"),
        ({"faults": {"kill_on_attempts": [0]}}, "faults.kill_on_attempts.0"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params: dict, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_params("diagnostics.probe", params)
    assert caught.value.code == ErrorCode.INVALID_PARAMS
    assert fragment in caught.value.message


def test_unknown_job_type_lists_the_known_ones() -> None:
    with pytest.raises(InvalidRequest) as caught:
        validate_params("training.frobnicate", {})
    assert caught.value.code == ErrorCode.UNKNOWN_JOB_TYPE
    assert "diagnostics.probe" in caught.value.message
    assert isinstance(caught.value, ValueError)


def test_params_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        validate_params("diagnostics.probe", [1, 2])


def test_valid_params_get_defaults_and_a_queue() -> None:
    params = validate_params("diagnostics.probe", {"seconds": 1})
    assert isinstance(params, ProbeParams)
    assert (params.seconds, params.steps, params.queue) == (1.0, 1, "preprocessing")
    assert job_queue("diagnostics.probe", params) == "preprocessing"
    assert (
        job_queue("diagnostics.probe", validate_params("diagnostics.probe", {"queue": "training"}))
        == "training"
    )


def test_idempotency_key_maps_to_one_job_id() -> None:
    assert job_id_for_key("order-17") == job_id_for_key("order-17")
    assert job_id_for_key("order-17") != job_id_for_key("order-18")
    assert len(job_id_for_key("x")) == 32


def test_client_refuses_before_sending() -> None:
    # Port 1 has no broker: an InvalidRequest proves nothing was sent.
    client = Client("redis://127.0.0.1:1/0")
    with pytest.raises(InvalidRequest):
        client.submit("diagnostics.probe", {"seconds": "soon"})
    with pytest.raises(InvalidRequest, match="unknown job type"):
        client.submit("nope", {})
    with pytest.raises(InvalidRequest):  # NaN is not JSON
        client.submit("diagnostics.probe", {"seconds": float("nan")})
    with pytest.raises(InvalidRequest, match="unknown status"):
        client.jobs(status="DONE")


def test_result_backend_required_for_non_redis_broker() -> None:
    with pytest.raises(InvalidRequest, match="result_backend"):
        Client("amqp://guest@127.0.0.1//")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not a dict", ErrorCode.INVALID_MESSAGE),
        ({"job_id": "a", "job_type": "t"}, ErrorCode.INVALID_MESSAGE),
        (
            {"contract": CONTRACT_VERSION + 1, "job_id": "a", "job_type": "t"},
            ErrorCode.CONTRACT_VERSION_UNSUPPORTED,
        ),
        ({"contract": CONTRACT_VERSION, "job_id": 5, "job_type": "t"}, ErrorCode.INVALID_MESSAGE),
    ],
)
def test_job_messages_are_checked(raw: object, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        JobMessage.parse(raw)
    assert caught.value.code == code


def test_job_message_round_trip() -> None:
    message = JobMessage(job_id="j1", job_type="diagnostics.probe")
    assert JobMessage.parse(message.to_json()) == message


def test_statuses_and_names() -> None:
    assert {s for s in JobStatus if s.is_terminal} == {"SUCCEEDED", "FAILED", "CANCELLED"}
    assert job_task_name("diagnostics.probe") == "cipml.job.diagnostics.probe"
