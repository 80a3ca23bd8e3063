"""Canary guardrails: is the canary confidently worse than the stable version?

Four checks of a canary arm against the stable arm over the same window, each ``ok``,
``breached`` or ``not_evaluated`` (too little data yet), with the numbers it used:

* ``metric``: the labelled outcome metric, by the always-valid mSPRT of ``sequential.py``
  (the canary is evaluated on every tick, so a fixed-sample test would roll back good
  canaries far more often than alpha). Breached when the confidence sequence's upper
  bound on the canary's advantage is below ``-max_metric_drop``: the canary is confidently
  worse by more than the allowed drop.
* ``error_rate``: canary error rate minus stable error rate above
  ``max_error_rate_increase``.
* ``latency_p95``: canary p95 above ``max_latency_ratio`` x stable p95 *and* more than
  ``latency_slack_ms`` above it (the slack ignores ratios of tiny latencies).
* ``score_psi``: PSI of the canary's scores against the stable arm's above
  ``max_score_psi`` (the canary sees a different score distribution on the same traffic).

The operational checks are point comparisons; they are meant as tripwires for broken
releases, where the differences are large.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from api_client.deployment_params import LOWER_IS_BETTER, CanaryGuardrails
from workers.deployment.rollout_types import ArmWindow
from workers.deployment.sequential import SequentialState, msprt_update
from workers.monitoring.psi import psi

# The mixture scale of the metric's mSPRT: the test is most sensitive to differences of
# about this size, 5 points of accuracy or conversion (metrics in [0, 1]). The canary
# guardrail looks for clear regressions, not small lifts; any tau > 0 keeps the error
# guarantees.
GUARDRAIL_TAU = 0.05
# PSI of two samples is biased upwards by about (bins - 1) * (1/n1 + 1/n2): 0.09 at 100
# scores each for 10 bins, and noisy enough there that an equal canary crossed 0.25 in
# 0.7% of simulated rollouts (benchmarks/canary_simulation.py). At 500 the bias is 0.02.
PSI_MIN_SAMPLES = 500

Status = Literal["ok", "breached", "not_evaluated"]
Observed = dict[str, float | int | None]


@dataclass(frozen=True)
class GuardrailCheck:
    name: str  # "metric", "error_rate", "latency_p95", "score_psi"
    status: Status
    observed: Observed  # the numbers (JSON-able: None instead of NaN/inf)
    threshold: float
    message: str


@dataclass(frozen=True)
class GuardrailReport:
    checks: tuple[GuardrailCheck, ...]
    metric_state: SequentialState  # to store for the next tick

    @property
    def breaches(self) -> tuple[GuardrailCheck, ...]:
        return tuple(check for check in self.checks if check.status == "breached")


def _json_number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def check_metric(
    stable: ArmWindow, canary: ArmWindow, config: CanaryGuardrails, state: SequentialState
) -> tuple[GuardrailCheck, SequentialState]:
    """The metric guardrail and the mSPRT state to store (unchanged without a look)."""
    name, threshold = config.metric, config.max_metric_drop
    observed: Observed = {
        "stable_n": stable.metric.n,
        "canary_n": canary.metric.n,
        "stable_mean": _json_number(stable.metric.mean),
        "canary_mean": _json_number(canary.metric.mean),
    }
    if min(stable.metric.n, canary.metric.n) < config.min_samples:
        message = (
            f"{name}: waiting for labelled outcomes (stable {stable.metric.n}, canary "
            f"{canary.metric.n} of {config.min_samples})"
        )
        return GuardrailCheck("metric", "not_evaluated", observed, threshold, message), state
    result = msprt_update(
        stable.metric,
        canary.metric,
        alpha=config.alpha,
        tau=GUARDRAIL_TAU,
        previous=state,
        higher_is_better=config.metric not in LOWER_IS_BETTER,
    )
    observed |= {
        "effect": _json_number(result.effect),
        "ci_low": _json_number(result.ci_low),
        "ci_high": _json_number(result.ci_high),
        "p_value": result.p_value,
        "looks": result.state.looks,
    }
    level = f"{100 * (1 - config.alpha):.4g}% CS"
    means = f"canary {name} {_fmt(canary.metric.mean)} vs stable {_fmt(stable.metric.mean)}"
    breached = result.ci_high < -threshold
    if breached:
        message = (
            f"{means}: confidently worse by more than {threshold:g} "
            f"({level} upper bound {_fmt(result.ci_high, '+.3g')})"
        )
    else:
        message = (
            f"{means}: not confidently worse by more than {threshold:g} "
            f"({level} on the canary's advantage [{_fmt(result.ci_low, '+.3g')}, "
            f"{_fmt(result.ci_high, '+.3g')}])"
        )
    status: Status = "breached" if breached else "ok"
    return GuardrailCheck("metric", status, observed, threshold, message), result.state


def check_error_rate(
    stable: ArmWindow, canary: ArmWindow, config: CanaryGuardrails
) -> GuardrailCheck:
    threshold = config.max_error_rate_increase
    attempted = canary.predictions + canary.errors
    observed: Observed = {
        "canary_attempted": attempted,
        "canary_errors": canary.errors,
        "canary_error_rate": canary.error_rate,
        "stable_error_rate": stable.error_rate,
    }
    if attempted < config.min_samples:
        message = f"error rate: canary attempted {attempted} of {config.min_samples} rows"
        return GuardrailCheck("error_rate", "not_evaluated", observed, threshold, message)
    increase = canary.error_rate - stable.error_rate
    observed["increase"] = increase
    breached = increase > threshold
    verb = "above" if breached else "within"
    message = (
        f"canary error rate {canary.error_rate:.2%} vs stable {stable.error_rate:.2%}: "
        f"increase {increase:+.2%} {verb} the allowed {threshold:.2%}"
    )
    status: Status = "breached" if breached else "ok"
    return GuardrailCheck("error_rate", status, observed, threshold, message)


def check_latency(stable: ArmWindow, canary: ArmWindow, config: CanaryGuardrails) -> GuardrailCheck:
    threshold = config.max_latency_ratio
    observed: Observed = {
        "canary_p95_ms": _json_number(canary.latency_p95_ms),
        "stable_p95_ms": _json_number(stable.latency_p95_ms),
        "slack_ms": config.latency_slack_ms,
    }
    canary_p95, stable_p95 = observed["canary_p95_ms"], observed["stable_p95_ms"]
    enough = min(stable.predictions, canary.predictions) >= config.min_samples
    if not enough or canary_p95 is None or stable_p95 is None:
        message = (
            f"latency p95: stable {stable.predictions}, canary {canary.predictions} "
            f"predictions of {config.min_samples}, or no p95 yet"
        )
        return GuardrailCheck("latency_p95", "not_evaluated", observed, threshold, message)
    ratio = canary_p95 / stable_p95 if stable_p95 > 0 else None
    gap = canary_p95 - stable_p95
    observed |= {"ratio": ratio, "gap_ms": gap}
    breached = canary_p95 > threshold * stable_p95 and gap > config.latency_slack_ms
    verb = "above" if breached else "within"
    message = (
        f"canary p95 {canary_p95:.1f} ms vs stable {stable_p95:.1f} ms "
        f"(x{_fmt(ratio)}, {gap:+.1f} ms): {verb} x{threshold:g} "
        f"and +{config.latency_slack_ms:g} ms"
    )
    status: Status = "breached" if breached else "ok"
    return GuardrailCheck("latency_p95", status, observed, threshold, message)


def _finite_count(values: np.ndarray) -> int:
    return int(np.count_nonzero(~np.isnan(np.asarray(values, dtype=np.float64))))


def check_score_psi(
    stable: ArmWindow, canary: ArmWindow, config: CanaryGuardrails
) -> GuardrailCheck:
    threshold = config.max_score_psi
    n_stable, n_canary = _finite_count(stable.scores), _finite_count(canary.scores)
    observed: Observed = {"stable_scores": n_stable, "canary_scores": n_canary}
    needed = max(config.min_samples, PSI_MIN_SAMPLES)
    if min(n_stable, n_canary) < needed:
        message = f"score PSI: stable {n_stable}, canary {n_canary} scores of {needed}"
        return GuardrailCheck("score_psi", "not_evaluated", observed, threshold, message)
    value = psi(reference=stable.scores, current=canary.scores)
    observed["psi"] = value
    breached = value > threshold
    verb = "above" if breached else "within"
    message = f"PSI of canary vs stable scores {value:.3f}: {verb} {threshold:g}"
    status: Status = "breached" if breached else "ok"
    return GuardrailCheck("score_psi", status, observed, threshold, message)


def check_guardrails(
    stable: ArmWindow,
    canary: ArmWindow,
    config: CanaryGuardrails,
    metric_state: SequentialState,
) -> GuardrailReport:
    """All four guardrails of ``canary`` against ``stable``, and the metric test's state."""
    metric, state = check_metric(stable, canary, config, metric_state)
    checks = (
        metric,
        check_error_rate(stable, canary, config),
        check_latency(stable, canary, config),
        check_score_psi(stable, canary, config),
    )
    return GuardrailReport(checks, state)
