"""Request and response schemas (pydantic), validated by the client and again by workers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api_client.contract import CONTRACT_VERSION, Queue

# Literal, not the Queue enum: strict models accept plain JSON strings for literals.
QueueName = Literal["control", "preprocessing", "training", "trials", "scoring", "monitoring"]

JobId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class StrictModel(BaseModel):
    """Unknown fields and silent type coercion are refused: a typo is an error, not a default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---------------------------------------------------------------- job params


class ProbeFaults(StrictModel):
    """Fault injection for tests and drills; refused unless CIPML_ALLOW_FAULT_INJECTION=1."""

    kill_on_attempts: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list,
        description="SIGKILL the process running the job at its first checkpoint on these attempts",
    )
    hold_transaction_s: float = Field(
        0.0, ge=0, le=600, description="keep the output transaction open this long before commit"
    )
    raise_error: bool = Field(False, description="raise an unexpected exception mid-job")
    ignore_soft_time_limit: bool = Field(
        False, description="keep working past the soft time limit (until the hard one kills it)"
    )


class ProbeParams(StrictModel):
    """diagnostics.probe: walks the path a real job takes (queue, progress, storage, artifacts)."""

    seconds: float = Field(0.0, ge=0, le=3600, description="total time spent in checkpoints")
    steps: int = Field(1, ge=1, le=10_000, description="progress checkpoints")
    queue: QueueName = Field("preprocessing", description="queue to run on (probe any family)")
    write_output: bool = Field(False, description="register a small dataset as the job's output")
    faults: ProbeFaults | None = None


class FanoutParams(StrictModel):
    """diagnostics.fanout: N parts on the queue, finished by the shared fan-in helper."""

    parts: int = Field(10, ge=1, le=10_000)
    part_seconds: float = Field(0.0, ge=0, le=600)
    queue: QueueName = "preprocessing"
    kill_parts: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list, description="parts that SIGKILL their process on first delivery"
    )


# Job types known to this contract: name -> (params schema, queue when params name none).
JOB_TYPES: dict[str, type[StrictModel]] = {
    "diagnostics.probe": ProbeParams,
    "diagnostics.fanout": FanoutParams,
}


def job_queue(job_type: str, params: BaseModel) -> str:
    """The broker queue a job of this type runs on."""
    queue = getattr(params, "queue", None)
    if queue is not None:
        return str(Queue(queue).value)
    family = job_type.split(".", 1)[0]
    return family if family in Queue._value2member_map_ else Queue.CONTROL.value


# ---------------------------------------------------------------- envelopes


class SubmitRequest(BaseModel):
    """Body of ``cipml.control.submit``. Params are validated against JOB_TYPES separately so
    that an unknown type or bad params end as a FAILED job row rather than a lost message."""

    model_config = ConfigDict(extra="forbid")

    contract: int = CONTRACT_VERSION
    job_id: JobId
    job_type: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    parent_id: JobId | None = None
    submitted_at: datetime | None = None


class Progress(BaseModel):
    stage: str = ""
    done: float = 0
    total: float | None = None
    line: str = ""
    updated_at: datetime | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str


class JobInfo(BaseModel):
    """One job as the service records it (the jobs table is the durable record)."""

    id: str
    type: str
    status: str
    params: dict[str, Any] = Field(default_factory=dict)
    progress: Progress | None = None
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    attempts: int = 0
    idempotency_key: str | None = None
    parent_id: str | None = None
    cancel_requested: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_bytes: int | None = None


class JobSummary(BaseModel):
    """What the result backend holds under a job id once the job has ended."""

    contract: int = CONTRACT_VERSION
    job_id: str
    status: str
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None


class ControlReply(BaseModel):
    """Reply of every control task."""

    contract: int = CONTRACT_VERSION
    ok: bool
    job: JobInfo | None = None
    jobs: list[JobInfo] | None = None
    message: str | None = None
    error: ErrorInfo | None = None


class ListJobsRequest(StrictModel):
    contract: int = CONTRACT_VERSION
    status: list[str] | None = None
    job_type: str | None = None
    limit: int = Field(50, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class JobRef(StrictModel):
    contract: int = CONTRACT_VERSION
    job_id: JobId
    actor: str | None = None


Reason = Literal["cancelled", "already_finished"]


def validate_params(job_type: str, params: object) -> StrictModel:
    """Check ``params`` against the schema of ``job_type``; InvalidRequest names the fault."""
    from api_client.errors import InvalidRequest

    schema = JOB_TYPES.get(job_type)
    if schema is None:
        known = ", ".join(sorted(JOB_TYPES))
        raise InvalidRequest(
            f"unknown job type {job_type!r}; known types: {known}", code="unknown_job_type"
        )
    if not isinstance(params, dict):
        raise InvalidRequest(
            f"params of {job_type} must be a JSON object, got {type(params).__name__}"
        )
    try:
        return schema.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}"
            f" (got {err.get('input')!r})"
            if err["type"] != "missing"
            else f"{'.'.join(str(p) for p in err['loc'])}: required"
            for err in exc.errors()
        )
        raise InvalidRequest(f"invalid params for {job_type}: {problems}") from None
