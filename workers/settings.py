"""One frozen settings object, read from ``CIPML_*`` environment variables by entry points.

Everything below the entry points receives values as arguments. With nothing set, the
embedded defaults need no server: SQLite and artifacts under ``CIPML_HOME`` (./.cipml) and
a broker in a folder there (single machine, at-most-once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api_client.contract import ALL_QUEUES
from api_client.embedded import embedded_transport, is_embedded

# (soft, hard) seconds per queue: a job that passes the soft limit fails with
# time_limit_exceeded; the hard limit kills its process. Long work is split into steps.
DEFAULT_TIME_LIMITS: dict[str, tuple[float, float]] = {
    "control": (30, 60),
    "preprocessing": (1800, 1900),
    "training": (1800, 1900),
    "trials": (1800, 1900),
    "scoring": (600, 660),
    "monitoring": (600, 660),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIPML_", frozen=True, extra="ignore")

    home: Path = Field(
        Path(".cipml"),
        description=(
            "Folder of the embedded defaults: SQLite database, artifacts and the no-server broker."
        ),
    )
    broker_url: str | None = Field(
        None,
        description=(
            "Celery broker, e.g. redis://host:6379/0 or rediss://... (TLS). "
            "Default: the embedded folder broker (single machine, at-most-once, no revoke)."
        ),
    )
    result_backend: str | None = Field(
        None,
        description=(
            "Celery result backend (a cache of job summaries and progress). "
            "Default: the broker URL when it is Redis, else a folder under CIPML_HOME."
        ),
    )
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL of the job/registry database, e.g. "
            "postgresql+psycopg://user@host/db?sslmode=verify-full (TLS options pass through in "
            "the "
            "URL). Default: sqlite:///$CIPML_HOME/cipml.sqlite."
        ),
    )
    optuna_storage_url: str | None = Field(
        None,
        description=(
            "Optuna RDB storage of the shared studies (optuna-dashboard reads it too). It must "
            "not be the job database's own schema: Optuna and our migrations both keep an "
            "alembic_version table. Default: on PostgreSQL the database URL with "
            "search_path=optuna (a schema created on first use); on SQLite "
            "$CIPML_HOME/optuna.sqlite, where trials run one at a time."
        ),
    )
    artifact_root: str | None = Field(
        None,
        description=(
            "Artifact store: a folder or any fsspec URL (s3://bucket/prefix, ...). "
            "Default: $CIPML_HOME/artifacts."
        ),
    )
    data_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated folders (or fsspec URL prefixes) clients may read input files from. "
            "Default: ./data and $CIPML_HOME/data."
        ),
    )
    time_limits: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description=(
            "JSON object of per-queue [soft, hard] seconds overriding the defaults, e.g. "
            '{"training": [3300, 3600]}. Defaults: control 30/60, preprocessing, training, trials '
            "1800/1900, scoring and monitoring 600/660."
        ),
    )
    visibility_timeout_s: float | None = Field(
        None,
        description=(
            "Redis visibility timeout: an unacknowledged job is redelivered after this long (a "
            "killed worker). Must exceed every hard time limit. Default: longest hard limit + 300."
        ),
    )
    max_attempts: int = Field(
        3,
        ge=1,
        le=100,
        description=("Deliveries of one job before it ends FAILED with worker_lost."),
    )
    max_training_jobs: int = Field(
        5,
        ge=1,
        description=(
            "Training jobs allowed to run at once across the cluster; the rest wait (WAITING, "
            "with their queue position) and start oldest first as slots free."
        ),
    )
    training_lease_s: float = Field(
        300,
        ge=10,
        description=(
            "Life of a training job's admission slot between renewals (its tasks renew it "
            "every trial and heartbeat): a crashed job's slot frees this long after it died."
        ),
    )
    max_trials: int = Field(
        1000, ge=1, description="Most trials (n_trials) one training job may ask for."
    )
    max_parallelism: int = Field(
        16, ge=1, description="Most trial runners (parallelism) one training job may ask for."
    )
    trial_heartbeat_s: int = Field(
        10,
        ge=1,
        le=600,
        description=(
            "Optuna heartbeat of a running trial, and renewal period of its trial slot. A "
            "trial silent for 3 heartbeats is presumed dead (its runner was killed): it is "
            "marked failed, re-run with the same parameters, and its slot claimed again."
        ),
    )
    threads_per_process: int = Field(
        0,
        ge=0,
        description=(
            "BLAS/OpenMP threads of each worker pool process while it fits models. 0: the "
            "machine's cores divided by the pool processes running on it (oversubscribed "
            "OpenMP runs many times slower)."
        ),
    )
    training_cache_bytes: int = Field(
        2 * 1024**3,
        ge=0,
        description=(
            "Memory each worker process may keep training tables in (loaded once per dataset "
            "sha256, least recently used evicted)."
        ),
    )
    admission_interval_s: float = Field(
        30,
        gt=0,
        description="How often beat re-checks admission (expired slots, waiting jobs).",
    )
    rollout_interval_s: float = Field(
        60,
        gt=0,
        description=(
            "How often beat sweeps the running rollouts (canary steps and guardrails, A/B "
            "decisions, blue-green checks): one evaluation per rollout per period, however "
            "many beats run."
        ),
    )
    drift_check_interval: float = Field(
        900,
        gt=0,
        description=(
            "Seconds between the scheduled monitoring checks of every deployed model (one "
            "check job per model per period, however many beats run)."
        ),
    )
    alert_cooldown_s: float = Field(
        3600,
        ge=0,
        description=(
            "Per model and alert kind: a problem that persists is reminded once per this "
            "many seconds (a worsening one is escalated at once), and one that clears and "
            "comes back within it reopens without a new notification."
        ),
    )
    alert_resolve_after: int = Field(
        2,
        ge=1,
        le=100,
        description="Clean checks in a row before a firing alert is resolved (and notified).",
    )
    alert_webhooks: str | None = Field(
        None,
        description=(
            "Comma-separated http(s) URLs that receive every alert notification as a JSON "
            "POST with a delivery id (header X-Cipml-Delivery) to deduplicate by; unset: "
            "alerts go to the alerts table and the log only."
        ),
    )
    webhook_secret: str | None = Field(
        None,
        description=(
            "Secret for HMAC-SHA256 signatures of webhook bodies (header X-Cipml-Signature: "
            "sha256=<hex>); unset: deliveries are not signed."
        ),
    )
    webhook_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Seconds one webhook POST may take before it is retried."
    )
    webhook_max_attempts: int = Field(
        6,
        ge=1,
        le=20,
        description=(
            "Attempts per webhook delivery (backoff 2 s, 4 s, 8 s, ... capped at 5 min) "
            "before it is recorded failed."
        ),
    )
    retrain_interval_s: float = Field(
        300,
        gt=0,
        description=(
            "How often beat sweeps the retrain policies: scheduled retrains, retrains whose "
            "training ended without a decision, webhook deliveries whose task was lost."
        ),
    )
    monitoring_reference_rows: int = Field(
        10_000,
        ge=100,
        description=(
            "Rows of a version's training data a monitoring check compares against (a "
            "sample seeded by the version, so every check of it uses the same reference)."
        ),
    )
    max_inline_rows: int = Field(
        1000,
        ge=1,
        le=100_000,
        description=(
            "Largest batch of rows `predict` takes inline (JSON on the wire); larger batches "
            "are refused with a pointer to `score_dataset`, which scores by reference."
        ),
    )
    artifact_hmac_key: str | None = Field(
        None,
        description=(
            "Secret key (any string; keep it in a secret store) for HMAC-SHA256 signatures of "
            "model artifacts: versions registered while it is set are signed, and a signed "
            "artifact is refused on load unless the signature verifies. Unset: no signing."
        ),
    )
    pipeline_cache_size: int = Field(
        8,
        ge=1,
        description=(
            "Verified model pipelines each worker process keeps loaded (least recently "
            "used evicted), keyed by artifact sha256."
        ),
    )
    prediction_log_root: str | None = Field(
        None,
        description=(
            "Where the prediction log's Parquet files go: a folder or any fsspec URL, "
            "partitioned by model and hour. Default: $CIPML_HOME/predictions."
        ),
    )
    prediction_log_flush_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description=(
            "How often each worker process writes the inline predictions it buffered to the "
            "prediction log (0: at once). A process killed with SIGKILL loses at most this "
            "long of log rows; the replies were already sent."
        ),
    )
    prediction_retention_days: float = Field(
        90,
        gt=0,
        description=(
            "Prediction logs and outcomes older than this are deleted by the retention job "
            "(personal data is kept no longer than monitoring needs it)."
        ),
    )
    retention_interval_s: float = Field(
        86400,
        gt=0,
        description=(
            "How often beat starts the apply_retention job (one job per period, however "
            "many beats run)."
        ),
    )
    artifact_retention_days: float = Field(
        30,
        gt=0,
        description=(
            "The artifact retention job deletes the artifacts of versions archived longer "
            "than this ago that no alias held within this window and nothing else references."
        ),
    )
    git_commit: str | None = Field(
        None,
        description=(
            "Git commit of the running code, recorded in each model version's lineage. "
            "Default: read from the checkout when the code runs from one."
        ),
    )
    score_chunk_rows: int = Field(
        100_000,
        ge=1000,
        description="Rows `score_dataset` reads, scores and writes per chunk (bounds memory).",
    )
    redis_tls_ca_file: str | None = Field(
        None, description=("CA bundle for rediss:// broker and result backend.")
    )
    redis_tls_cert_file: str | None = Field(None, description="Client certificate for rediss://.")
    redis_tls_key_file: str | None = Field(None, description="Client key for rediss://.")
    redis_tls_cert_reqs: Literal["required", "optional", "none"] = Field(
        "required", description=("Server certificate check for rediss://.")
    )
    ingest_max_columns: int = Field(
        2000, ge=1, description=("Most columns an ingested file may have.")
    )
    ingest_max_rows: int = Field(
        2_000_000_000, ge=1, description=("Most rows an ingested file may have.")
    )
    ingest_max_bytes: int = Field(
        100 * 1024**3, ge=1, description=("Largest file (bytes on disk) ingest accepts.")
    )
    ingest_block_bytes: int = Field(
        4 * 1024**2,
        ge=64 * 1024,
        description=(
            "Bytes of CSV parsed per block. Bounds ingest memory: pyarrow reads up to 32 "
            "blocks ahead, so about 60x this plus the interpreter (4 MiB: ~320 MiB)."
        ),
    )
    clean_knn_max_rows: int = Field(
        200_000,
        ge=1,
        description=(
            "Largest dataset (rows) the clean job imputes with KNN; larger ones are refused "
            "(input_too_large): KNN compares every incomplete row with every training row."
        ),
    )
    flower_port: int = Field(
        5555, ge=1, le=65535, description=("Port of the Flower dashboard started by `cipml stack`.")
    )
    flower_basic_auth: str | None = Field(
        None,
        description=(
            "user:password that Flower asks for (compose and `cipml stack`); unset: no auth on "
            "the loopback-only local stack."
        ),
    )
    progress_interval_s: float = Field(
        0.5,
        ge=0,
        description=("Least time between two progress writes of one job to the database."),
    )
    allow_fault_injection: bool = Field(
        False,
        description=(
            "Let diagnostics jobs kill their own process or hold transactions (tests and drills)."
        ),
    )
    log_format: Literal["json", "text"] = Field("json", description="Worker log format.")
    log_level: str = Field("INFO", description="Worker log level.")

    @field_validator("data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("alert_webhooks")
    @classmethod
    def _check_webhooks(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        for url in (value or "").split(","):
            parts = urlsplit(url.strip())
            if url.strip() and (parts.scheme not in ("http", "https") or not parts.hostname):
                raise ValueError(
                    f"CIPML_ALERT_WEBHOOKS: {url.strip()!r} is not an http(s) URL with a host"
                )
        return value

    @field_validator("time_limits")
    @classmethod
    def _check_limits(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for queue, (soft, hard) in value.items():
            if queue not in ALL_QUEUES:
                raise ValueError(f"unknown queue {queue!r} in CIPML_TIME_LIMITS")
            if not 0 < soft < hard:
                raise ValueError(f"{queue}: need 0 < soft < hard, got {soft}/{hard}")
        return value

    @model_validator(mode="after")
    def _check_visibility(self) -> Settings:
        if (
            self.visibility_timeout_s is not None
            and self.visibility_timeout_s <= self.longest_hard_limit
        ):
            raise ValueError(
                f"CIPML_VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s:g}) must exceed the "
                f"longest hard time limit ({self.longest_hard_limit:g}), or a running job would "
                "be redelivered to a second worker"
            )
        return self

    # ------------------------------------------------------------------ resolved values

    def limits_for(self, queue: str) -> tuple[float, float]:
        return self.time_limits.get(queue, DEFAULT_TIME_LIMITS[queue])

    @property
    def longest_hard_limit(self) -> float:
        return max(self.limits_for(q)[1] for q in ALL_QUEUES)

    @property
    def visibility_timeout(self) -> float:
        return self.visibility_timeout_s or self.longest_hard_limit + 300

    @property
    def embedded(self) -> bool:
        return self.broker_url is None or is_embedded(self.broker_url)

    @property
    def broker(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def backend(self) -> str:
        if self.result_backend:
            return self.result_backend
        if self.broker.startswith(("redis://", "rediss://")):
            return self.broker
        return embedded_transport(self.home).result_backend

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'cipml.sqlite').resolve()}"

    @property
    def optuna_storage(self) -> str:
        if self.optuna_storage_url:
            return self.optuna_storage_url
        from sqlalchemy.engine import make_url

        url = make_url(self.database)
        if url.get_backend_name() == "sqlite":
            return f"sqlite:///{(self.home / 'optuna.sqlite').resolve()}"
        if url.get_backend_name() == "postgresql":
            return url.update_query_dict({"options": "-csearch_path=optuna"}).render_as_string(
                hide_password=False
            )
        return self.database

    @property
    def trial_grace_s(self) -> int:
        return 3 * self.trial_heartbeat_s

    @property
    def artifacts(self) -> str:
        return self.artifact_root or str((self.home / "artifacts").resolve())

    @property
    def webhook_urls(self) -> list[str]:
        return [url.strip() for url in (self.alert_webhooks or "").split(",") if url.strip()]

    @property
    def prediction_logs(self) -> str:
        return self.prediction_log_root or str((self.home / "predictions").resolve())

    @property
    def input_roots(self) -> list[str]:
        return self.data_roots or [str(Path("data").resolve()), str((self.home / "data").resolve())]

    def broker_transport_options(self) -> dict[str, Any]:
        if self.embedded:
            return dict(embedded_transport(self.home).broker_transport_options)
        vt = self.visibility_timeout
        return {
            "visibility_timeout": vt,
            # Sweep for abandoned messages often enough that redelivery follows the
            # timeout closely (kombu's default sweep is every 100 s).
            "unacked_restore_interval": max(1.0, min(10.0, vt / 10)),
            "unacked_restore_throttle": 1,
            "unacked_mutex_expire": int(min(300, max(5, vt))),
        }

    def redis_ssl_options(self) -> dict[str, Any] | None:
        if not (self.broker.startswith("rediss://") or self.backend.startswith("rediss://")):
            return None
        import ssl

        options: dict[str, Any] = {
            "ssl_cert_reqs": {
                "required": ssl.CERT_REQUIRED,
                "optional": ssl.CERT_OPTIONAL,
                "none": ssl.CERT_NONE,
            }[self.redis_tls_cert_reqs]
        }
        for key, value in (
            ("ssl_ca_certs", self.redis_tls_ca_file),
            ("ssl_certfile", self.redis_tls_cert_file),
            ("ssl_keyfile", self.redis_tls_key_file),
        ):
            if value:
                options[key] = value
        return options

    def describe(self) -> dict[str, str]:
        """The resolved values, secrets masked, for `cipml info` and startup logs."""
        from sqlalchemy.engine import make_url

        return {
            "broker": _mask(self.broker),
            "result_backend": _mask(self.backend),
            "database": make_url(self.database).render_as_string(hide_password=True),
            "optuna_storage": make_url(self.optuna_storage).render_as_string(hide_password=True),
            "artifact_root": self.artifacts,
            "data_roots": ",".join(self.input_roots),
            "mode": "embedded (single machine, at-most-once)" if self.embedded else "distributed",
        }


def _mask(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url
