"""check_model: one monitoring check of a model, stored once per job with its HTML report.

Reads the reference (the version's training rows) and the current window, computes data
drift, prediction drift, performance against the holdout baseline, live data quality and
the health score (plain modules beside this one), then stores the check and its report.
A redelivered job (a worker killed mid-check) computes again and finds its row stored:
exactly one result per job. The check's alerts are applied in the transaction that stores
it (alerting.py); then the retraining policy is asked, by task name, whether the findings
call for a retrain (monitoring only records findings; scheduler/retraining.py decides).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from api_client.contract import Queue, TaskName
from api_client.monitoring_params import CheckParams
from storage.alerts import AlertRepository
from storage.artifacts import ArtifactRepository
from storage.models import utcnow
from storage.monitoring import MonitoringRepository
from workers.deployment.model_inputs import is_categorical
from workers.deployment.services import scoring_services
from workers.jobs.context import JobContext
from workers.monitoring.alert_cooldown import CooldownPolicy
from workers.monitoring.alerting import alert_view, apply_alerts
from workers.monitoring.check_inputs import (
    CheckedVersion,
    Current,
    Reference,
    checked_version,
    load_dataset_window,
    load_logged_window,
    load_reference,
    pipeline_of,
)
from workers.monitoring.drift import (
    DEFAULT_THRESHOLDS,
    DriftThresholds,
    data_drift,
    prediction_drift,
    prepare_reference,
)
from workers.monitoring.health import HealthInputs, HealthThresholds, health_score
from workers.monitoring.importance import drifted_importance_share
from workers.monitoring.live_quality import live_quality
from workers.monitoring.performance import PerformanceCheck, performance_check
from workers.monitoring.report_html import render_check_report

HTML_MEDIA = "text/html"
HISTORY = 30  # earlier checks shown in the report's charts
# The metric each problem is judged by, as the version's holdout metrics name it.
METRIC_OF = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}


def run_check(ctx: JobContext, params: CheckParams) -> dict[str, Any]:
    now = utcnow()
    version = checked_version(ctx, params)
    pipeline = pipeline_of(ctx, version)
    ctx.progress("reference", 0, 3, "reading the reference: the version's training rows")
    reference = load_reference(ctx, version, pipeline, ctx.settings.monitoring_reference_rows)
    ctx.progress("window", 1, 3, "reading the current window")
    if params.current_dataset_id is not None:
        current = load_dataset_window(ctx, version, pipeline, params.current_dataset_id)
    else:
        current = load_logged_window(ctx, scoring_services(ctx.runtime), version, params, now)
    ctx.progress("statistics", 2, 3, f"comparing {len(current.frame):,} rows with the reference")
    with ctx.session() as session:
        history = MonitoringRepository(session).history(params.model_name, HISTORY, before=now)
        earlier = [_history_point(row.result, row.checked_at) for row in history]
        # The usual volume: earlier scheduled-style windows of the same length.
        volumes = [
            row.window_rows
            for row in history
            if row.source == "prediction_log"
            and (row.result.get("window") or {}).get("hours") == params.window_hours
        ]
    check = compute_check(version, reference, current, params, earlier, volumes)
    check.update(
        check_id=ctx.job_id,
        checked_at=now.isoformat(),
        model_name=version.serving.model_name,
        version=version.serving.version,
    )
    page = render_check_report(check).encode()
    stored_page = ctx.runtime.store.put_bytes(page)
    health = check["health"]
    with ctx.session() as session:
        ArtifactRepository(session).record(stored_page, HTML_MEDIA)
        row, created = MonitoringRepository(session).record(
            {
                "job_id": ctx.job_id,
                "model_name": version.serving.model_name,
                "version_id": version.serving.id,
                "checked_at": now,
                "window_start": current.start,
                "window_end": current.end,
                "window_rows": len(current.frame),
                "source": current.source,
                "health_score": health["score"],
                "status": health["status"],
                "drifted": bool((check["data_drift"] or {}).get("drifted")),
                "result": check,
                "report_sha256": stored_page.sha256,
            }
        )
        stored, report_sha256 = dict(row.result), row.report_sha256
        if created:  # in the check's own transaction: a redelivered job notifies nothing
            apply_alerts(
                session,
                check=stored,
                check_job_id=ctx.job_id,
                version_id=version.serving.id,
                importances=version.row.importances or [],
                now=now,
                policy=CooldownPolicy(
                    cooldown_s=ctx.settings.alert_cooldown_s,
                    resolve_after=ctx.settings.alert_resolve_after,
                ),
                webhook_urls=ctx.settings.webhook_urls,
            )
        alerts = AlertRepository(session).of_check(ctx.job_id)
        pending = [
            d.id
            for d in AlertRepository(session).deliveries_of([a.id for a in alerts])
            if d.status == "pending"
        ]
        alert_views = [alert_view(alert) for alert in alerts]
    # Sent again by a redelivered job: the delivery and the retrain policy are idempotent.
    for delivery in pending:
        ctx.send_after_commit(
            TaskName.DELIVER_WEBHOOK.value,
            {"delivery_id": delivery},
            queue=Queue.MONITORING.value,
            task_id=f"webhook-{delivery}-1",
        )
    ctx.send_after_commit(
        TaskName.CONSIDER_RETRAIN.value,
        {"check_job_id": ctx.job_id, "model_name": version.serving.model_name},
        queue=Queue.CONTROL.value,
    )
    score = "-" if health["score"] is None else f"{health['score']:.0f}"
    ctx.progress("done", 3, 3, f"health {score}/100 ({health['status']})")
    return {
        **_summary(stored),
        "alerts": alert_views,
        "report_sha256": report_sha256,
        "report": _local(ctx, report_sha256),
    }


def compute_check(
    version: CheckedVersion,
    reference: Reference,
    current: Current,
    params: CheckParams,
    history: list[dict[str, Any]],
    volumes: list[int],
) -> dict[str, Any]:
    """Everything a check decides, as JSON (no I/O)."""
    kinds = {
        str(field["name"]): "categorical" if is_categorical(field) else "numeric"
        for field in version.serving.input_schema
    }
    if reference.prepared is None:  # sorted and binned once per cached reference
        reference.prepared = prepare_reference(reference.frame, kinds=kinds)
    limits = drift_thresholds_of(params)
    drift = (
        data_drift(reference.prepared, current.frame, thresholds=limits)
        if len(current.frame)
        else None
    )
    drift_json = drift.to_json() if drift is not None else None
    scored = np.isfinite(current.scores).any() and np.isfinite(reference.scores).any()
    predictions = prediction_drift(reference.scores, current.scores, limits) if scored else None
    performance = _performance(version, current, params)
    findings = live_quality(reference.statistics.get("features", {}), current.frame)
    usual = float(np.median(volumes)) if volumes else None
    health = health_score(
        HealthInputs(
            # A drop counts once the window has enough labelled rows to measure it.
            performance_drop=performance.drop
            if performance is not None and performance.status in ("ok", "drifted")
            else None,
            performance_drifted=performance is not None and performance.status == "drifted",
            drifted_importance_share=drifted_importance_share(
                drift_json, version.row.importances or []
            )[0],
            prediction_psi=predictions.psi if predictions is not None else None,
            prediction_drifted=predictions is not None and predictions.drifted,
            quality_findings=findings,
            error_rate=_error_rate(current),
            latency_p95_ms=current.latency_p95_ms,
            volume=len(current.frame) if current.source == "prediction_log" else None,
            usual_volume=usual,
        ),
        HealthThresholds(**params.thresholds.model_dump()),
    )
    health_view: dict[str, Any] = {
        "score": health.score,
        "status": health.status,
        "reasons": list(health.reasons),
        "components": health.components,
        "not_measured": list(health.not_measured),
    }
    if not len(current.frame):  # nothing to judge: say so rather than call it healthy
        where = "logged predictions" if current.source == "prediction_log" else "rows"
        health_view.update(
            score=None,
            status="no_data",
            reasons=[f"no {where} of {version.serving.version} in the window: nothing to check"],
        )
    return {
        "window": {
            "source": current.source,
            "start": current.start.isoformat() if current.start else None,
            "end": current.end.isoformat() if current.end else None,
            "hours": params.window_hours if current.source == "prediction_log" else None,
            "rows": len(current.frame),
            "reference_rows": len(reference.frame),
            "labelled_rows": len(current.y_true),
        },
        "health": health_view,
        "data_drift": drift_json,
        "prediction_drift": predictions.to_json() if predictions is not None else None,
        "performance": performance.to_json() if performance is not None else None,
        "quality": [_finding(finding) for finding in findings],
        "operations": {
            "predictions": current.predictions,
            "errors": current.errors,
            "error_rate": _error_rate(current),
            "latency_p95_ms": current.latency_p95_ms,
            "usual_volume": usual,
        },
        "thresholds": params.thresholds.model_dump(),
        "history": history,
    }


def drift_thresholds_of(params: CheckParams) -> DriftThresholds:
    """The check's decision thresholds over the default structural ones (min rows, levels,
    PSI bins): a worker's cached prepared reference was binned and capped with those."""
    return replace(DEFAULT_THRESHOLDS, **params.drift_thresholds.model_dump())


