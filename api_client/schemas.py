"""Request and response schemas (pydantic), validated by the client and again by workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api_client.contract import CONTRACT_VERSION, Queue
from api_client.feature_params import BuildFeaturesParams
from api_client.monitoring_params import CheckParams
from api_client.quality_params import AssessQualityParams, CleanParams
from api_client.registry_params import ForgetCustomerParams, RetentionParams, ScoreDatasetParams
from api_client.strict import DatasetName, StrictModel
from api_client.train_params import TrainParams

# Literal, not the Queue enum: strict models accept plain JSON strings for literals.
QueueName = Literal["control", "preprocessing", "training", "trials", "scoring", "monitoring"]

JobId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


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
    steps: int = Field(1, ge=0, le=10_000, description="progress checkpoints (0: none)")
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
    fail_parts: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list, description="parts that raise an unexpected error"
    )


DType = Literal["int64", "float64", "string", "bool", "timestamp", "date"]


class IngestParams(StrictModel):
    """ingest_dataset: a CSV or Parquet file inside the data roots (or an fsspec URL under a
    root) becomes a registered Parquet dataset."""

    uri: str = Field(
        min_length=1,
        max_length=4096,
        description=(
            "path inside a data root (relative paths are looked up in the roots), or a URL "
            "under a root such as s3://bucket/in/orders.csv"
        ),
    )
    name: DatasetName = Field(
        description="dataset name; each new source registers the next version",
    )
    dtypes: dict[str, DType] | None = Field(
        None, description=("declared column types (the rest are inferred from the first block)")
    )
    format: Literal["csv", "parquet"] | None = Field(
        None, description=("file format; default from the file name (.csv, .csv.gz, .parquet)")
    )


@dataclass(frozen=True)
class JobSpec:
    params: type[StrictModel]
    queue: str


# Job types known to this contract. A ``queue`` param, where a type has one, overrides.
JOB_TYPES: dict[str, JobSpec] = {
    "diagnostics.probe": JobSpec(ProbeParams, Queue.PREPROCESSING.value),
    "diagnostics.fanout": JobSpec(FanoutParams, Queue.PREPROCESSING.value),
    "ingest_dataset": JobSpec(IngestParams, Queue.PREPROCESSING.value),
    "assess_quality": JobSpec(AssessQualityParams, Queue.PREPROCESSING.value),
    "clean": JobSpec(CleanParams, Queue.PREPROCESSING.value),
    "build_features": JobSpec(BuildFeaturesParams, Queue.PREPROCESSING.value),
    "train": JobSpec(TrainParams, Queue.TRAINING.value),
    "score_dataset": JobSpec(ScoreDatasetParams, Queue.SCORING.value),
    "forget_customer": JobSpec(ForgetCustomerParams, Queue.SCORING.value),
    "apply_retention": JobSpec(RetentionParams, Queue.SCORING.value),
    "check_model": JobSpec(CheckParams, Queue.MONITORING.value),
}

# Job types that wait for an admission slot (CIPML_MAX_TRAINING_JOBS) before they run.
ADMISSION_CONTROLLED = frozenset({"train"})


def job_queue(job_type: str, params: BaseModel) -> str:
    """The broker queue a job of this type runs on."""
    queue = getattr(params, "queue", None)
    return str(Queue(queue).value) if queue is not None else JOB_TYPES[job_type].queue


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
    queue: str | None = None
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
    queue_position: int | None = Field(
        None, description="1 = next to start, for a job WAITING for an admission slot"
    )


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
    data: dict[str, Any] | None = None  # registry and scoring replies
    message: str | None = None
    error: ErrorInfo | None = None

    def data_or_empty(self) -> dict[str, Any]:
        return dict(self.data or {})


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


def validate_params(job_type: str, params: object) -> StrictModel:
    """Check ``params`` against the schema of ``job_type``; InvalidRequest names the fault."""
    from api_client.errors import InvalidRequest

    spec = JOB_TYPES.get(job_type)
    if spec is None:
        known = ", ".join(sorted(JOB_TYPES))
        raise InvalidRequest(
            f"unknown job type {job_type!r}; known types: {known}", code="unknown_job_type"
        )
    if not isinstance(params, dict):
        raise InvalidRequest(
            f"params of {job_type} must be a JSON object, got {type(params).__name__}"
        )
    try:
        return spec.params.model_validate(params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}"
            f" (got {err.get('input')!r})"
            if err["type"] != "missing"
            else f"{'.'.join(str(p) for p in err['loc'])}: required"
            for err in exc.errors()
        )
        raise InvalidRequest(f"invalid params for {job_type}: {problems}") from None
