"""Alembic makes the schema, matches the models, and workers refuse an old schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import make_engine
from storage.errors import SchemaOutOfDate
from storage.migrate import current_revision, ensure_current, head_revision, upgrade
from storage.models import Base
from tests.support.services import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite'}"
    else:
        with postgres_database() as url:
            yield url


def test_upgrade_makes_a_schema_that_matches_the_models(empty_url: str) -> None:
    engine = make_engine(empty_url)
    with pytest.raises(SchemaOutOfDate, match="run `cipml db upgrade`"):
        ensure_current(engine)
    assert upgrade(empty_url) == head_revision()
    ensure_current(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    assert {
        "jobs",
        "job_events",
        "datasets",
        "artifacts",
        "artifact_refs",
        "fan_in_groups",
        "fan_in_parts",
    } <= set(inspect(engine).get_table_names())
    upgrade(empty_url)  # idempotent
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_downgrade_to_base_and_back(empty_url: str) -> None:
    upgrade(empty_url)
    upgrade_engine = make_engine(empty_url)
    from alembic import command

    from storage.migrate import alembic_config

    command.downgrade(alembic_config(empty_url), "base")
    assert current_revision(upgrade_engine) is None
    assert "jobs" not in inspect(upgrade_engine).get_table_names()
    upgrade(empty_url)
    assert current_revision(upgrade_engine) == head_revision()
    upgrade_engine.dispose()
