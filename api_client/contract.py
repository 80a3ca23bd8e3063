"""The job contract: names, statuses, error codes and queues that every layer shares.

Pure data. Bump CONTRACT_VERSION when a message changes shape incompatibly; workers
refuse messages from a newer contract with ``contract_version_unsupported``.
"""

from __future__ import annotations

from enum import StrEnum

CONTRACT_VERSION = 1


class Queue(StrEnum):
    CONTROL = "control"
    PREPROCESSING = "preprocessing"
    TRAINING = "training"
    TRIALS = "trials"
    SCORING = "scoring"
    MONITORING = "monitoring"


ALL_QUEUES: tuple[str, ...] = tuple(q.value for q in Queue)


class JobStatus(StrEnum):
    QUEUED = "QUEUED"  # accepted, waiting in a broker queue
    WAITING = "WAITING"  # waiting on sub-work it fanned out, or on an admission slot
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class ErrorCode(StrEnum):
    """Stable error codes; the docs (docs/errors.md) say what each means and what to do."""

    UNKNOWN_JOB_TYPE = "unknown_job_type"
    INVALID_PARAMS = "invalid_params"
    INVALID_MESSAGE = "invalid_message"
    CONTRACT_VERSION_UNSUPPORTED = "contract_version_unsupported"
    JOB_NOT_FOUND = "job_not_found"
    WORKER_LOST = "worker_lost"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    DATABASE_UNAVAILABLE = "database_unavailable"
    INTERNAL_ERROR = "internal_error"
    CANCELLED = "cancelled"
    FAULT_INJECTION_DISABLED = "fault_injection_disabled"
    DATASET_NOT_FOUND = "dataset_not_found"
    ARTIFACT_NOT_FOUND = "artifact_not_found"
    ARTIFACT_CORRUPT = "artifact_corrupt"
    PATH_OUTSIDE_ROOT = "path_outside_root"
    EMPTY_FILE = "empty_file"
    NO_ROWS = "no_rows"
    PARSE_ERROR = "parse_error"
    ENCODING_ERROR = "encoding_error"
    DUPLICATE_COLUMNS = "duplicate_columns"
    TOO_MANY_COLUMNS = "too_many_columns"
    TOO_MANY_ROWS = "too_many_rows"
    FILE_TOO_LARGE = "file_too_large"
    SCHEMA_MISMATCH = "schema_mismatch"
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNREADABLE_FILE = "unreadable_file"
    DATASET_EMPTY = "dataset_empty"
    COLUMN_MISSING = "column_missing"
    COLUMN_TYPE_MISMATCH = "column_type_mismatch"
    COLUMN_ALL_MISSING = "column_all_missing"
    INPUT_TOO_LARGE = "input_too_large"
    COLUMN_EXISTS = "column_exists"
    TIMESTAMP_UNPARSEABLE = "timestamp_unparseable"
    TIMESTAMP_TIMEZONE_MIXED = "timestamp_timezone_mixed"
    UNKNOWN_HOLIDAY_COUNTRY = "unknown_holiday_country"
    TARGET_MISSING_VALUES = "target_missing_values"
    TARGET_SINGLE_CLASS = "target_single_class"
    TARGET_NOT_BINARY = "target_not_binary"
    TARGET_NOT_NUMERIC = "target_not_numeric"
    TARGET_CLASS_TOO_SMALL = "target_class_too_small"
    TOO_FEW_CUTOFFS = "too_few_cutoffs"
    MAX_FEATURES_TOO_LARGE = "max_features_too_large"
    TOO_FEW_ROWS = "too_few_rows"
    NO_FEATURES = "no_features"
    LIMIT_EXCEEDED = "limit_exceeded"
    TRIALS_FAILED = "trials_failed"
    NO_TRIAL_COMPLETED = "no_trial_completed"
    MODEL_NOT_FOUND = "model_not_found"
    VERSION_NOT_FOUND = "version_not_found"
    ALIAS_NOT_SET = "alias_not_set"
    ALIAS_CONFLICT = "alias_conflict"
    INVALID_TRANSITION = "invalid_transition"
    ARTIFACT_REFUSED = "artifact_refused"
    BATCH_TOO_LARGE = "batch_too_large"
    # Per-row errors of a scoring batch (the batch itself succeeds).
    VALUE_MISSING = "value_missing"
    VALUE_NOT_FINITE = "value_not_finite"
    ROUTING_KEY_MISSING = "routing_key_missing"
    # Deployments and rollouts.
    DEPLOYMENT_NOT_FOUND = "deployment_not_found"
    DEPLOYMENT_CONFLICT = "deployment_conflict"
    NO_STABLE_VERSION = "no_stable_version"
    NOTHING_TO_ROLL_BACK = "nothing_to_roll_back"
    # Retraining.
    NOT_RETRAINABLE = "not_retrainable"


class TaskName(StrEnum):
    """Celery task names: the only way one layer starts work owned by another."""

    SUBMIT = "cipml.control.submit"
    GET_JOB = "cipml.control.get_job"
    LIST_JOBS = "cipml.control.list_jobs"
    CANCEL = "cipml.control.cancel"
    ADMIT_TRAINING = "cipml.control.admit_training"  # beat's admission tick
    VERSIONS = "cipml.registry.versions"
    LINEAGE = "cipml.registry.lineage"
    SET_ALIAS = "cipml.registry.set_alias"
    ALIAS_HISTORY = "cipml.registry.alias_history"
    PREDICT = "cipml.scoring.predict"  # on the scoring queue
    RECORD_OUTCOMES = "cipml.scoring.record_outcomes"
    RETENTION_TICK = "cipml.control.retention_tick"  # beat's daily retention
    DEPLOY = "cipml.deployment.deploy"
    ROLLBACK = "cipml.deployment.rollback"
    DEPLOYMENT = "cipml.deployment.get"
    EVALUATE_ROLLOUT = "cipml.deployment.evaluate"  # one rollout's tick (a sweep fans out)
    SHADOW_REPORT = "cipml.deployment.shadow_report"
    SWEEP_ROLLOUTS = "cipml.scheduler.sweep_rollouts"  # beat's rollout sweep
    SWEEP_MONITORING = "cipml.scheduler.sweep_monitoring"  # beat's monitoring sweep
    SET_CHECK_INTERVAL = "cipml.monitoring.set_check_interval"
    ALERTS = "cipml.monitoring.alerts"
    DELIVER_WEBHOOK = "cipml.monitoring.deliver_webhook"
    SET_RETRAIN_POLICY = "cipml.retraining.set_policy"
    RETRAIN = "cipml.retraining.retrain"  # a manual trigger
    RETRAINS = "cipml.retraining.list"
    CONSIDER_RETRAIN = "cipml.scheduler.consider_retrain"  # right after a stored check
    DECIDE_RETRAIN = "cipml.scheduler.decide_retrain"  # when a retrain's training ends
    SWEEP_RETRAINING = "cipml.scheduler.sweep_retraining"  # beat's retraining sweep


def job_task_name(job_type: str) -> str:
    """Name of the task that runs a job of ``job_type`` (e.g. ``cipml.job.diagnostics.probe``)."""
    return f"cipml.job.{job_type}"
