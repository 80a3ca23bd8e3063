"""The values rollout strategies decide on: plain data, no I/O, time passed in.

The evaluation task reads the prediction and outcome logs into ``Observations``; the
strategies (``rollouts.py``) turn a ``Rollout`` and its observations into a
``Transition``; the task stores it. Statistics live in ``sequential.py`` and
``guardrails.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

# Roles of arms. Shadow arms take no routed traffic (weight 0): they score every row and
# their outputs are only logged.
CHAMPION = "champion"
CHALLENGER = "challenger"
CANARY = "canary"
SHADOW = "shadow"


@dataclass(frozen=True)
class MetricSample:
    """Sufficient statistics of one arm's metric values (one value per labelled row)."""

    n: int
    mean: float
    variance: float  # sample variance (ddof=1); 0.0 when n < 2

    @classmethod
    def of(cls, values: np.ndarray) -> MetricSample:
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        n = int(values.size)
        if n == 0:
            return cls(0, float("nan"), 0.0)
        variance = float(values.var(ddof=1)) if n > 1 else 0.0
        return cls(n, float(values.mean()), variance)

    @classmethod
    def empty(cls) -> MetricSample:
        return cls(0, float("nan"), 0.0)


@dataclass(frozen=True)
class ArmWindow:
    """What one arm did over an evaluated window."""

    role: str
    version_id: int
    predictions: int  # rows this arm scored (served, or logged for a shadow arm)
    errors: int  # rows this arm failed to score (served by the stable arm instead)
    latency_p95_ms: float | None  # None when the arm scored nothing
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))  # for the score PSI
    metric: MetricSample = field(default_factory=MetricSample.empty)  # labelled rows only

    @property
    def error_rate(self) -> float:
        attempted = self.predictions + self.errors
        return self.errors / attempted if attempted else 0.0


@dataclass(frozen=True)
class Observations:
    """Per role: since the rollout started, and since the current canary step started."""

    since_start: dict[str, ArmWindow]
    since_step: dict[str, ArmWindow]


@dataclass(frozen=True)
class SmokeResult:
    """A blue-green candidate checked in the idle slot (the task loads and scores it)."""

    ok: bool
    rows: int
    errors: int
    latency_ms: float
    message: str


@dataclass(frozen=True)
class ArmSpec:
    role: str
    version_id: int
    weight: float


@dataclass(frozen=True)
class Rollout:
    """A deployment as the strategies see it (storage persists the same fields)."""

    model_name: str
    strategy: str  # immediate | blue_green | canary | ab_test | shadow
    state: str
    config: dict[str, Any]  # validated by api_client.deployment_params, defaults filled
    arms: tuple[ArmSpec, ...]
    stable_version_id: int | None  # what serves now (the champion)
    candidate_version_id: int | None  # what is being rolled out
    previous_version_id: int | None  # what rollback() returns to
    step: int
    step_started_at: datetime | None
    started_at: datetime
    memory: dict[str, Any]  # the strategy's running state between ticks (JSON)


@dataclass(frozen=True)
class Transition:
    """One decision: the rollout after it, what happened and why, with its numbers."""

    rollout: Rollout
    kind: str  # an event kind (see rollouts.py)
    reason: str  # a sentence a person can read, with the numbers
    details: dict[str, Any]  # the numbers (JSON-able)
    changed: bool  # False when the rollout stays as it was (the decision is still stored)


class RolloutConflict(Exception):
    """A rollout is in progress and a new one may not start until it ends or is rolled
    back."""


class NothingToRollBack(Exception):
    """rollback() with no previous version and no rollout in progress."""


class NoStableVersion(Exception):
    """A canary, A/B test, shadow or blue-green rollout needs a version serving already."""
