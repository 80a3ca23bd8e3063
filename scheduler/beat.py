"""Entry point for `celery -A scheduler.beat beat` (`cipml beat` runs it).

Beat only sends sweep tasks by name; the sweeps themselves claim their period and fan
out. Later issues add drift checks, rollout evaluation, retrains and retention to
SCHEDULE; until then beat runs with an empty schedule.
"""

from __future__ import annotations

from typing import Any

from workers.celery_app import create_app
from workers.settings import Settings

SCHEDULE: dict[str, dict[str, Any]] = {}

app = create_app(Settings())
app.conf.beat_schedule = SCHEDULE
