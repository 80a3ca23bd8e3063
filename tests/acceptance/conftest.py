"""Fixtures the acceptance tests share: the workers' data root and artifact store, and the
bundled CDNOW log ingested once per module."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from api_client import Client
from storage.artifact_store import ArtifactStore

ROOT = Path(__file__).resolve().parents[2]
CDNOW = ROOT / "data" / "cdnow_transactions.parquet"


@pytest.fixture(scope="module")
def data_root(service_env: dict[str, str]) -> Path:
    return Path(service_env["CIPML_DATA_ROOTS"])


@pytest.fixture(scope="module")
def store(service_env: dict[str, str]) -> ArtifactStore:
    return ArtifactStore(service_env["CIPML_ARTIFACT_ROOT"])


def ingest(client: Client, data_root: Path, source: Path, name: str) -> int:
    """Place ``source`` in the data root and ingest it as ``name``; the dataset id."""
    target = data_root / f"{name}{''.join(source.suffixes)}"
    shutil.copyfile(source, target)
    result = client.submit("ingest_dataset", {"uri": target.name, "name": name}).wait(120)
    return int(result["dataset_id"])


@pytest.fixture(scope="module")
def cdnow(client: Client, data_root: Path) -> int:
    return ingest(client, data_root, CDNOW, f"cdnow-{uuid.uuid4().hex[:6]}")
