"""The client other services import to enqueue jobs and follow them.

It needs no database credentials: it makes the job id itself, sends one ``control``
task that records and dispatches the job, and reads progress and the final summary
from the result backend (a cache; the jobs table behind the control tasks is the record).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery import Celery, states
from celery.exceptions import TimeoutError as CeleryTimeout
from kombu.exceptions import OperationalError as KombuOperationalError

from api_client import folder_transport
from api_client.contract import CONTRACT_VERSION, ErrorCode, JobStatus, TaskName
from api_client.deployment_params import (
    DeploymentRequest,
    DeployRequest,
    EvaluateRequest,
    RollbackRequest,
    ShadowReportRequest,
)
from api_client.embedded import embedded_transport, is_embedded
from api_client.errors import (
    CipmlError,
    InvalidRequest,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobTimeout,
    ServiceUnavailable,
)
from api_client.monitoring_params import CheckIntervalRequest
from api_client.progress_bar import ProgressBar
from api_client.registry_params import (
    AliasHistoryRequest,
    LineageRequest,
    PredictRequest,
    RecordOutcomesRequest,
    SetAliasRequest,
    VersionsRequest,
)
from api_client.retrain_params import (
    AlertsRequest,
    RetrainRequest,
    RetrainsRequest,
    SetRetrainPolicyRequest,
)
from api_client.schemas import (
    ControlReply,
    JobInfo,
    JobRef,
    JobSummary,
    ListJobsRequest,
    Progress,
    SubmitRequest,
    validate_params,
)
from api_client.strict import StrictModel

# Idempotency keys map to job ids deterministically, so a retried submit needs no round trip.
IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d2a52-3c1e-4b8e-9a57-2f4b8c8d0c11")
PROGRESS_STATE = "PROGRESS"


def job_id_for_key(idempotency_key: str) -> str:
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key).hex


def submit_task_id(job_id: str) -> str:
    return f"submit-{job_id}"


class Client:
    """Enqueue and follow cip-ml jobs.

    ``Client("redis://host:6379/0")`` uses the broker as result backend too;
    ``Client.embedded(".cipml")`` talks to the no-server transport of a local install.
    ``ssl`` holds the TLS options for ``rediss://`` (ssl_cert_reqs, ssl_ca_certs, ...).
    """

    def __init__(
        self,
        broker_url: str,
        result_backend: str | None = None,
        *,
        broker_transport_options: dict[str, Any] | None = None,
        result_backend_transport_options: dict[str, Any] | None = None,
        ssl: dict[str, Any] | None = None,
        control_timeout: float = 30.0,
    ) -> None:
        if result_backend is None:
            if not broker_url.startswith(("redis://", "rediss://")):
                raise InvalidRequest("result_backend is required unless the broker is Redis")
            result_backend = broker_url
        self.control_timeout = control_timeout
        if is_embedded(broker_url):
            folder_transport.install()
        self._app = Celery(
            "cipml-client", broker=broker_url, backend=result_backend, set_as_current=False
        )
        self._app.conf.update(
            task_serializer="json",
            result_serializer="json",
            accept_content=["json"],
            result_accept_content=["json"],
            broker_transport_options=broker_transport_options or {},
            result_backend_transport_options=result_backend_transport_options or {},
            broker_connection_retry_on_startup=True,
            broker_use_ssl=ssl,
            redis_backend_use_ssl=ssl,
            task_default_queue="control",
        )

    @classmethod
    def embedded(cls, root: str | Path = ".cipml", **kwargs: Any) -> Client:
        transport = embedded_transport(root)
        return cls(
            transport.broker_url,
            transport.result_backend,
            broker_transport_options=transport.broker_transport_options,
            **kwargs,
        )

    # ------------------------------------------------------------------ jobs

    def submit(
        self,
        job_type: str,
        params: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        job_id: str | None = None,
        parent_id: str | None = None,
    ) -> JobHandle:
        """Validate and enqueue a job; returns at once with a handle to follow it.

        Submitting again with the same ``job_id`` or ``idempotency_key`` returns the
        existing job instead of starting a second one.
        """
        params = {} if params is None else params
        validate_params(job_type, params)
        try:
            json.dumps(params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"params must be plain JSON: {exc}") from None
        if job_id is None:
            job_id = job_id_for_key(idempotency_key) if idempotency_key else uuid.uuid4().hex
        try:
            request = SubmitRequest(
                job_id=job_id,
                job_type=job_type,
                params=params,
                idempotency_key=idempotency_key,
                parent_id=parent_id,
                submitted_at=datetime.now(UTC),
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        self._send(TaskName.SUBMIT, request.model_dump(mode="json"), submit_task_id(job_id))
        return JobHandle(self, job_id, job_type)

    def submit_train(
        self,
        dataset_id: int,
        config: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        parent_id: str | None = None,
    ) -> JobHandle:
        """Train a model on a registered feature dataset (docs/training.md): an Optuna
        search spread over trial runners, then one registered model version. ``config``
        holds every ``train`` param but the dataset id. The job waits for an admission slot
        when CIPML_MAX_TRAINING_JOBS are running."""
        params = {"dataset_id": dataset_id, **config}
        return self.submit("train", params, idempotency_key=idempotency_key, parent_id=parent_id)

    def handle(self, job_id: str) -> JobHandle:
        """A handle on an existing job (for example one submitted by another process)."""
        return JobHandle(self, job_id)

    def job(self, job_id: str) -> JobInfo:
        reply = self._call(TaskName.GET_JOB, JobRef(job_id=job_id).model_dump())
        assert reply.job is not None
        return reply.job

    def jobs(
        self,
        *,
        status: str | list[str] | None = None,
        job_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Jobs, newest first, optionally filtered by status and type."""
        statuses = [status] if isinstance(status, str) else status
        for s in statuses or []:
            if s not in JobStatus._value2member_map_:
                raise InvalidRequest(f"unknown status {s!r}; one of {', '.join(JobStatus)}")
        try:
            request = ListJobsRequest(
                status=statuses, job_type=job_type, limit=limit, offset=offset
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        return self._call(TaskName.LIST_JOBS, request.model_dump()).jobs or []

    def cancel(self, job_id: str, actor: str | None = None) -> str:
        """Cancel a job; returns what happened (a finished job is left as it is, and said so)."""
        reply = self._call(TaskName.CANCEL, JobRef(job_id=job_id, actor=actor).model_dump())
        return reply.message or ""

    # ------------------------------------------------------------------ registry

    def versions(self, model_name: str) -> list[dict[str, Any]]:
        """Every version of a model, oldest first, with its status, aliases and metrics."""
        request = _request(VersionsRequest, model_name=model_name)
        return list(self._call(TaskName.VERSIONS, request).data_or_empty().get("versions", []))

    def lineage(self, model_name: str, version: str) -> dict[str, Any]:
        """Where a version came from: training job, study, datasets back to the raw input,
        parent version, library versions, and whether the recorded hashes match."""
        request = _request(LineageRequest, model_name=model_name, version=version)
        return self._call(TaskName.LINEAGE, request).data_or_empty()

    def set_alias(
        self,
        model_name: str,
        alias: str,
        version: str,
        reason: str,
        *,
        actor: str | None = None,
        expected_revision: int | None = None,
    ) -> dict[str, Any]:
        """Point ``alias`` (champion, challenger or a name of yours) at ``version``. The
        version's artifact is verified first. Raises CipmlError ``alias_conflict`` when
        someone moved the alias meanwhile (or it is not at ``expected_revision``)."""
        request = _request(
            SetAliasRequest,
            model_name=model_name,
            alias=alias,
            version=version,
            reason=reason,
            actor=actor,
            expected_revision=expected_revision,
        )
        return self._call(TaskName.SET_ALIAS, request).data_or_empty()

    def alias_history(
        self, model_name: str, alias: str | None = None, at: datetime | None = None
    ) -> dict[str, Any]:
        """Every move of a model's aliases (or one alias), oldest first; with ``at``, also
        which version the alias named at that time (``{"version": ...}``, None if unset)."""
        request = _request(AliasHistoryRequest, model_name=model_name, alias=alias, at=at)
        return self._call(TaskName.ALIAS_HISTORY, request).data_or_empty()

    # ------------------------------------------------------------------ scoring

    def predict(
        self,
        model_name: str,
        rows: list[dict[str, Any]],
        *,
        key_column: str = "customer_id",
        alias: str = "champion",
    ) -> dict[str, Any]:
        """Score a small batch inline (at most CIPML_MAX_INLINE_ROWS rows, JSON objects with
        the model's input columns and the routing key). A bad row is reported in
        ``errors`` with its position; the other rows are scored. Each prediction names
        the version that made it and its ``prediction_id`` (for ``record_outcomes``)."""
        request = _rows_request(
            model_name=model_name, rows=rows, key_column=key_column, alias=alias
        )
        return self._call(TaskName.PREDICT, request, queue="scoring").data_or_empty()

    def score_dataset(
        self,
        model_name: str,
        dataset_id: int,
        *,
        alias: str = "champion",
        key_column: str = "customer_id",
        output_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobHandle:
        """Score a registered dataset by reference (any size) into a new dataset: a job."""
        params: dict[str, Any] = {
            "model_name": model_name,
            "dataset_id": dataset_id,
            "alias": alias,
            "key_column": key_column,
        }
        if output_name is not None:
            params["output_name"] = output_name
        return self.submit("score_dataset", params, idempotency_key=idempotency_key)

    def record_outcomes(self, model_name: str, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
        """True outcomes, each by ``prediction_id`` or ``routing_key`` with a ``value`` or
        ``label`` (and optionally ``observed_at``). Returns counts: recorded, updated (a
        repeat: the last write wins), unknown prediction ids."""
        request = _request(RecordOutcomesRequest, model_name=model_name, outcomes=outcomes)
        return self._call(TaskName.RECORD_OUTCOMES, request, queue="scoring").data_or_empty()

    def forget_customer(self, customer_id: str, *, actor: str | None = None) -> JobHandle:
        """Erase a customer's predictions, outcomes and rows of derived datasets: a job whose
        result counts what was removed (the record keeps no customer data)."""
        params: dict[str, Any] = {"customer_id": customer_id}
        if actor is not None:
            params["actor"] = actor
        return self.submit("forget_customer", params)

    # ------------------------------------------------------------------ deployments

    def deploy(
        self,
        model_name: str,
        version: str,
        strategy: str = "immediate",
        config: dict[str, Any] | None = None,
        *,
        reason: str = "deployed",
        actor: str | None = None,
        expected_revision: int | None = None,
    ) -> dict[str, Any]:
        """Roll ``version`` out: ``immediate``, ``blue_green``, ``canary``, ``ab_test`` or
        ``shadow`` (config per strategy: docs/deployments.md). The version's artifact is
        verified first. Raises CipmlError ``deployment_conflict`` while another rollout
        of the model is in progress or when someone changed it meanwhile. Returns the
        deployment (as ``deployment()``) with ``changed`` and the ``decision``."""
        request = _request(
            DeployRequest,
            model_name=model_name,
            version=version,
            strategy=strategy,
            config=config or {},
            reason=reason,
            actor=actor,
            expected_revision=expected_revision,
        )
        return self._call(TaskName.DEPLOY, request).data_or_empty()

    def rollback(
        self, model_name: str, *, reason: str = "rolled back", actor: str | None = None
    ) -> dict[str, Any]:
        """Stop the rollout in progress (all traffic back to the stable version), or switch
        back to the version served before the last deploy. CipmlError
        ``nothing_to_roll_back`` when there is neither."""
        request = _request(RollbackRequest, model_name=model_name, reason=reason, actor=actor)
        return self._call(TaskName.ROLLBACK, request).data_or_empty()

    def deployment(self, model_name: str, *, events: int = 50) -> dict[str, Any]:
        """The model's deployment: arms (version, role, traffic weight), state, config, and
        its most recent decisions with their numbers, oldest first."""
        request = _request(DeploymentRequest, model_name=model_name, events=events)
        return self._call(TaskName.DEPLOYMENT, request).data_or_empty()

    def evaluate_rollout(self, model_name: str) -> dict[str, Any]:
        """Evaluate the model's rollout now, as the scheduler's next tick would; returns
        the decision (kind, state, reason, numbers)."""
        request = _request(EvaluateRequest, model_name=model_name)
        return self._call(TaskName.EVALUATE_ROLLOUT, request).data_or_empty()

    def shadow_report(self, model_name: str) -> dict[str, Any]:
        """A shadow deployment against the version that served the same rows: agreement
        rate, score correlation, and the metric of each once outcomes arrive."""
        request = _request(ShadowReportRequest, model_name=model_name)
        return self._call(TaskName.SHADOW_REPORT, request).data_or_empty()

    # ------------------------------------------------------------------ monitoring

    def check(
        self,
        model_name: str,
        *,
        window: float | str | timedelta = "24h",
        rows: int | None = None,
        current_dataset: int | None = None,
        alias: str = "champion",
        thresholds: dict[str, float] | None = None,
        drift_thresholds: dict[str, float] | None = None,
        idempotency_key: str | None = None,
    ) -> JobHandle:
        """Check a model now: its logged predictions of the last ``window`` ("24h", "7d",
        "90m", hours as a number, or a timedelta; at most ``rows`` of the latest), or a
        registered dataset (``current_dataset``), against the version's training data.
        ``thresholds`` sets the health score's thresholds, ``drift_thresholds`` when a
        feature or the score drifts (``alpha``, ``wasserstein``, ``js``, ``psi_moderate``,
        ``psi_major``; docs/monitoring.md); keys left out keep their defaults, and a bad
        value raises InvalidRequest before anything is sent.
        A job; its result has the drift per feature, prediction drift, performance,
        data-quality findings, the health score and the report's path."""
        params: dict[str, Any] = {
            "model_name": model_name,
            "alias": alias,
            "window_hours": _hours(window),
        }
        if rows is not None:
            params["window_rows"] = rows
        if current_dataset is not None:
            params["current_dataset_id"] = current_dataset
        if thresholds:
            params["thresholds"] = thresholds
        if drift_thresholds:
            params["drift_thresholds"] = drift_thresholds
        return self.submit("check_model", params, idempotency_key=idempotency_key)

    def set_check_interval(self, model_name: str, seconds: float | None) -> dict[str, Any]:
        """Check this deployed model every ``seconds`` instead of every
        CIPML_DRIFT_CHECK_INTERVAL (None: back to the default). The sweep runs at the
        default's pace, so a shorter interval is checked at that pace."""
        request = _request(CheckIntervalRequest, model_name=model_name, seconds=seconds)
        return self._call(TaskName.SET_CHECK_INTERVAL, request).data_or_empty()

    # ------------------------------------------------------------------ alerts, retraining

    def alerts(
        self,
        model_name: str | None = None,
        *,
        active_only: bool = False,
        since: datetime | None = None,
        min_level: str = "LOW",
        limit: int = 100,
    ) -> dict[str, Any]:
        """Alert notifications newest first (raised, reminder, escalated, resolved; level,
        message, numbers, webhook deliveries) and the problems ``active`` now."""
        request = _request(
            AlertsRequest,
            model_name=model_name,
            active_only=active_only,
            since=since,
            min_level=min_level,
            limit=limit,
        )
        return self._call(TaskName.ALERTS, request).data_or_empty()

    def set_retrain_policy(
        self, model_name: str, policy: dict[str, Any] | None, *, actor: str | None = None
    ) -> dict[str, Any]:
        """When the model is retrained (check findings, a schedule) and how the retrained
        version is judged (docs/retraining.md); ``{}`` takes every default, None removes
        the policy (manual retrains still work)."""
        request = _request(
            SetRetrainPolicyRequest, model_name=model_name, policy=policy, actor=actor
        )
        return self._call(TaskName.SET_RETRAIN_POLICY, request).data_or_empty()

    def retrain(
        self,
        model_name: str,
        *,
        reason: str = "manual retrain",
        key: str | None = None,
        window: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Retrain the champion's config on a fresh window now. Returns the retrain (its
        ``job_id`` is the training job); ``coalesced`` when one is already open. ``key``
        makes a retried call start one retrain."""
        request = _request(
            RetrainRequest,
            model_name=model_name,
            reason=reason,
            key=key or uuid.uuid4().hex,
            window=window,
            actor=actor,
        )
        return self._call(TaskName.RETRAIN, request).data_or_empty()

    def retrains(self, model_name: str, *, limit: int = 50) -> dict[str, Any]:
        """The model's retrain policy and retrains, newest first: trigger, reason, status
        (open, coalesced, skipped, promoted, rollout, rejected, failed), job, decision."""
        request = _request(RetrainsRequest, model_name=model_name, limit=limit)
        return self._call(TaskName.RETRAINS, request).data_or_empty()

    def close(self) -> None:
        self._app.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _send(
        self,
        name: str,
        payload: dict[str, Any],
        task_id: str | None = None,
        queue: str = "control",
    ) -> Any:
        try:
            return self._app.send_task(name, args=[payload], queue=queue, task_id=task_id)
        except KombuOperationalError as exc:
            raise ServiceUnavailable(f"cannot reach the broker: {exc}") from exc

    def _call(self, name: str, payload: dict[str, Any], queue: str = "control") -> ControlReply:
        pending = self._send(name, payload, queue=queue)
        try:
            raw = pending.get(timeout=self.control_timeout, interval=0.005)
        except CeleryTimeout:
            raise ServiceUnavailable(
                f"no worker answered {name} within {self.control_timeout:g}s: start one that "
                f"consumes the {queue!r} queue (cipml worker)"
            ) from None
        except KombuOperationalError as exc:
            raise ServiceUnavailable(f"cannot reach the result backend: {exc}") from exc
        except Exception as exc:  # the control task itself raised: never leak its types
            raise ServiceUnavailable(f"{name} failed on the worker: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):  # tidying only; the reply is what matters
                pending.forget()
        reply = ControlReply.model_validate(raw)
        if not reply.ok:
            raise _error_from(reply)
        return reply

    def _meta(self, task_id: str) -> dict[str, Any]:
        try:
            return dict(self._app.backend.get_task_meta(task_id))
        except Exception as exc:  # the backend's own retries are exhausted
            raise ServiceUnavailable(f"cannot read the result backend: {exc}") from exc

    def _summary(self, job_id: str) -> tuple[str, dict[str, Any] | None]:
        meta = self._meta(job_id)
        return meta.get("status", "PENDING"), meta.get("result")

    def _submit_pending(self, job_id: str) -> bool:
        """Whether the submit message is still queued or being recorded."""
        state = self._meta(submit_task_id(job_id)).get("status", "PENDING")
        return state not in states.READY_STATES


class JobHandle:
    """A submitted job: ``status()``, ``progress()``, ``result()``, ``wait()``, ``cancel()``."""

    def __init__(self, client: Client, job_id: str, job_type: str | None = None) -> None:
        self.client = client
        self.id = job_id
        self.job_type = job_type

    def __repr__(self) -> str:
        return f"JobHandle(id={self.id!r}, type={self.job_type!r})"

    def info(self) -> JobInfo:
        """The job's record; QUEUED while the submit message itself is still in the queue."""
        try:
            return self.client.job(self.id)
        except JobNotFound:
            if self.job_type is None:
                raise
            if self.client._submit_pending(self.id):
                return JobInfo(id=self.id, type=self.job_type, status=JobStatus.QUEUED)
        # The submit was recorded after the lookup ran (brokers need not keep the order of
        # two messages): the record exists now.
        return self.client.job(self.id)

    def status(self) -> str:
        return self.info().status

    def progress(self) -> Progress | None:
        state, meta = self.client._summary(self.id)
        if state == PROGRESS_STATE and isinstance(meta, dict) and meta.get("progress"):
            return Progress.model_validate(meta["progress"])
        return self.info().progress

    def cancel(self) -> str:
        return self.client.cancel(self.id)

    def wait(self, timeout: float | None = None, progress: bool = True) -> dict[str, Any]:
        """Wait for the end and return the result; draws a bar when stderr is a terminal."""
        bar = ProgressBar(
            f"{self.job_type or 'job'} {self.id[:8]}", enabled=None if progress else False
        )
        try:
            return self._poll(timeout, bar)
        finally:
            bar.close()

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """The job's result; raises JobFailed / JobCancelled / JobTimeout."""
        return self._poll(timeout, ProgressBar("", enabled=False))

    def _poll(self, timeout: float | None, bar: ProgressBar) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        started = time.monotonic()
        interval, next_record_check = 0.005, started + 2.0
        while True:
            state, meta = self.client._summary(self.id)
            if state == "SUCCESS" and isinstance(meta, dict):
                return _outcome(JobSummary.model_validate(meta))
            if state == PROGRESS_STATE and isinstance(meta, dict) and meta.get("progress"):
                bar.update(JobStatus.RUNNING, Progress.model_validate(meta["progress"]))
            if time.monotonic() >= next_record_check:
                # The result backend is a cache: fall back on the durable record now and then.
                info = self.info()
                bar.update(info.status, info.progress)
                if JobStatus(info.status).is_terminal:
                    return _outcome(
                        JobSummary(
                            job_id=info.id, status=info.status, result=info.result, error=info.error
                        )
                    )
                next_record_check = time.monotonic() + 2.0
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeout(
                    f"job {self.id} did not finish within {timeout:g}s; "
                    "it keeps running (wait again, or cancel it)"
                )
            time.sleep(interval)
            # Short jobs are seen within 5 ms; longer ones cost a GET every 100 ms at most.
            if time.monotonic() - started > 0.25:
                interval = min(interval * 1.5, 0.1)


def _outcome(summary: JobSummary) -> dict[str, Any]:
    if summary.contract > CONTRACT_VERSION:
        raise CipmlError(
            f"the worker speaks contract {summary.contract}, this client "
            f"{CONTRACT_VERSION}: upgrade the client",
            code="contract_version_unsupported",
        )
    if summary.status == JobStatus.SUCCEEDED:
        return summary.result or {}
    error = summary.error
    if summary.status == JobStatus.CANCELLED:
        raise JobCancelled(error.message if error else None, job_id=summary.job_id)
    raise JobFailed(
        error.message if error else "the job failed",
        code=error.code if error else ErrorCode.INTERNAL_ERROR,
        job_id=summary.job_id,
    )


_HOURS_PER_UNIT = {"m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}


def _hours(window: float | str | timedelta) -> float:
    """A window in hours from 24, "24h", "7d", "90m", "2w" or a timedelta."""
    if isinstance(window, timedelta):
        return window.total_seconds() / 3600
    if isinstance(window, int | float):
        return float(window)
    text = window.strip().lower()
    unit = _HOURS_PER_UNIT.get(text[-1:])
    try:
        return float(text[:-1]) * unit if unit is not None else float(text)
    except ValueError:
        raise InvalidRequest(
            f"window {window!r}: give hours as a number, or a number with m, h, d or w "
            "(e.g. '24h', '7d')"
        ) from None


def _request(model: type[StrictModel], **fields: Any) -> dict[str, Any]:
    """A request body validated here first: a bad call fails before anything is sent."""
    try:
        return model.model_validate(fields).model_dump(mode="json")
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def _rows_request(**fields: Any) -> dict[str, Any]:
    """A predict body: validated, but the rows' values go as given, so an infinite number
    reaches the worker (and comes back as that row's ``value_not_finite``) rather than
    turning into a missing value on the way."""
    body = _request(PredictRequest, **fields)
    body["rows"] = fields["rows"]
    return body


def _error_from(reply: ControlReply) -> CipmlError:
    code = reply.error.code if reply.error else ErrorCode.INTERNAL_ERROR
    message = reply.error.message if reply.error else "the control task failed"
    if code == ErrorCode.JOB_NOT_FOUND:
        return JobNotFound(message)
    if code == ErrorCode.DATABASE_UNAVAILABLE:
        return ServiceUnavailable(message, code=code)
    if code in (
        ErrorCode.INVALID_PARAMS,
        ErrorCode.UNKNOWN_JOB_TYPE,
        ErrorCode.INVALID_MESSAGE,
        ErrorCode.CONTRACT_VERSION_UNSUPPORTED,
    ):
        return InvalidRequest(message, code=code)
    return CipmlError(message, code=code)
