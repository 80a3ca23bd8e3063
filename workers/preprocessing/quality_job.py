"""The assess_quality job: load a dataset, assess it, store the report as JSON and HTML."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from api_client.quality_params import AssessQualityParams
from storage.artifacts import ArtifactRepository
from storage.models import QualityReport
from storage.quality_reports import QualityReportRepository
from workers.jobs.context import JobContext
from workers.jobs.errors import JobError
from workers.preprocessing.loading import load_dataset, require_rows
from workers.preprocessing.quality.assess import (
    AssessmentError,
    AssessOptions,
    assess,
    report_json,
)
from workers.preprocessing.quality.html import render_html

TOP_RECOMMENDATIONS = 5


def run_assess(ctx: JobContext, params: AssessQualityParams) -> dict[str, Any]:
    facts, frame = load_dataset(ctx, params.dataset_id)
    require_rows(facts, frame)
    options = AssessOptions(
        # Default: judged as of registration, so the same dataset gives the same report.
        as_of=_aware(params.as_of or facts.created_at),
        time_column=params.time_column,
        key_columns=list(params.key_columns),
        declared_types=dict(params.declared_types),
        ranges={name: (r.min, r.max) for name, r in params.ranges.items()},
        non_negative=list(params.non_negative) if params.non_negative is not None else None,
        freshness_half_life_days=params.freshness_half_life_days,
        high_cardinality=params.high_cardinality,
    )
    try:
        report = assess(frame, options, dataset=facts.as_dict(), progress=ctx.progress)
    except AssessmentError as exc:
        raise JobError(exc.code, str(exc)) from None
    ctx.progress("render", 0, 1, "report: JSON + HTML", force=True)
    store = ctx.runtime.store
    json_stored = store.put_bytes(report_json(report))
    html_stored = store.put_bytes(render_html(report).encode())
    with ctx.session() as session:
        artifacts = ArtifactRepository(session)
        artifacts.record(json_stored, media_type="application/json")
        artifacts.record(html_stored, media_type="text/html")
        row, _ = QualityReportRepository(session).record(
            QualityReport(
                dataset_id=facts.id,
                job_id=ctx.job_id,
                json_sha256=json_stored.sha256,
                html_sha256=html_stored.sha256,
                scores=report["scores"],
                as_of=options.as_of,
            )
        )
        report_id = row.id
    scores = report["scores"]
    ctx.progress("done", 1, 1, f"assess: overall {scores['overall']:g}/100", force=True)
    return {
        "report_id": report_id,
        "dataset_id": facts.id,
        "dataset": f"{facts.name} v{facts.version}",
        "scores": scores,
        "findings": _count_by_severity(report["findings"]),
        "recommendations": [r["text"] for r in report["recommendations"][:TOP_RECOMMENDATIONS]],
        "json_sha256": json_stored.sha256,
        "json_uri": json_stored.uri,
        "html_sha256": html_stored.sha256,
        "html_uri": html_stored.uri,
    }


def _aware(moment: datetime) -> datetime:
    """Times without a zone are UTC, as everywhere in cip-ml."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _count_by_severity(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"high": 0, "medium": 0, "low": 0}
    for finding in findings:
        counts[finding["severity"]] += 1
    return counts
