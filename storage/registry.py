"""The model registry: aliases (champion, challenger, ...) moved by compare-and-set with a
full history, and the lifecycle of a version (registered -> staged -> deployed -> archived
-> purged), every step recorded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from storage.db import is_transient
from storage.errors import Conflict, DatabaseUnavailable, NotFound
from storage.models import AliasEvent, ModelAlias, ModelVersion, VersionEvent, utcnow

ALIAS_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
_ALIAS_RE = re.compile(ALIAS_PATTERN)

LIFECYCLE = ("registered", "staged", "deployed", "archived", "purged")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "registered": ("staged", "deployed", "archived"),
    "staged": ("deployed", "archived", "registered"),
    "deployed": ("staged", "archived"),
    "archived": ("staged", "purged"),
    "purged": (),
}


class AliasConflict(Conflict):
    """The alias moved (or appeared) between the read and the write: read it and retry."""

    code = "alias_conflict"


class InvalidTransition(Conflict):
    """The lifecycle does not allow that move from the version's current status."""

    code = "invalid_transition"


def check_alias(name: str) -> str:
    if not isinstance(name, str) or not _ALIAS_RE.match(name):
        raise ValueError(
            f"invalid alias {name!r}: use 1-64 characters, a lowercase letter first, then "
            "lowercase letters, digits, '_' or '-' (e.g. 'champion', 'challenger', 'eu-west')"
        )
    return name


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class AliasRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, model_name: str, alias: str) -> ModelAlias | None:
        # populate_existing: the revision must be the database's, not a stale cached one.
        return self.session.scalar(
            select(ModelAlias)
            .where(ModelAlias.model_name == model_name, ModelAlias.alias == alias)
            .execution_options(populate_existing=True)
        )

    def aliases_of(self, model_name: str) -> list[ModelAlias]:
        return list(
            self.session.scalars(
                select(ModelAlias)
                .where(ModelAlias.model_name == model_name)
                .order_by(ModelAlias.alias)
                .execution_options(populate_existing=True)
            )
        )

    def set(
        self,
        model_name: str,
        alias: str,
        version_id: int,
        *,
        actor: str,
        reason: str | None = None,
        expected_revision: int | None = None,
        at: datetime | None = None,
    ) -> AliasEvent | None:
        """Point ``alias`` at ``version_id``. None when it already does (a retry writes
        nothing); otherwise the event of the move. Raises AliasConflict when the alias is
        not at ``expected_revision`` (0: must not exist) or moved meanwhile."""
        check_alias(alias)
        version = self.session.get(ModelVersion, version_id)
        if version is None or version.model_name != model_name:
            raise NotFound(f"model {model_name!r} has no version with id {version_id}")
        when = at or utcnow()
        current = self.get(model_name, alias)
        if current is not None and current.version_id == version_id:
            return None
        seen = current.revision if current is not None else 0
        self._expect(model_name, alias, expected_revision, seen)
        if current is None:
            # Revisions continue after a removal: event revisions stay unique and ordered.
            revision = self._last_revision(model_name, alias) + 1
            statement: Any = insert(ModelAlias).values(
                model_name=model_name,
                alias=alias,
                version_id=version_id,
                revision=revision,
                updated_at=when,
                updated_by=actor,
            )
        else:
            revision = seen + 1
            statement = (
                update(ModelAlias)
                .where(
                    ModelAlias.model_name == model_name,
                    ModelAlias.alias == alias,
                    ModelAlias.revision == seen,
                )
                .values(version_id=version_id, revision=revision, updated_at=when, updated_by=actor)
                .execution_options(synchronize_session=False)
            )
        from_id = current.version_id if current is not None else None
        return self._move(
            model_name, alias, statement, seen, revision, from_id, version_id, actor, reason, when
        )

    def remove(
        self,
        model_name: str,
        alias: str,
        *,
        actor: str,
        reason: str | None = None,
        expected_revision: int | None = None,
        at: datetime | None = None,
    ) -> AliasEvent:
        current = self.get(model_name, alias)
        if current is None:
            raise NotFound(f"model {model_name!r} has no alias {alias!r}")
        seen = current.revision
        self._expect(model_name, alias, expected_revision, seen)
        statement = (
            delete(ModelAlias)
            .where(
                ModelAlias.model_name == model_name,
                ModelAlias.alias == alias,
                ModelAlias.revision == seen,
            )
            .execution_options(synchronize_session=False)
        )
        event = self._move(
            model_name,
            alias,
            statement,
            seen,
            seen + 1,
            current.version_id,
            None,
            actor,
            reason,
            at or utcnow(),
        )
        self.session.expunge(current)  # its row is gone
        return event

    def history(self, model_name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every move, oldest first."""
        query = select(AliasEvent).where(AliasEvent.model_name == model_name)
        if alias is not None:
            query = query.where(AliasEvent.alias == alias)
        return list(self.session.scalars(query.order_by(AliasEvent.at, AliasEvent.id)))

    def at(self, model_name: str, alias: str, when: datetime) -> int | None:
        """The version id ``alias`` named at ``when`` (None: not set then, or removed)."""
        last = self.session.scalar(
            select(AliasEvent)
            .where(
                AliasEvent.model_name == model_name,
                AliasEvent.alias == alias,
                AliasEvent.at <= when,
            )
            .order_by(AliasEvent.at.desc(), AliasEvent.revision.desc())
            .limit(1)
        )
        return last.to_version_id if last is not None else None

    def held_within(self, version_id: int, since: datetime) -> bool:
        """Whether any alias named the version at any moment from ``since`` to now: one
        points to it now, or a move to or away from it happened at or after ``since``."""
        if self.session.scalar(
            select(ModelAlias.alias).where(ModelAlias.version_id == version_id).limit(1)
        ):
            return True
        moved = self.session.scalar(
            select(AliasEvent.id)
            .where(
                or_(
                    AliasEvent.from_version_id == version_id,
                    AliasEvent.to_version_id == version_id,
                ),
                AliasEvent.at >= since,
            )
            .limit(1)
        )
        return moved is not None

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _expect(model_name: str, alias: str, expected: int | None, seen: int) -> None:
        if expected is not None and expected != seen:
            state = f"at revision {seen}" if seen else "not set"
            raise AliasConflict(
                f"alias {model_name}/{alias} is {state}, not at the expected revision "
                f"{expected}; read it again and retry"
            )

    def _last_revision(self, model_name: str, alias: str) -> int:
        last = self.session.scalar(
            select(func.max(AliasEvent.revision)).where(
                AliasEvent.model_name == model_name, AliasEvent.alias == alias
            )
        )
        return int(last or 0)

    def _move(
        self,
        model_name: str,
        alias: str,
        statement: Any,
        seen: int,
        revision: int,
        from_id: int | None,
        to_id: int | None,
        actor: str,
        reason: str | None,
        when: datetime,
    ) -> AliasEvent:
        """Run the compare-and-set ``statement`` and record its event, in a savepoint: a
        lost race rolls back only this move, never the caller's transaction."""
        moved_meanwhile = AliasConflict(
            f"alias {model_name}/{alias} was moved by someone else meanwhile (it was at "
            f"revision {seen}); read it again and retry"
        )
        event = AliasEvent(
            model_name=model_name,
            alias=alias,
            revision=revision,
            from_version_id=from_id,
            to_version_id=to_id,
            actor=actor,
            reason=reason,
            at=when,
        )
        try:
            with self.session.begin_nested():
                result = self.session.execute(statement)
                # An UPDATE/DELETE that matched nothing lost the race to a move that
                # changed the revision (an INSERT that lost raises IntegrityError instead).
                if not statement.is_insert and _rowcount(result) != 1:
                    raise moved_meanwhile
                self.session.add(event)
                self.session.flush()
        except IntegrityError:
            # A concurrent first set (same primary key) or the same event revision.
            raise moved_meanwhile from None
        return event


class VersionLifecycle:
    def __init__(self, session: Session) -> None:
        self.session = session

    def transition(
        self,
        version_id: int,
        to_status: str,
        *,
        actor: str,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> VersionEvent | None:
        """Move a version to ``to_status``; None (no event) when it is there already."""
        # The row lock serialises concurrent moves: each sees the status the last one set.
        version = self.session.get(
            ModelVersion, version_id, with_for_update=True, populate_existing=True
        )
        if version is None:
            raise NotFound(f"no model version {version_id}")
        current = version.status
        if current == to_status:
            return None
        allowed = TRANSITIONS.get(current, ())
        if to_status not in allowed:
            raise InvalidTransition(
                f"model version {version_id} ({version.model_name} {version.version}) cannot "
                f"move from {current!r} to {to_status!r}; from {current!r} it can move to: "
                f"{', '.join(allowed) or 'nothing (final)'}"
            )
        version.status = to_status
        event = VersionEvent(
            version_id=version_id,
            from_status=current,
            to_status=to_status,
            actor=actor,
            reason=reason,
            at=at or utcnow(),
        )
        self.session.add(event)
        self.session.flush()
        return event

    def events(self, version_id: int) -> list[VersionEvent]:
        return list(
            self.session.scalars(
                select(VersionEvent)
                .where(VersionEvent.version_id == version_id)
                .order_by(VersionEvent.at, VersionEvent.id)
            )
        )

    def entered_at(self, version_id: int, status: str) -> datetime | None:
        """When the version last moved into ``status`` (None: never)."""
        return self.session.scalar(
            select(VersionEvent.at)
            .where(VersionEvent.version_id == version_id, VersionEvent.to_status == status)
            .order_by(VersionEvent.at.desc(), VersionEvent.id.desc())
            .limit(1)
        )


@contextmanager
def _read(engine: Engine) -> Iterator[Connection]:
    """A pooled connection for one read, database errors translated as ``transaction``
    does. PostgreSQL reads in autocommit (no BEGIN/ROLLBACK round trips); SQLite keeps
    the engine's own transaction handling."""
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection
    except DBAPIError as exc:
        if is_transient(exc):
            raise DatabaseUnavailable(f"database unavailable: {exc.orig}") from exc
        raise


def current_alias(engine: Engine, model_name: str, alias: str) -> tuple[int, int] | None:
    """(version_id, revision) the alias names now, or None when it is not set: one
    primary-key read outside any transaction, for the scoring hot path."""
    query = select(ModelAlias.version_id, ModelAlias.revision).where(
        ModelAlias.model_name == model_name, ModelAlias.alias == alias
    )
    with _read(engine) as connection:
        row: Any = connection.execute(query).first()
    return None if row is None else (int(row[0]), int(row[1]))
