"""Quality reports and derived datasets in storage, on SQLite and PostgreSQL: one report per
job however often it is delivered, artifacts held, lineage kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from storage.artifact_store import ArtifactStore
from storage.artifacts import ArtifactRepository
from storage.datasets import DatasetRepository
from storage.db import transaction
from storage.errors import ArtifactInUse
from storage.jobs import JobRepository
from storage.models import Dataset, Job, QualityReport
from storage.quality_reports import QualityReportRepository


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


def _job(session: Session, job_id: str, job_type: str) -> None:
    JobRepository(session).create(
        Job(id=job_id, type=job_type, params={}, status="RUNNING", attempts=1)
    )


def _report(dataset_id: int, job_id: str, json_sha: str, html_sha: str) -> QualityReport:
    return QualityReport(
        dataset_id=dataset_id,
        job_id=job_id,
        json_sha256=json_sha,
        html_sha256=html_sha,
        scores={"overall": 97.5},
        as_of=datetime(1998, 7, 1, tzinfo=UTC),
    )


def test_reports_are_one_per_job_and_hold_their_artifacts(
    sessions: sessionmaker[Session], store: ArtifactStore
) -> None:
    data, report_json, report_html = (store.put_bytes(b) for b in (b"t", b"{}", b"<html>"))
    with transaction(sessions) as session:
        for job_id, job_type in (("ingest", "ingest_dataset"), ("a1", "assess_quality"),
                                 ("a2", "assess_quality")):  # fmt: skip
            _job(session, job_id, job_type)
        artifacts = ArtifactRepository(session)
        for stored in (data, report_json, report_html):
            artifacts.record(stored)
        dataset, _ = DatasetRepository(session).register(
            Dataset(name="t", stored_sha256=data.sha256, rows=1, columns=1, schema=[],
                    created_by_job="ingest")
        )  # fmt: skip
        dataset_id = dataset.id
    with transaction(sessions) as session:
        first, created = QualityReportRepository(session).record(
            _report(dataset_id, "a1", report_json.sha256, report_html.sha256)
        )
        assert created
        first_id = first.id
    with transaction(sessions) as session:  # the same job delivered again
        again, created = QualityReportRepository(session).record(
            _report(dataset_id, "a1", report_json.sha256, report_html.sha256)
        )
        assert not created and again.id == first_id
    with transaction(sessions) as session:  # a second job, same bytes: a second report
        second, created = QualityReportRepository(session).record(
            _report(dataset_id, "a2", report_json.sha256, report_html.sha256)
        )
        assert created
        reports = QualityReportRepository(session).for_dataset(dataset_id)
        assert [r.id for r in reports] == [second.id, first_id]  # newest first
        assert ArtifactRepository(session).refcount(report_html.sha256) == 2
        assert reports[0].scores == {"overall": 97.5}
        assert reports[0].as_of == datetime(1998, 7, 1, tzinfo=UTC)
    with transaction(sessions) as session, pytest.raises(ArtifactInUse):
        ArtifactRepository(session).delete_unreferenced(store, report_json.sha256)


def test_a_derived_dataset_keeps_its_parent_and_holds_its_pipeline(
    sessions: sessionmaker[Session], store: ArtifactStore
) -> None:
    raw, cleaned, pipeline = (store.put_bytes(b) for b in (b"raw", b"clean", b"skops"))
    with transaction(sessions) as session:
        _job(session, "ingest", "ingest_dataset")
        _job(session, "clean", "clean")
        for stored in (raw, cleaned, pipeline):
            ArtifactRepository(session).record(stored)
        parent, _ = DatasetRepository(session).register(
            Dataset(name="t", stored_sha256=raw.sha256, rows=2, columns=1, schema=[],
                    created_by_job="ingest")
        )  # fmt: skip
        parent_id = parent.id
    lineage = {"parent_sha256": raw.sha256, "libraries": {"scikit-learn": "1.9"}}
    with transaction(sessions) as session:
        child, created = DatasetRepository(session).register(
            Dataset(name="t.clean", stored_sha256=cleaned.sha256, rows=2, columns=1, schema=[],
                    created_by_job="clean", parent_id=parent_id,
                    pipeline_sha256=pipeline.sha256, lineage=lineage)
        )  # fmt: skip
        assert created
    with transaction(sessions) as session:
        child = DatasetRepository(session).require(child.id)
        assert child.parent_id == parent_id and child.lineage == lineage
        assert ArtifactRepository(session).refcount(pipeline.sha256) == 1
