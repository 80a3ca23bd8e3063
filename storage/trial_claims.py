"""Trial slots of a distributed search: the count that keeps a study at exactly n trials.

A runner claims a slot before each trial and ends the claim with the trial's outcome.
Claims of one job are serialised by a lock on the job's row. A slot is taken while its
claim is open and its lease is live; a claim whose runner stopped renewing it (killed) is
marked lost and its slot is free again, as is the slot of a failed trial. The search is
full when done + open claims reach n, finished when done claims reach n.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.errors import NotFound
from storage.models import Job, TrialClaim, utcnow


class ClaimState(StrEnum):
    OPEN = "open"
    DONE = "done"
    FAILED = "failed"
    LOST = "lost"


class SlotOutcome(StrEnum):
    CLAIMED = "claimed"  # run one trial now
    FULL = "full"  # every slot is taken by a live claim: wait, one may free
    FINISHED = "finished"  # n trials are done


@dataclass(frozen=True)
class Slot:
    outcome: SlotOutcome
    claim_id: int | None
    counts: dict[str, int]


class TrialClaimRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(
        self, job_id: str, runner: str, n_trials: int, lease_s: float, now: datetime | None = None
    ) -> Slot:
        now = now or utcnow()
        if self.session.get(Job, job_id, with_for_update=True) is None:
            raise NotFound(f"no job {job_id}")
        self.session.execute(
            update(TrialClaim)
            .where(
                TrialClaim.job_id == job_id,
                TrialClaim.state == ClaimState.OPEN.value,
                TrialClaim.lease_expires_at < now,
            )
            .values(state=ClaimState.LOST.value, ended_at=now)
        )
        counts = self.counts(job_id)
        done, open_ = counts[ClaimState.DONE], counts[ClaimState.OPEN]
        if done >= n_trials:
            return Slot(SlotOutcome.FINISHED, None, counts)
        if done + open_ >= n_trials:
            return Slot(SlotOutcome.FULL, None, counts)
        claim = TrialClaim(
            job_id=job_id,
            runner=runner[:200],
            state=ClaimState.OPEN.value,
            claimed_at=now,
            lease_expires_at=now + timedelta(seconds=lease_s),
        )
        self.session.add(claim)
        self.session.flush()
        counts[ClaimState.OPEN] += 1
        return Slot(SlotOutcome.CLAIMED, claim.id, counts)

    def renew(self, claim_id: int, lease_s: float, now: datetime | None = None) -> bool:
        """Extend an open claim's lease; False when the claim is no longer open (it was
        presumed lost): its trial must not count."""
        now = now or utcnow()
        renewed = self.session.execute(
            update(TrialClaim)
            .where(TrialClaim.id == claim_id, TrialClaim.state == ClaimState.OPEN.value)
            .values(lease_expires_at=now + timedelta(seconds=lease_s))
        )
        return bool(getattr(renewed, "rowcount", 0))

    def attach(self, claim_id: int, trial_number: int) -> None:
        self.session.execute(
            update(TrialClaim).where(TrialClaim.id == claim_id).values(trial_number=trial_number)
        )

    def end(
        self,
        claim_id: int,
        state: ClaimState,
        *,
        trial_number: int | None = None,
        error: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Close an open claim; False when it was no longer open."""
        values: dict[str, object] = {"state": state.value, "ended_at": now or utcnow()}
        if trial_number is not None:
            values["trial_number"] = trial_number
        if error is not None:
            values["error"] = error[:4000]
        ended = self.session.execute(
            update(TrialClaim)
            .where(TrialClaim.id == claim_id, TrialClaim.state == ClaimState.OPEN.value)
            .values(**values)
        )
        return bool(getattr(ended, "rowcount", 0))

    def counts(self, job_id: str) -> dict[str, int]:
        rows = self.session.execute(
            select(TrialClaim.state, func.count())
            .where(TrialClaim.job_id == job_id)
            .group_by(TrialClaim.state)
        ).all()
        counts = {state.value: 0 for state in ClaimState}
        counts.update({state: int(n) for state, n in rows})
        return counts

    def last_error(self, job_id: str) -> str | None:
        return self.session.scalar(
            select(TrialClaim.error)
            .where(TrialClaim.job_id == job_id, TrialClaim.error.is_not(None))
            .order_by(TrialClaim.id.desc())
            .limit(1)
        )
