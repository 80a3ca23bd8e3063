"""Entry point for `celery -A scheduler.beat beat` (`cipml beat` runs it).

Beat only sends sweep tasks by name and touches no database; the sweeps themselves
(scheduler/sweeps.py and retraining_tasks.py, run by workers) claim their period and fan
out.
"""

from __future__ import annotations

from typing import Any

from api_client.contract import TaskName
from workers.celery_app import create_app
from workers.settings import Settings

settings = Settings()
SCHEDULE: dict[str, dict[str, Any]] = {
    # Admission control: slots of crashed training jobs expire, waiting jobs start.
    "admit-training": {
        "task": TaskName.ADMIT_TRAINING.value,
        "schedule": settings.admission_interval_s,
        "options": {"queue": "control", "expires": settings.admission_interval_s},
    },
    # Rollouts: canary steps and guardrails, A/B decisions, blue-green checks.
    "sweep-rollouts": {
        "task": TaskName.SWEEP_ROLLOUTS.value,
        "schedule": settings.rollout_interval_s,
        "kwargs": {"interval_s": settings.rollout_interval_s},
        "options": {"queue": "control", "expires": settings.rollout_interval_s},
    },
    # Monitoring: one check job per deployed model per period.
    "sweep-monitoring": {
        "task": TaskName.SWEEP_MONITORING.value,
        "schedule": settings.drift_check_interval,
        "kwargs": {"interval_s": settings.drift_check_interval},
        "options": {"queue": "control", "expires": settings.drift_check_interval},
    },
    # Retraining: scheduled retrains, lost decisions, overdue webhook deliveries.
    "sweep-retraining": {
        "task": TaskName.SWEEP_RETRAINING.value,
        "schedule": settings.retrain_interval_s,
        "kwargs": {"interval_s": settings.retrain_interval_s},
        "options": {"queue": "control", "expires": settings.retrain_interval_s},
    },
    # Retention of prediction logs, outcomes and archived versions' artifacts.
    "retention": {
        "task": TaskName.RETENTION_TICK.value,
        "schedule": settings.retention_interval_s,
        "options": {"queue": "control", "expires": settings.retention_interval_s},
    },
}

app = create_app(settings)
app.conf.beat_schedule = SCHEDULE
