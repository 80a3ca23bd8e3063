"""SQLAlchemy 2.0 typed models. Alembic migrations (storage/migrations) make the schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can name what they alter on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType, datetime: UtcDateTime}


class Job(Base):
    """The durable record of one job (the result backend is only a cache of it)."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    queue: Mapped[str | None] = mapped_column(String(32))
    submitted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(200))
    wall_s: Mapped[float | None]
    cpu_s: Mapped[float | None]
    peak_rss_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Which step of a multi-step job runs or waits: "admission" (WAITING for a training
    # slot), a follow-up's name once it has claimed the job. None for the first step.
    step: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_type_created_at", "type", "created_at"),
    )


class JobEvent(Base):
    """What happened to a job, in order: submitted, started (per attempt), cancelled, ended."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int | None]
    worker: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None]


class Artifact(Base):
    """A content-addressed object in the artifact store."""

    __tablename__ = "artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    uri: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArtifactRef(Base):
    """One owner holding an artifact; the reference count is the number of these rows."""

    __tablename__ = "artifact_refs"

    sha256: Mapped[str] = mapped_column(
        ForeignKey("artifacts.sha256", ondelete="RESTRICT"), primary_key=True
    )
    owner_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    """A registered table: a Parquet artifact with its lineage."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    source_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    stored_sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    rows: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[int]
    schema: Mapped[list[Any]] = mapped_column(default=list)
    source_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_job: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    # Lineage of a derived dataset: the dataset it was made from, and the fitted transform
    # (a skops artifact) that made it, so training and scoring can apply the same steps.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), index=True)
    pipeline_sha256: Mapped[str | None] = mapped_column(ForeignKey("artifacts.sha256"))
    lineage: Mapped[dict[str, Any] | None]

    __table_args__ = (
        UniqueConstraint("name", "version"),
        # A job registers each named output once, however often it is delivered.
        UniqueConstraint("created_by_job", "name"),
        # The same source bytes under the same name are one dataset (ingest dedupes on it).
        UniqueConstraint("name", "source_sha256"),
    )


class QualityReport(Base):
    """A data-quality report of a dataset: JSON and HTML artifacts, and its scores."""

    __tablename__ = "quality_reports"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    # One report per job, however often the job is delivered.
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), unique=True)
    json_sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    html_sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    scores: Mapped[dict[str, Any]] = mapped_column(default=dict)
    as_of: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FanInGroup(Base):
    """Work split over many parts that ends in one follow-up task."""

    __tablename__ = "fan_in_groups"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    expected: Mapped[int]
    completed: Mapped[int] = mapped_column(default=0)
    follow_up_task: Mapped[str] = mapped_column(String(200))
    follow_up_queue: Mapped[str] = mapped_column(String(32))
    follow_up_payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ready_at: Mapped[datetime | None]
    # The part whose completion made the group ready sends the follow-up; if it dies before
    # marking it sent, its redelivery sends again (and only it: never two senders at once).
    ready_part_id: Mapped[str | None] = mapped_column(String(128))
    dispatched_at: Mapped[datetime | None]


class FanInPart(Base):
    __tablename__ = "fan_in_parts"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("fan_in_groups.id", ondelete="CASCADE"), primary_key=True
    )
    part_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    completed_at: Mapped[datetime] = mapped_column(default=utcnow)
    result: Mapped[dict[str, Any] | None]


