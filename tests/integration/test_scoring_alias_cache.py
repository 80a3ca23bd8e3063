"""The per-process alias cache of inline scoring on SQLite and PostgreSQL: a moved alias is
served by the very next call, and an unknown model or unset alias keeps its error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api_client.contract import ErrorCode
from storage.artifact_store import ArtifactStore
from storage.db import transaction
from storage.registry import AliasRepository
from tests.integration.test_registry import add_dataset, add_version
from workers.deployment import alias_cache as module
from workers.deployment.alias_cache import alias_cache, current_alias, serving_version
from workers.deployment.errors import ScoringError
from workers.deployment.log_buffer import LogBuffer


def two_versions(sessions: sessionmaker[Session], tmp_path: Path) -> tuple[int, int]:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    with transaction(sessions) as session:
        dataset = add_dataset(session, store)
        first = add_version(session, store, "job-1", dataset).id
        second = add_version(session, store, "job-2", dataset).id
    return first, second


def move(sessions: sessionmaker[Session], alias: str, version_id: int) -> None:
    with transaction(sessions) as session:
        AliasRepository(session).set("churn", alias, version_id, actor="test")


def test_a_moved_alias_is_served_by_the_next_call(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    first, second = two_versions(sessions, tmp_path)
    move(sessions, "champion", first)
    assert serving_version(sessions, "churn", "champion").id == first
    cached = serving_version(sessions, "churn", "champion")
    assert cached.id == first
    assert alias_cache(sessions).get(first) is cached
    move(sessions, "champion", second)
    assert serving_version(sessions, "churn", "champion").id == second
    move(sessions, "champion", first)  # back: the cached facts of the first serve again
    assert serving_version(sessions, "churn", "champion") is cached
    assert current_alias(sessions.kw["bind"], "churn", "champion") == (first, 3)


def test_a_cached_version_needs_no_registry_read_but_the_alias(
    sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = two_versions(sessions, tmp_path)
    move(sessions, "champion", first)
    serving_version(sessions, "churn", "champion")

    def full_path(*_: object) -> None:
        raise AssertionError("the cached version was read again")

    monkeypatch.setattr(module, "version_for_alias", full_path)
    assert serving_version(sessions, "churn", "champion").id == first


def test_unknown_model_and_unset_or_removed_alias_keep_their_errors(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    first, _ = two_versions(sessions, tmp_path)
    with pytest.raises(ScoringError) as missing:
        serving_version(sessions, "no-such-model", "champion")
    assert missing.value.code == ErrorCode.MODEL_NOT_FOUND
    with pytest.raises(ScoringError) as unset:
        serving_version(sessions, "churn", "champion")
    assert unset.value.code == ErrorCode.ALIAS_NOT_SET
    move(sessions, "champion", first)
    assert serving_version(sessions, "churn", "champion").id == first
    with transaction(sessions) as session:
        AliasRepository(session).remove("churn", "champion", actor="test")
    with pytest.raises(ScoringError) as removed:
        serving_version(sessions, "churn", "champion")
    assert removed.value.code == ErrorCode.ALIAS_NOT_SET


class _Log:
    """A prediction log whose first write fails (a database hiccup)."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.failures = 1

    def write(self, _session: Session, model_name: str, batch: pd.DataFrame, _: str) -> int:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database briefly unavailable")
        self.batches.append((model_name, batch["n"].tolist()))
        return len(batch)


def test_a_failed_flush_keeps_every_model_for_the_next_one(
    sessions: sessionmaker[Session],
) -> None:
    store = _Log()
    buffer = LogBuffer(store, sessions, flush_s=60)  # type: ignore[arg-type]
    buffer.add("churn", pd.DataFrame({"n": [0, 1]}))
    buffer.add("clv", pd.DataFrame({"n": [5]}))
    buffer.add("churn", pd.DataFrame({"n": [2]}))
    with pytest.raises(RuntimeError):
        buffer.flush()  # the first model's write fails: nothing is lost
    assert buffer.flush() == 4
    assert sorted(store.batches) == [("churn", [0, 1, 2]), ("clv", [5])]
    assert buffer.flush() == 0
