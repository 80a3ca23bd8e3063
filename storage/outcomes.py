"""Outcomes: the true value or class of a prediction (by id) or of a customer (by key).

An outcome by prediction id is stored only when the log holds that prediction; an outcome
by routing key is stored as given (the customer may be scored later) and applies to that
key's predictions made at or before it was observed. Last write wins; ``writes`` counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pandas as pd
from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from storage.db import insert_for
from storage.models import Outcome
from storage.prediction_log import PREDICTED_AT, PREDICTION_ID, PredictionLog, prediction_time

BY_PREDICTION = "prediction"
BY_KEY = "key"
UNKNOWN_IDS_KEPT = 100
# An id is made at its row's predicted_at; the slack covers a scorer that stamps the two
# a little apart (an id at 10:59:59.999 whose row says 11:00:00.002).
ID_TIME_SLACK = timedelta(minutes=5)
CHUNK = 500  # rows per statement: well inside every driver's parameter limit
OUTCOME_COLUMNS = [
    PREDICTION_ID,
    "routing_key",
    "value",
    "label",
    "observed_at",
    "recorded_at",
    "writes",
]

T = TypeVar("T")


@dataclass
class OutcomeIn:
    prediction_id: str | None
    routing_key: str | None
    value: float | None
    label: str | None
    observed_at: datetime | None = None

    def __post_init__(self) -> None:
        if (self.prediction_id is None) == (self.routing_key is None):
            raise ValueError("an outcome names exactly one of prediction_id and routing_key")
        if self.value is None and self.label is None:
            raise ValueError("an outcome needs a value (a number) or a label (a class)")


@dataclass
class RecordSummary:
    recorded: int = 0  # new outcomes
    updated: int = 0  # writes to an outcome already recorded (last write wins)
    unknown_prediction_ids: list[str] = field(default_factory=list)  # the first 100
    unknown: int = 0
    unverified: int = 0  # ids too recent to check against the log, stored unchecked


class OutcomeRepository:
    def __init__(self, session: Session, log: PredictionLog) -> None:
        self.session = session
        self.log = log

    def record(
        self,
        model_name: str,
        outcomes: Sequence[OutcomeIn],
        now: datetime,
        unverified_after: datetime | None = None,
    ) -> RecordSummary:
        """Store outcomes (last write wins). Ids are checked against the log, except those
        made at or after ``unverified_after``: their prediction may still sit in a scoring
        process's write buffer, so they are stored unchecked (counted in ``unverified``)."""
        if now.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (UTC)")
        summary = RecordSummary()
        ids = [o.prediction_id for o in outcomes if o.prediction_id is not None]
        recent = {i for i in ids if unverified_after and _made_at_or_after(i, unverified_after)}
        known = self._known_ids(model_name, [i for i in ids if i not in recent]) | recent
        summary.unverified = len(recent)
        accepted: list[tuple[str, str, OutcomeIn]] = []
        for outcome in outcomes:
            if outcome.prediction_id is None:
                accepted.append((BY_KEY, str(outcome.routing_key), outcome))
            elif outcome.prediction_id in known:
                accepted.append((BY_PREDICTION, outcome.prediction_id, outcome))
            else:
                summary.unknown += 1
                if len(summary.unknown_prediction_ids) < UNKNOWN_IDS_KEPT:
                    summary.unknown_prediction_ids.append(outcome.prediction_id)
        # One statement cannot touch a row twice (PostgreSQL): the last of a subject's
        # writes in this call is stored, and all of them are counted in ``writes``.
        counts = Counter((kind, subject) for kind, subject, _ in accepted)
        last = {(kind, subject): outcome for kind, subject, outcome in accepted}
        existing = self._existing(model_name, list(last))
        summary.recorded = len(last) - len(existing)
        summary.updated = len(accepted) - summary.recorded
        now = now.astimezone(UTC)
        rows = [
            {
                "model_name": model_name,
                "subject_kind": kind,
                "subject": subject,
                "value": outcome.value,
                "label": outcome.label,
                "observed_at": outcome.observed_at or now,
                "recorded_at": now,
                "writes": counts[kind, subject],
            }
            for (kind, subject), outcome in last.items()
        ]
        insert = insert_for(self.session, Outcome)
        upsert = insert.on_conflict_do_update(
            index_elements=["model_name", "subject_kind", "subject"],
            set_={
                "value": insert.excluded.value,
                "label": insert.excluded.label,
                "observed_at": insert.excluded.observed_at,
                "recorded_at": insert.excluded.recorded_at,
                "writes": Outcome.writes + insert.excluded.writes,
            },
        )
        # One statement compiled once, executed over the rows (executemany): inlining
        # thousands of VALUES tuples costs seconds of SQL compilation.
        for chunk in _chunks(rows):
            self.session.execute(upsert, list(chunk))
        return summary

    def window(self, model_name: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Outcomes observed in [start, end): prediction_id or routing_key (the other is
        None), value, label, observed_at, recorded_at, writes."""
        # Plain rows, not ORM objects: a window can hold hundreds of thousands of outcomes
        # (24k objects took 1.1 s, the rows 0.1 s).
        found = self.session.execute(
            select(
                Outcome.subject_kind,
                Outcome.subject,
                Outcome.value,
                Outcome.label,
                Outcome.observed_at,
                Outcome.recorded_at,
                Outcome.writes,
            )
            .where(
                Outcome.model_name == model_name,
                Outcome.observed_at >= start,
                Outcome.observed_at < end,
            )
            .order_by(Outcome.observed_at, Outcome.id)
        ).all()
        frame = pd.DataFrame(
            [
                (
                    subject if kind == BY_PREDICTION else None,
                    subject if kind == BY_KEY else None,
                    *rest,
                )
                for kind, subject, *rest in found
            ],
            columns=OUTCOME_COLUMNS,
        )
        for column in ("observed_at", "recorded_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        frame["value"] = frame["value"].astype("float64")
        return frame

    def forget(self, routing_keys: Collection[str], prediction_ids: Collection[str]) -> int:
        """Delete (every model's) outcomes of these keys and predictions; returns the count."""
        deleted = 0
        for kind, subjects in ((BY_KEY, list(routing_keys)), (BY_PREDICTION, list(prediction_ids))):
            for chunk in _chunks(subjects):
                deleted += self._delete(
                    and_(Outcome.subject_kind == kind, Outcome.subject.in_(chunk))
                )
        return deleted

    def delete_before(self, cutoff: datetime) -> int:
        """Delete outcomes observed before ``cutoff``; returns the count."""
        return self._delete(Outcome.observed_at < cutoff)

    def _delete(self, condition: ColumnElement[bool]) -> int:
        done = self.session.execute(delete(Outcome).where(condition))
        return int(getattr(done, "rowcount", 0))

    def _known_ids(self, model_name: str, ids: Sequence[str]) -> set[str]:
        """The ids the log holds, reading only the prediction_id column of the files around
        each id's encoded time (undecodable ids are simply not known)."""
        by_hour: dict[datetime, list[datetime]] = defaultdict(list)
        for prediction_id in ids:
            try:
                at = prediction_time(prediction_id)
            except ValueError:
                continue
            by_hour[at.replace(minute=0, second=0, microsecond=0)].append(at)
        wanted, known = set(ids), set[str]()
        for times in by_hour.values():
            logged = self.log.read(
                self.session,
                model_name,
                min(times) - ID_TIME_SLACK,
                max(times) + ID_TIME_SLACK,
                columns=[PREDICTION_ID],
            )
            known.update(wanted.intersection(logged[PREDICTION_ID].tolist()))
        return known

    def _existing(self, model_name: str, subjects: list[tuple[str, str]]) -> set[tuple[str, str]]:
        # One kind at a time with a plain IN on subject: the unique index serves it
        # (PostgreSQL plans a row-value IN list as a scan: 2 s for 5,000 subjects).
        by_kind: dict[str, list[str]] = defaultdict(list)
        for kind, subject in subjects:
            by_kind[kind].append(subject)
        found: set[tuple[str, str]] = set()
        for kind, names in by_kind.items():
            for chunk in _chunks(names):
                rows = self.session.scalars(
                    select(Outcome.subject).where(
                        Outcome.model_name == model_name,
                        Outcome.subject_kind == kind,
                        Outcome.subject.in_(chunk),
                    )
                )
                found.update((kind, subject) for subject in rows)
        return found


def _made_at_or_after(prediction_id: str, moment: datetime) -> bool:
    try:
        return prediction_time(prediction_id) >= moment
    except ValueError:
        return False


def join_outcomes(predictions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """``predictions`` (prediction_id, routing_key, predicted_at, ...) with outcome_value,
    outcome_label and outcome_observed_at added, in the same order and index.

    An outcome by prediction id wins; otherwise a key outcome applies to each prediction
    of that key made at or before its observation (the first such observation).
    """
    out = predictions.copy(deep=False)  # copy-on-write: the new columns are out's only
    position = pd.RangeIndex(len(out))
    value = pd.Series(float("nan"), index=position, dtype="float64")
    label = pd.Series(None, index=position, dtype="object")
    observed = pd.Series(pd.NaT, index=position, dtype="datetime64[ns, UTC]")

    left = pd.DataFrame(
        {
            "_pos": position,
            # .array: text stays in its (Arrow) array, no million Python strings.
            PREDICTION_ID: predictions[PREDICTION_ID].array,
            "routing_key": predictions["routing_key"].array,
            # .array, not .to_numpy(): a timezone-aware column would become a million
            # Timestamp objects (seconds on a 1M-row window), the array stays datetime64.
            PREDICTED_AT: pd.to_datetime(predictions[PREDICTED_AT], utc=True)
            .dt.as_unit("ns")
            .array,
        }
    )
    right = outcomes.assign(observed_at=pd.to_datetime(outcomes["observed_at"], utc=True))
    right["observed_at"] = right["observed_at"].dt.as_unit("ns")

    by_id = right[right[PREDICTION_ID].notna()].drop_duplicates(PREDICTION_ID, keep="last")
    rest = left[left["routing_key"].notna()]
    if len(by_id):
        hit = left.merge(by_id, on=PREDICTION_ID, how="inner")
        _fill(value, label, observed, hit)
        rest = rest[~rest["_pos"].isin(hit["_pos"])]

    by_key = right[right["routing_key"].notna()].sort_values("observed_at")
    if len(by_key) and len(rest):
        matched = pd.merge_asof(
            rest.sort_values(PREDICTED_AT),
            by_key[["routing_key", "value", "label", "observed_at"]],
            left_on=PREDICTED_AT,
            right_on="observed_at",
            by="routing_key",
            direction="forward",  # the first observation at or after the prediction
        )
        _fill(value, label, observed, matched[matched["observed_at"].notna()])

    out["outcome_value"] = value.to_numpy()
    out["outcome_label"] = label.to_numpy()
    out["outcome_observed_at"] = observed.array
    return out


def _fill(value: pd.Series, label: pd.Series, observed: pd.Series, hit: pd.DataFrame) -> None:
    positions = hit["_pos"].to_numpy()
    value.iloc[positions] = hit["value"].astype("float64").to_numpy()
    label.iloc[positions] = hit["label"].astype("object").to_numpy()
    observed.iloc[positions] = hit["observed_at"].array


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for at in range(0, len(items), CHUNK):
        yield items[at : at + CHUNK]
