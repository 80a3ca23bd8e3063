"""A canary rollout on simulated traffic: the real ``start`` / ``evaluate``, tick by tick.

Each tick ``requests_per_tick`` requests are split between the stable and canary arms by
the canary's current share (binomial). Every request is labelled: the metric is accuracy,
each prediction correct with probability ``p_stable`` or ``p_canary``. Both arms draw their
scores from the same distribution, have the same latency and no errors, so only the metric
can tell them apart. Time moves one minute per tick. Pure apart from the numpy Generator
passed in; used by ``tests/unit/test_rollout_canary_simulation.py`` and
``benchmarks/canary_simulation.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np

from api_client.deployment_params import CanaryConfig
from workers.deployment.rollout_types import (
    CANARY,
    CHAMPION,
    ArmWindow,
    MetricSample,
    Observations,
)
from workers.deployment.rollouts import KIND_PROMOTED, ROLLED_BACK, evaluate, start

STABLE_VERSION = 1
CANARY_VERSION = 2
MODEL = "simulated"
START = datetime(2026, 1, 1, tzinfo=UTC)
TICK = timedelta(minutes=1)
LATENCY_P95_MS = 40.0
Outcome = Literal["promoted", "rolled_back", "unfinished"]


def simulation_config() -> CanaryConfig:
    """The default canary config without the minimum step duration (ticks are not minutes
    of real traffic)."""
    return CanaryConfig(min_step_duration_s=0)


@dataclass
class _Tally:
    """One arm's rows over a window: count, correct predictions, scores."""

    role: str
    version_id: int
    n: int = 0
    correct: int = 0
    scores: list[np.ndarray] = field(default_factory=list)

    def add(self, correct: int, scores: np.ndarray) -> None:
        self.n += scores.size
        self.correct += correct
        self.scores.append(scores)

    def window(self) -> ArmWindow:
        n, k = self.n, self.correct
        if n == 0:
            metric = MetricSample.empty()
        else:
            variance = k * (n - k) / (n * (n - 1)) if n > 1 else 0.0  # of 0/1 values, ddof=1
            metric = MetricSample(n, k / n, variance)
        return ArmWindow(
            self.role,
            self.version_id,
            predictions=n,
            errors=0,
            latency_p95_ms=LATENCY_P95_MS if n else None,
            scores=np.concatenate(self.scores) if self.scores else np.empty(0),
            metric=metric,
        )


@dataclass(frozen=True)
class CanaryRun:
    outcome: Outcome
    ticks: int  # evaluate() calls made
    step: int  # the step the rollout was at when it ended (0-based)
    share: float  # that step's canary share
    breached: tuple[str, ...]  # the guardrails that rolled it back
    canary_predictions: int  # over the whole rollout


def _traffic(rng: np.random.Generator, n: int, p: float, tallies: Sequence[_Tally]) -> None:
    correct = int(rng.binomial(n, p)) if n else 0
    scores = rng.beta(2.0, 5.0, size=n)
    for tally in tallies:
        tally.add(correct, scores)


def run_canary(
    rng: np.random.Generator,
    *,
    p_stable: float,
    p_canary: float,
    requests_per_tick: int = 400,
    max_ticks: int = 500,
    config: CanaryConfig | None = None,
) -> CanaryRun:
    """One canary rollout from start to promotion, rollback or ``max_ticks``."""
    config = config or simulation_config()
    live = start(MODEL, "immediate", {}, STABLE_VERSION, None, START).rollout
    config_json = config.model_dump(mode="json")
    rollout = start(MODEL, "canary", config_json, CANARY_VERSION, live, START).rollout
    total = {CHAMPION: _Tally(CHAMPION, STABLE_VERSION), CANARY: _Tally(CANARY, CANARY_VERSION)}
    step = {role: _Tally(role, tally.version_id) for role, tally in total.items()}
    for tick in range(1, max_ticks + 1):
        share = config.steps[rollout.step]
        to_canary = int(rng.binomial(requests_per_tick, share))
        _traffic(rng, requests_per_tick - to_canary, p_stable, (total[CHAMPION], step[CHAMPION]))
        _traffic(rng, to_canary, p_canary, (total[CANARY], step[CANARY]))
        observations = Observations(
            since_start={role: tally.window() for role, tally in total.items()},
            since_step={role: tally.window() for role, tally in step.items()},
        )
        before = rollout.step
        transition = evaluate(rollout, observations, START + tick * TICK)
        rollout = transition.rollout
        if transition.kind == KIND_PROMOTED or rollout.state == ROLLED_BACK:
            outcome: Outcome = "rolled_back" if rollout.state == ROLLED_BACK else "promoted"
            return CanaryRun(
                outcome,
                tick,
                before,
                config.steps[before],
                tuple(transition.details.get("breached", ())),
                total[CANARY].n,
            )
        if rollout.step != before:
            step = {role: _Tally(role, tally.version_id) for role, tally in total.items()}
    last = rollout.step
    return CanaryRun("unfinished", max_ticks, last, config.steps[last], (), total[CANARY].n)


@dataclass(frozen=True)
class CanarySummary:
    runs: tuple[CanaryRun, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(run.outcome == outcome for run in self.runs)

    def rolled_back_below(self, share: float) -> int:
        """Runs rolled back at a step whose canary share is below ``share``."""
        return sum(run.outcome == "rolled_back" and run.share < share for run in self.runs)

    def rollbacks(self) -> list[CanaryRun]:
        return [run for run in self.runs if run.outcome == "rolled_back"]


def simulate_canary(
    rng: np.random.Generator,
    runs: int,
    *,
    p_stable: float,
    p_canary: float,
    requests_per_tick: int = 400,
    max_ticks: int = 500,
    config: CanaryConfig | None = None,
) -> CanarySummary:
    """``runs`` independent canary rollouts on the same Generator."""
    return CanarySummary(
        tuple(
            run_canary(
                rng,
                p_stable=p_stable,
                p_canary=p_canary,
                requests_per_tick=requests_per_tick,
                max_ticks=max_ticks,
                config=config,
            )
            for _ in range(runs)
        )
    )
