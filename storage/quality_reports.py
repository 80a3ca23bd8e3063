"""Repository of data-quality reports (one per assess_quality job)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.artifacts import ArtifactRepository
from storage.models import QualityReport

OWNER_KIND = "quality_report"


class QualityReportRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, report_id: int) -> QualityReport | None:
        return self.session.get(QualityReport, report_id)

    def by_job(self, job_id: str) -> QualityReport | None:
        return self.session.scalar(select(QualityReport).where(QualityReport.job_id == job_id))

    def for_dataset(self, dataset_id: int) -> list[QualityReport]:
        """The dataset's reports, newest first."""
        return list(
            self.session.scalars(
                select(QualityReport)
                .where(QualityReport.dataset_id == dataset_id)
                .order_by(QualityReport.created_at.desc(), QualityReport.id.desc())
            )
        )

    def record(self, report: QualityReport) -> tuple[QualityReport, bool]:
        """Store a report and hold its two artifacts; idempotent per job.

        Returns (report, created). The artifacts must be recorded already.
        """
        if report.job_id is not None:
            existing = self.by_job(report.job_id)
            if existing is not None:
                return existing, False
        try:
            with self.session.begin_nested():
                self.session.add(report)
                self.session.flush()
        except IntegrityError:
            existing = self.by_job(report.job_id) if report.job_id else None
            if existing is None:
                raise
            return existing, False
        artifacts = ArtifactRepository(self.session)
        for sha256 in (report.json_sha256, report.html_sha256):
            artifacts.add_ref(sha256, OWNER_KIND, str(report.id))
        return report, True