class TrainingLease(Base):
    """A training job's admission slot. Held from admission until the job ends; renewed by
    the job's tasks, so a crashed job's slot frees when its lease expires."""

    __tablename__ = "training_leases"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class TrialClaim(Base):
    """One trial slot of a training job's search, claimed by a runner before it runs a trial.

    open -> done (the trial finished COMPLETE or PRUNED) | failed (the trial failed: the slot
    is free again) | lost (the runner stopped renewing: presumed dead, the slot is free)."""

    __tablename__ = "trial_claims"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    runner: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    trial_number: Mapped[int | None]
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class ModelVersion(Base):
    """A registered, immutable model version: the pipeline artifact and what it came from."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(32))  # semantic version
    model_type: Mapped[str] = mapped_column(String(32))
    family: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="registered")
    # One version per training job, however often its finalize is delivered.
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    dataset_sha256: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    study_name: Mapped[str] = mapped_column(String(200))
    artifact_sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    # Feature reference statistics and the holdout score distribution (a JSON artifact:
    # monitoring reads it; listing versions does not need it).
    reference_sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cv: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decision: Mapped[dict[str, Any]] = mapped_column(default=dict)
    importances: Mapped[list[Any]] = mapped_column(default=list)
    input_schema: Mapped[list[Any]] = mapped_column(default=list)
    library_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    training: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # HMAC-SHA256 of the artifact bytes under CIPML_ARTIFACT_HMAC_KEY, when a key is set
    # at registration; checked on load whenever it is present.
    artifact_hmac: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("model_name", "version"),)


class VersionEvent(Base):
    """One step in a version's life: registered -> staged -> deployed -> archived."""

    __tablename__ = "version_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelAlias(Base):
    """Where an alias of a model points now. ``revision`` counts its moves: a move names
    the revision it saw, so of two racing moves one wins and the other gets a conflict."""

    __tablename__ = "model_aliases"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    revision: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class AliasEvent(Base):
    """Every move of an alias (set, moved, removed): who, when, from, to and why. The
    history answers which version an alias named at any past time."""

    __tablename__ = "alias_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model_name: Mapped[str] = mapped_column(String(200))
    alias: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int]
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    to_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("model_name", "alias", "revision"),
        Index("ix_alias_events_model_alias_at", "model_name", "alias", "at"),
    )


class PredictionFile(Base):
    """One Parquet file of the prediction log: a batch of predictions of one model, all in
    one hour (files live under <log root>/model=<name>/hour=<YYYY-MM-DDTHH>/)."""

    __tablename__ = "prediction_files"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model_name: Mapped[str] = mapped_column(String(200))
    hour: Mapped[datetime]
    path: Mapped[str] = mapped_column(Text)  # relative to the log root
    rows: Mapped[int]
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    # The writer's batch id: a redelivered scoring chunk logs its batch once.
    batch_id: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_prediction_files_model_hour", "model_name", "hour"),)


class Outcome(Base):
    """The true outcome of a prediction (by prediction id) or of a routing key (applies to
    that key's predictions made before ``observed_at``). Last write wins; ``writes``
    counts how often it was recorded."""

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model_name: Mapped[str] = mapped_column(String(200))
    subject_kind: Mapped[str] = mapped_column(String(16))  # "prediction" or "key"
    subject: Mapped[str] = mapped_column(String(200))
    value: Mapped[float | None]
    label: Mapped[str | None] = mapped_column(String(200))
    observed_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    writes: Mapped[int] = mapped_column(default=1)

    __table_args__ = (
        UniqueConstraint("model_name", "subject_kind", "subject"),
        Index("ix_outcomes_model_observed", "model_name", "observed_at"),
    )


class Deployment(Base):
    """How a model's traffic is served now: the strategy rolling a candidate out, its state
    and the versions involved. ``revision`` counts saves: a save names the revision it read,
    so of two racing controllers one wins and the other gets a conflict. ``rollout`` counts
    rollouts of the model (1 for the first)."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model_name: Mapped[str] = mapped_column(String(200), unique=True)
    strategy: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stable_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    candidate_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    previous_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    step: Mapped[int] = mapped_column(default=0)
    step_started_at: Mapped[datetime | None]
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The strategy's running state between evaluations (counters, bandit posteriors, ...).
    memory: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rollout: Mapped[int]
    revision: Mapped[int]
    # Seconds between this model's scheduled monitoring checks (None: the default,
    # CIPML_DRIFT_CHECK_INTERVAL). Set apart from rollouts: saves never touch it.
    check_interval_s: Mapped[float | None]


class DeploymentArm(Base):
    """One arm traffic is routed to: a role (stable, candidate, ...), its version, its weight."""

    __tablename__ = "deployment_arms"

    deployment_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("deployments.id", ondelete="CASCADE"),
        primary_key=True,
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    weight: Mapped[float]


class DeploymentEvent(Base):
    """Every save of a deployment: who, when, why, and the arms and state it left."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    deployment_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("deployments.id")
    )
    rollout: Mapped[int]
    revision: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The arms after the change: [{"role", "version_id", "weight"}, ...].
    arms: Mapped[list[Any]] = mapped_column(default=list)
    state: Mapped[str] = mapped_column(String(32))

    # Also the foreign key's index: a deployment's history is read in id order.
    __table_args__ = (Index("ix_deployment_events_deployment_id_id", "deployment_id", "id"),)