def _local(ctx: JobContext, sha256: str | None) -> str | None:
    """The stored report's file URL when the artifact store is a local folder."""
    if sha256 is None:
        return None
    try:
        return f"file://{ctx.runtime.store.local_path(sha256)}"
    except ValueError:  # a remote store: export_check_report fetches it
        return None


def _performance(
    version: CheckedVersion, current: Current, params: CheckParams
) -> PerformanceCheck | None:
    problem = version.serving.problem
    if problem == "clustering":  # segmentation: no outcome to judge by
        return None
    metric = METRIC_OF[problem]
    baseline = (version.row.metrics or {}).get(metric)
    predicted = current.y_score if problem in ("binary", "regression") else current.y_label
    return performance_check(
        current.y_true,
        predicted,
        problem=problem,
        metric=metric,
        baseline=float(baseline) if baseline is not None else None,
        accuracy_drop=params.thresholds.accuracy_drop,
        threshold=version.serving.threshold,
    )


def _error_rate(current: Current) -> float | None:
    attempted = current.predictions + current.errors
    return current.errors / attempted if current.source == "prediction_log" and attempted else None


def _finding(finding: Any) -> dict[str, Any]:
    return {
        "column": finding.column,
        "kind": finding.kind,
        "severity": finding.severity,
        "message": finding.message,
        "numbers": finding.numbers,
    }


def _history_point(result: dict[str, Any], checked_at: datetime) -> dict[str, Any]:
    performance = result.get("performance") or {}
    drift = result.get("data_drift") or {}
    return {
        "checked_at": checked_at.isoformat(),
        "health": (result.get("health") or {}).get("score"),
        "performance": performance.get("value"),
        "drifted_share": drift.get("drifted_share"),
    }


def _summary(check: dict[str, Any]) -> dict[str, Any]:
    drift = check.get("data_drift") or {}
    features: list[dict[str, Any]] = list(drift.get("features") or [])
    return {
        "model_name": check["model_name"],
        "version": check["version"],
        "checked_at": check["checked_at"],
        "window": check["window"],
        "health": check["health"],
        "drifted": bool(drift.get("drifted")),
        "drifted_features": [f["name"] for f in features if f["drifted"]],
        "prediction_drift": check.get("prediction_drift"),
        "performance": check.get("performance"),
        "quality": check.get("quality"),
    }
