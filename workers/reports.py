"""Export a stored quality report to a file a person can open (`cipml report`, the demo)."""

from __future__ import annotations

from pathlib import Path

from storage.artifact_store import ArtifactStore
from storage.db import make_engine, make_session_factory, transaction
from storage.quality_reports import QualityReportRepository
from workers.settings import Settings


class ReportNotFound(LookupError):
    """The dataset has no quality report yet."""


def export_report(
    settings: Settings, dataset_id: int, output: Path | None = None, fmt: str = "html"
) -> Path:
    """Write the dataset's newest report (verified against its sha256) to ``output``
    (default: ``$CIPML_HOME/reports/dataset-<id>-quality.<fmt>``) and return the path."""
    engine = make_engine(settings.database)
    try:
        with transaction(make_session_factory(engine)) as session:
            reports = QualityReportRepository(session).for_dataset(dataset_id)
            if not reports:
                raise ReportNotFound(
                    f"dataset {dataset_id} has no quality report; run `cipml submit "
                    f"assess_quality -p dataset_id={dataset_id} --wait` first"
                )
            sha256 = reports[0].html_sha256 if fmt == "html" else reports[0].json_sha256
    finally:
        engine.dispose()
    data = ArtifactStore(settings.artifacts).read_bytes(sha256)
    target = output or settings.home / "reports" / f"dataset-{dataset_id}-quality.{fmt}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target.resolve()


def export_check_report(settings: Settings, job_id: str, output: Path | None = None) -> Path:
    """Write a monitoring check's HTML report (verified against its sha256) to ``output``
    (default: ``$CIPML_HOME/reports/check-<model>-<job id>.html``) and return the path."""
    from storage.monitoring import MonitoringRepository

    engine = make_engine(settings.database)
    try:
        with transaction(make_session_factory(engine)) as session:
            check = MonitoringRepository(session).by_job(job_id)
            if check is None or check.report_sha256 is None:
                raise ReportNotFound(f"job {job_id} stored no monitoring check")
            sha256, model_name = check.report_sha256, check.model_name
    finally:
        engine.dispose()
    data = ArtifactStore(settings.artifacts).read_bytes(sha256)
    target = output or settings.home / "reports" / f"check-{model_name}-{job_id[:12]}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target.resolve()