class RolloutTick(Base):
    """One evaluation tick of a deployment, claimed once: a redelivered or duplicate tick
    finds its row and does nothing. ``kind`` is what the evaluation decided."""

    __tablename__ = "rollout_ticks"

    deployment_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("deployments.id"),
        primary_key=True,
    )
    tick: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str | None] = mapped_column(String(32))


class SweepPeriod(Base):
    """A periodic sweep's claim of one period, so duplicate beats never fire it twice;
    ``duplicates`` counts the later claims of the same period that were refused."""

    __tablename__ = "sweep_periods"

    sweep: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    duplicates: Mapped[int] = mapped_column(default=0)


class MonitoringCheck(Base):
    """One monitoring check of a model: its window, decisions and health, and the full
    result (per-feature statistics) as JSON. One row per check job, so a redelivered job
    stores its result once."""

    __tablename__ = "monitoring_checks"
    __table_args__ = (Index("ix_monitoring_checks_model_checked", "model_name", "checked_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    model_name: Mapped[str] = mapped_column(String(200))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    window_rows: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(32))  # prediction_log | dataset
    health_score: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(32))  # healthy | degraded | critical | no_data
    drifted: Mapped[bool] = mapped_column(default=False)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report_sha256: Mapped[str | None] = mapped_column(ForeignKey("artifacts.sha256"))


class AlertState(Base):
    """The cooldown state of one alert kind of one model (workers/monitoring/alert_cooldown):
    whether it is firing, when it was last notified. Locked while a check's findings are
    applied, so two checks of a model never notify the same problem twice."""

    __tablename__ = "alert_states"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    active: Mapped[bool] = mapped_column(default=False)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """One alert notification: raised, reminder, escalated or resolved. One per (check, kind),
    so a redelivered check job never notifies twice."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("check_job_id", "kind"),
        Index("ix_alerts_model_at", "model_name", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))  # LOW | MEDIUM | HIGH | CRITICAL
    event: Mapped[str] = mapped_column(String(16))  # raised | reminder | escalated | resolved
    message: Mapped[str] = mapped_column(Text)
    numbers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    check_job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One alert sent to one webhook URL; ``id`` is the delivery id receivers deduplicate by."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class RetrainPolicy(Base):
    """When a model is retrained and how its retrained version is judged
    (api_client/retrain_params.RetrainPolicyConfig as JSON)."""

    __tablename__ = "retrain_policies"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class Retrain(Base):
    """One retraining trigger and what became of it. At most one ``open`` retrain per model
    (a partial unique index): a trigger while one is open is stored ``coalesced`` into it.
    ``trigger_key`` makes a trigger idempotent (a redelivered check, a second beat)."""

    __tablename__ = "retrains"
    __table_args__ = (
        Index(
            "uq_retrains_open_model",
            "model_name",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_retrains_model_created", "model_name", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    model_name: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(32))
    trigger_key: Mapped[str] = mapped_column(String(200), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    numbers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # open | coalesced | promoted | rollout | rejected | failed
    status: Mapped[str] = mapped_column(String(16))
    check_job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    coalesced_into: Mapped[int | None] = mapped_column(ForeignKey("retrains.id"))
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    decision: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
