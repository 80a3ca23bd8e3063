"""A stored check's alerts: its findings (alert_rules) through each kind's cooldown state
(alert_cooldown), in the transaction that stores the check, so a redelivered check job
notifies nothing twice. Notifications go to the alerts table, the log, and a pending
delivery per configured webhook (sent by a task afterwards: a slow receiver never holds
up a check)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from storage.alerts import AlertRepository
from storage.models import Alert
from workers.monitoring.alert_cooldown import AlertState, CooldownPolicy, step
from workers.monitoring.alert_rules import KINDS, LEVEL_RANK, alert_findings

log = logging.getLogger("cipml.alerts")
LOG_LEVEL = {"LOW": logging.INFO, "MEDIUM": logging.WARNING, "HIGH": logging.WARNING}


def apply_alerts(
    session: Session,
    *,
    check: Mapping[str, Any],
    check_job_id: str,
    version_id: int,
    importances: Sequence[Mapping[str, Any]],
    now: datetime,
    policy: CooldownPolicy,
    webhook_urls: Sequence[str],
) -> list[Alert]:
    """Step every alert kind of the check's model and store the notifications it makes;
    returns them worst first (their webhook deliveries are pending)."""
    model_name = str(check["model_name"])
    findings = {finding.kind: finding for finding in alert_findings(check, importances)}
    repository = AlertRepository(session)
    notified: list[Alert] = []
    for kind, row in repository.lock_states(model_name, KINDS).items():
        before = AlertState.from_json(row.state) if row.state else None
        finding = findings.get(kind)
        if before is not None and row.state.get("version_id") != version_id:
            # A new version's problem is news, whatever the old one's cooldown; an old
            # problem the new version does not have resolves as usual.
            before = before if before.active and finding is None else None
        after, notification = step(before, finding, now, policy)
        row.state = {**after.to_json(), "version_id": version_id} if after is not None else {}
        row.active = bool(after is not None and after.active)
        row.updated_at = now
        if notification is None:
            continue
        alert, created = repository.record(
            {
                "model_name": model_name,
                "kind": kind,
                "level": notification.level,
                "event": notification.event,
                "message": notification.message,
                "numbers": dict(notification.numbers),
                "check_job_id": check_job_id,
                "version_id": version_id,
                "at": now,
            }
        )
        if not created:
            continue
        for url in webhook_urls:
            repository.add_delivery(alert.id, url, now)
        log.log(
            LOG_LEVEL.get(alert.level, logging.ERROR),
            "alert %s %s %s of %s: %s",
            alert.event,
            alert.level,
            kind,
            model_name,
            alert.message,
            extra={"data": {"model_name": model_name, "alert_kind": kind, "alert_id": alert.id}},
        )
        notified.append(alert)
    return sorted(notified, key=lambda a: (-LEVEL_RANK[a.level], KINDS.index(a.kind)))


def alert_view(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "model_name": alert.model_name,
        "kind": alert.kind,
        "level": alert.level,
        "event": alert.event,
        "message": alert.message,
        "numbers": alert.numbers,
        "check_job_id": alert.check_job_id,
        "at": alert.at.isoformat(),
    }
