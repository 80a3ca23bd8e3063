"""apply_retention: prediction logs and outcomes older than their retention period, and the
artifacts of versions archived long ago that nothing holds. A dry run lists what would go."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from api_client.registry_params import RetentionParams
from storage.models import Outcome, PredictionFile, utcnow
from storage.outcomes import OutcomeRepository
from storage.retention import apply_artifact_retention, plan_artifact_retention
from workers.deployment.services import scoring_services
from workers.jobs.context import JobContext


def run_retention(ctx: JobContext, params: RetentionParams) -> dict[str, Any]:
    services = scoring_services(ctx.runtime)
    now = utcnow()
    result: dict[str, Any] = {"dry_run": params.dry_run, "at": now.isoformat()}
    if params.predictions:
        days = params.prediction_days or ctx.settings.prediction_retention_days
        cutoff = now - timedelta(days=days)
        with ctx.session() as session:
            if params.dry_run:
                files = session.scalar(select(func.count()).where(PredictionFile.first_at < cutoff))
                outcomes = session.scalar(select(func.count()).where(Outcome.observed_at < cutoff))
                result["predictions"] = {
                    "cutoff": cutoff.isoformat(),
                    "files_affected": int(files or 0),
                    "outcomes_to_delete": int(outcomes or 0),
                }
            else:
                rows = services.log_store.delete_before(session, cutoff)
                outcomes = OutcomeRepository(session, services.log_store).delete_before(cutoff)
                result["predictions"] = {
                    "cutoff": cutoff.isoformat(),
                    "rows_deleted": rows,
                    "outcomes_deleted": outcomes,
                }
    if params.artifacts:
        days = params.artifact_days or ctx.settings.artifact_retention_days
        with ctx.session() as session:
            candidates, kept = plan_artifact_retention(
                session, now=now, older_than=timedelta(days=days)
            )
            deleted: list[str] = []
            if not params.dry_run:
                deleted = apply_artifact_retention(
                    session, ctx.runtime.store, candidates, actor=f"job:{ctx.job_id}"
                )
        result["artifacts"] = {
            "older_than_days": days,
            "candidates": [
                {**asdict(c), "archived_at": c.archived_at.isoformat()} for c in candidates
            ],
            "kept": [asdict(k) for k in kept],
            "deleted": deleted,
        }
    return result
