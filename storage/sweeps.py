"""Sweep periods: a periodic sweep claims its period before it runs, so a duplicate beat
(two schedulers, a redelivered message) finds the period taken and does nothing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.db import insert_for
from storage.models import SweepPeriod


@dataclass(frozen=True)
class PeriodClaim:
    sweep: str
    period: int
    claimed_at: datetime
    duplicates: int


def period_of(now: datetime, interval_s: float) -> int:
    """The number of the period ``now`` falls in: floor(epoch seconds / interval_s)."""
    if interval_s <= 0:
        raise ValueError(f"a sweep interval must be positive, got {interval_s}")
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one (UTC)")
    return math.floor(now.timestamp() / interval_s)


def claim_period(session: Session, sweep: str, period: int, at: datetime) -> bool:
    """True for the one claim that inserted the period; a later claim counts itself as a
    duplicate and gets False. On PostgreSQL a concurrent claim waits on the unique key
    for the first to commit (or roll back), so exactly one of them wins."""
    # RETURNING, not rowcount: SQLAlchemy does not keep an INSERT's rowcount on PostgreSQL.
    inserted = session.execute(
        insert_for(session, SweepPeriod)
        .values(sweep=sweep, period=period, claimed_at=at, duplicates=0)
        .on_conflict_do_nothing(index_elements=["sweep", "period"])
        .returning(SweepPeriod.period)
    ).first()
    if inserted is not None:
        return True
    session.execute(
        update(SweepPeriod)
        .where(SweepPeriod.sweep == sweep, SweepPeriod.period == period)
        .values(duplicates=SweepPeriod.duplicates + 1)
        .execution_options(synchronize_session=False)
    )
    return False


def claims(session: Session, sweep: str) -> list[PeriodClaim]:
    """The sweep's claimed periods, oldest first."""
    rows = session.execute(
        select(
            SweepPeriod.sweep, SweepPeriod.period, SweepPeriod.claimed_at, SweepPeriod.duplicates
        )
        .where(SweepPeriod.sweep == sweep)
        .order_by(SweepPeriod.period)
    ).all()
    return [
        PeriodClaim(
            sweep=row.sweep,
            period=int(row.period),
            claimed_at=row.claimed_at,
            duplicates=int(row.duplicates),
        )
        for row in rows
    ]
