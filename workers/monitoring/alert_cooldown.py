"""When an alert finding becomes a notification: the cooldown state machine of one
(model, alert kind), pure, with the time passed in.

Every check calls ``step(state, finding, now, policy)`` once per (model, kind) with that
kind's finding (or None) and stores the returned state. Transitions:

==================  ===================================================  ==============
state               this check                                           notification
==================  ===================================================  ==============
none                no finding                                           none (no state)
none / inactive     finding, last notification >= ``cooldown_s`` ago     raised
                    (or never)
inactive            finding, last notification < ``cooldown_s`` ago      none: reopened
                                                                         silently
                                                                         (``suppressed``
                                                                         + 1), or
                                                                         escalated when
                                                                         worse than the
                                                                         last one sent
active              finding worse than ``last_notified_level``           escalated
active              finding, last notification >= ``cooldown_s`` ago     reminder (raised
                                                                         if reopened
                                                                         silently)
active              finding, otherwise                                   none
active              no finding, ``clean_checks`` reaches                 resolved (none
                    ``resolve_after``                                    if reopened
                                                                         silently)
active              no finding, fewer clean checks                       none
inactive            no finding                                           none, unchanged
==================  ===================================================  ==============

Why: a flapping problem (there, gone, there again at every check) must not cause a storm.

* At most one notification per ``cooldown_s`` per kind, apart from escalations and
  resolutions: a reminder waits for the cooldown, and a problem that reappears within the
  cooldown of the last notification (typically the "resolved" one) reopens silently.
* A worsening problem does not wait: a level above the last one sent is "escalated" at
  once. Levels that drop and rise back to what was already sent raise nothing.
* A resolution needs ``resolve_after`` clean checks in a row (default 2): a problem that
  disappears for one check and comes back never looked resolved, so it neither sends
  "resolved" nor, on its return, "raised".
* An episode reopened silently was never announced (``last_notified_at < opened_at``): its
  end resolves silently too, and once it outlives the cooldown it is announced as "raised"
  (the last word its reader got was "resolved", so "reminder" would be wrong).

The level of an open state follows its latest finding; ``message`` is the latest finding's
sentence. Times are aware datetimes, kept in UTC; a naive ``now`` is an error (a check
stored without a zone would shift cooldowns by hours).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from workers.monitoring.alert_rules import LEVEL_RANK, AlertFinding

Event = Literal["raised", "reminder", "escalated", "resolved"]


@dataclass(frozen=True)
class CooldownPolicy:
    cooldown_s: float = 3600.0  # at most one raised/reminder per this many seconds
    resolve_after: int = 2  # consecutive clean checks before "resolved"

    def __post_init__(self) -> None:
        if not self.cooldown_s >= 0:
            raise ValueError(f"cooldown_s must be >= 0; got {self.cooldown_s}")
        if self.resolve_after < 1:
            raise ValueError(f"resolve_after must be >= 1; got {self.resolve_after}")


@dataclass(frozen=True)
class Notification:
    event: Event
    level: str
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "level": self.level,
            "message": self.message,
            "numbers": dict(self.numbers),
        }


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"an aware datetime is needed; got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _parse(text: str | None) -> datetime | None:
    return _utc(datetime.fromisoformat(text)) if text is not None else None


@dataclass(frozen=True)
class AlertState:
    active: bool
    level: str  # of the latest finding
    opened_at: datetime  # start of the current (or last) episode
    last_seen_at: datetime  # latest check with a finding
    last_notified_at: datetime | None  # any event, "resolved" included
    last_notified_level: str | None
    clean_checks: int = 0  # consecutive checks without a finding
    notifications: int = 0  # sent over the state's life
    suppressed: int = 0  # silent reopenings
    message: str = ""  # the latest finding's sentence

    @property
    def announced(self) -> bool:
        """Whether the current episode was notified (not reopened silently)."""
        return self.last_notified_at is not None and self.last_notified_at >= self.opened_at

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "level": self.level,
            "opened_at": _iso(self.opened_at),
            "last_seen_at": _iso(self.last_seen_at),
            "last_notified_at": _iso(self.last_notified_at),
            "last_notified_level": self.last_notified_level,
            "clean_checks": self.clean_checks,
            "notifications": self.notifications,
            "suppressed": self.suppressed,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertState:
        opened, seen = _parse(data.get("opened_at")), _parse(data.get("last_seen_at"))
        if opened is None or seen is None:
            raise ValueError("an alert state needs opened_at and last_seen_at")
        return cls(
            active=bool(data["active"]),
            level=str(data["level"]),
            opened_at=opened,
            last_seen_at=seen,
            last_notified_at=_parse(data.get("last_notified_at")),
            last_notified_level=data.get("last_notified_level"),
            clean_checks=int(data.get("clean_checks", 0)),
            notifications=int(data.get("notifications", 0)),
            suppressed=int(data.get("suppressed", 0)),
            message=str(data.get("message", "")),
        )


def _worse(level: str, than: str | None) -> bool:
    return than is not None and LEVEL_RANK.get(level, 0) > LEVEL_RANK.get(than, 0)


def _cooled(state: AlertState, now: datetime, policy: CooldownPolicy) -> bool:
    """Whether ``cooldown_s`` has passed since the last notification (or there was none)."""
    last = state.last_notified_at
    return last is None or (now - last).total_seconds() >= policy.cooldown_s


def _notify(
    state: AlertState, event: Event, finding: AlertFinding, now: datetime
) -> tuple[AlertState, Notification]:
    sent = replace(
        state,
        last_notified_at=now,
        last_notified_level=finding.level,
        notifications=state.notifications + 1,
    )
    text = finding.message
    if event == "reminder":
        text = f"Still open since {_iso(state.opened_at)}: {text}"
    elif event == "escalated":
        text = f"Worse, now {finding.level} (was {state.last_notified_level}): {text}"
    return sent, Notification(event, finding.level, text, dict(finding.numbers))


def step(
    state: AlertState | None,
    finding: AlertFinding | None,
    now: datetime,
    policy: CooldownPolicy = CooldownPolicy(),
) -> tuple[AlertState | None, Notification | None]:
    """The next state of one (model, kind) and the notification to send, if any."""
    now = _utc(now)
    if finding is None:
        if state is None or not state.active:
            return state, None
        state = replace(state, clean_checks=state.clean_checks + 1)
        if state.clean_checks < policy.resolve_after:
            return state, None
        closed = replace(state, active=False)
        if not state.announced:  # nobody heard of this episode: end it quietly too
            return closed, None
        closed = replace(closed, last_notified_at=now, notifications=state.notifications + 1)
        return closed, Notification(
            "resolved",
            state.level,
            f"Resolved, clean in the last {state.clean_checks} checks: {state.message}",
            {
                "clean_checks": state.clean_checks,
                "opened_at": _iso(state.opened_at),
                "last_seen_at": _iso(state.last_seen_at),
            },
        )

    if state is None:
        opened = AlertState(True, finding.level, now, now, None, None, message=finding.message)
        return _notify(opened, "raised", finding, now)
    # Every check with a finding: the latest level and sentence, the clean run broken.
    current = replace(
        state, level=finding.level, last_seen_at=now, clean_checks=0, message=finding.message
    )
    if not state.active:
        reopened = replace(current, active=True, opened_at=now)
        if _cooled(state, now, policy):
            return _notify(reopened, "raised", finding, now)
        if _worse(finding.level, state.last_notified_level):
            return _notify(reopened, "escalated", finding, now)
        return replace(reopened, suppressed=state.suppressed + 1), None
    if _worse(finding.level, state.last_notified_level):
        return _notify(current, "escalated", finding, now)
    if _cooled(state, now, policy):
        return _notify(current, "reminder" if state.announced else "raised", finding, now)
    return current, None
