"""Always-valid two-sample test (mSPRT) for A/B tests and canary metrics, looked at every tick.

What it is: the mixture sequential probability ratio test of Johari, Pekelis and Walsh,
with a normal approximation and plug-in variances. At every look it gives

* ``Lambda``, the likelihood ratio of "the effect is drawn from N(0, tau^2)" against "the
  effect is 0", an e-value: under H0 its expectation is <= 1 at every sample size;
* an always-valid p-value, the running minimum of ``1 / Lambda`` (Ville's inequality bounds
  the chance that it *ever* drops below alpha by alpha);
* a (1 - alpha) confidence sequence on the effect: the effects not rejected at this look,
  intersected with those of earlier looks.

Why not a fixed-sample test: a t/z-test controls the false-positive rate for *one* look at
a sample size fixed in advance. The scheduler evaluates a running test on every tick and
stops at the first significant result, so a false promotion happens if *any* of the looks
crosses, which is far more often than alpha: with 19 looks at alpha = 0.05, a two-sided
z-test declares about 22% of A/A tests significant, and the promote rule (significant and
lift >= min effect) promotes about 10% (``benchmarks/ab_simulation.py`` measures it).
The mSPRT's guarantees hold uniformly over all looks, so stopping whenever it says so is
safe.

The tau choice: tau is the spread of the effects the test is tuned to detect. Detection is
fastest for effects near tau, so ``tau_for`` uses the smallest effect worth promoting
(``min_effect``); without one it falls back to 0.1 x the pooled standard deviation (a
"small" standardised effect). Any fixed tau > 0 keeps the guarantees; only power changes.

Approximations: the effect's variance ``V = s_A^2/n_A + s_B^2/n_B`` is plugged in from the
data (the papers assume it known), so the guarantees hold asymptotically; the simulation
in ``tests/unit/test_rollout_ab_simulation.py`` checks them at the sizes we use.

References:
    R. Johari, L. Pekelis, D. Walsh, "Always valid inference: Bringing sequential analysis
    to A/B testing", arXiv:1512.04922 (2015; KDD 2017 "Peeking at A/B tests");
    R. Johari, P. Koomen, L. Pekelis, D. Walsh, "Always valid inference: continuous
    monitoring of A/B tests", Operations Research 70(3), 2022.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from workers.deployment.rollout_types import MetricSample

# exp() overflows above this; Lambda is then reported as inf (p = 0).
_MAX_LOG = 709.0
# tau when min_effect is 0 and no arm has any spread yet (V == 0: the look carries no
# information, so the value does not matter; it only has to be positive).
_FALLBACK_TAU = 1.0
NO_EFFECT_TAU_FRACTION = 0.1


@dataclass(frozen=True)
class SequentialState:
    """What carries over between looks (stored as JSON with the rollout)."""

    p_value: float = 1.0  # always-valid p-value: running minimum of 1/Lambda
    ci_low: float | None = None  # running intersection of the CS (None = unbounded)
    ci_high: float | None = None
    looks: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "p_value": self.p_value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "looks": self.looks,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SequentialState:
        """The stored state; None or {} (no look yet) gives the initial state."""
        if not data:
            return cls()
        low, high = data.get("ci_low"), data.get("ci_high")
        return cls(
            p_value=float(data.get("p_value", 1.0)),
            ci_low=None if low is None else float(low),
            ci_high=None if high is None else float(high),
            looks=int(data.get("looks", 0)),
        )


@dataclass(frozen=True)
class SequentialResult:
    effect: float  # challenger - control, sign flipped when lower is better (+ = better)
    ci_low: float  # always-valid (1 - alpha) confidence sequence on effect (-inf: none yet)
    ci_high: float
    p_value: float  # always-valid p (running min)
    e_value: float  # the mixture likelihood ratio Lambda at this look
    n_control: int
    n_challenger: int
    state: SequentialState  # to store for the next look


def effect_variance(control: MetricSample, challenger: MetricSample) -> float:
    """``V = s_A^2/n_A + s_B^2/n_B``; 0.0 when it carries no information (an empty arm,
    or no spread in either arm, e.g. both constant or n < 2)."""
    if control.n == 0 or challenger.n == 0:
        return 0.0
    v = control.variance / control.n + challenger.variance / challenger.n
    return v if math.isfinite(v) and v > 0 else 0.0


def log_mixture_ratio(theta_hat: float, v: float, tau: float) -> float:
    """log Lambda = 1/2 log(V/(V+tau^2)) + tau^2 theta^2 / (2 V (V+tau^2)); 0 when V == 0."""
    if v <= 0 or not math.isfinite(theta_hat):
        return 0.0
    t2 = tau * tau
    return 0.5 * math.log(v / (v + t2)) + t2 * theta_hat**2 / (2 * v * (v + t2))


def cs_radius(v: float, tau: float, alpha: float) -> float:
    """Half-width of the (1 - alpha) CS: the effects theta0 with Lambda(theta0) < 1/alpha,
    sqrt(V (V+tau^2)/tau^2 (2 log(1/alpha) + log((V+tau^2)/V))); inf when V == 0."""
    if v <= 0:
        return math.inf
    t2 = tau * tau
    return math.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / alpha) + math.log((v + t2) / v)))


def _intersect(previous: SequentialState, low: float, high: float) -> tuple[float, float]:
    """The running intersection of the CS with this look's interval. With plug-in
    variances the intervals are only approximately nested, so the intersection can become
    empty; then this look's interval is kept (an empty set would claim every effect is
    rejected, which the data do not support)."""
    run_low = low if previous.ci_low is None else max(previous.ci_low, low)
    run_high = high if previous.ci_high is None else min(previous.ci_high, high)
    if run_low > run_high:
        return low, high
    return run_low, run_high


def _bound(value: float) -> float | None:
    return value if math.isfinite(value) else None


def msprt_update(
    control: MetricSample,
    challenger: MetricSample,
    *,
    alpha: float,
    tau: float,
    previous: SequentialState,
    higher_is_better: bool = True,
) -> SequentialResult:
    """One look of the mSPRT on the arms' cumulative samples.

    When ``V == 0`` (an empty arm, both arms constant, n < 2) the look carries no
    information: Lambda = 1, the interval is unbounded (the running p and CS stay as they
    were), the look is still counted. When a mean is not finite (an empty arm) the effect is
    NaN.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a positive number; got {tau}")
    sign = 1.0 if higher_is_better else -1.0
    theta_hat = sign * (challenger.mean - control.mean)
    v = effect_variance(control, challenger) if math.isfinite(theta_hat) else 0.0
    log_lambda = log_mixture_ratio(theta_hat, v, tau)
    e_value = math.exp(log_lambda) if log_lambda < _MAX_LOG else math.inf
    p_value = min(previous.p_value, math.exp(-log_lambda), 1.0)
    radius = cs_radius(v, tau, alpha)
    low, high = _intersect(previous, theta_hat - radius, theta_hat + radius)
    state = SequentialState(p_value, _bound(low), _bound(high), previous.looks + 1)
    return SequentialResult(
        effect=theta_hat,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        e_value=e_value,
        n_control=control.n,
        n_challenger=challenger.n,
        state=state,
    )


@dataclass(frozen=True)
class ABDecision:
    action: Literal["promote", "reject", "extend"]
    reason: str  # a sentence with the numbers
    result: SequentialResult | None  # None when too few samples to look
    state: SequentialState  # to store (unchanged when no look happened)


def pooled_sd(control: MetricSample, challenger: MetricSample) -> float:
    """Pooled standard deviation of the two arms (0.0 with fewer than 3 values in all)."""
    dof = control.n + challenger.n - 2
    if dof <= 0:
        return 0.0
    ss = max(control.n - 1, 0) * control.variance + max(challenger.n - 1, 0) * challenger.variance
    return math.sqrt(ss / dof) if math.isfinite(ss) and ss > 0 else 0.0


def tau_for(min_effect: float, control: MetricSample, challenger: MetricSample) -> float:
    """The mixture scale: ``min_effect`` when > 0 (the test detects effects of about that
    size fastest), else 0.1 x the pooled sd (a small standardised effect), else 1.0 when no
    arm has any spread yet (V == 0 then: the look carries no information). Never 0.

    With min_effect == 0, tau follows the data's sd, which settles after a few hundred
    samples; the guarantees assume a fixed tau, so prefer a positive min_effect.
    """
    if min_effect > 0:
        return min_effect
    sd = pooled_sd(control, challenger)
    return NO_EFFECT_TAU_FRACTION * sd if sd > 0 else _FALLBACK_TAU


def _num(value: float) -> str:
    return f"{value:+.4g}"


def _look_reason(result: SequentialResult, alpha: float, min_effect: float, verdict: str) -> str:
    level = f"{100 * (1 - alpha):.4g}%"
    return (
        f"challenger lift {_num(result.effect)} [{_num(result.ci_low)}, {_num(result.ci_high)}] "
        f"({level} CS), p={result.p_value:.3g}, n={result.n_control}/{result.n_challenger} "
        f"(champion/challenger), min effect {min_effect:.4g}: {verdict}"
    )


def ab_decision(
    control: MetricSample,
    challenger: MetricSample,
    *,
    alpha: float,
    min_effect: float,
    min_samples: int,
    elapsed_s: float,
    max_duration_s: float,
    previous: SequentialState,
    higher_is_better: bool = True,
) -> ABDecision:
    """Promote, reject or extend an A/B test at one tick.

    Too few samples in either arm: extend (reject once the maximum duration is reached),
    without a look. Otherwise look, then promote when p <= alpha and the lift >= min_effect;
    reject when the CS's upper bound is below min_effect (the lift cannot be worth it) or the
    maximum duration is reached; else extend.
    """
    timed_out = elapsed_s >= max_duration_s
    if min(control.n, challenger.n) < min_samples:
        waiting = (
            f"outcomes: champion {control.n} of {min_samples}, "
            f"challenger {challenger.n} of {min_samples}"
        )
        if timed_out:
            reason = f"max duration {max_duration_s:.0f} s reached with too few {waiting}: reject"
            return ABDecision("reject", reason, None, previous)
        return ABDecision("extend", f"waiting for {waiting}: extend", None, previous)

    tau = tau_for(min_effect, control, challenger)
    result = msprt_update(
        control,
        challenger,
        alpha=alpha,
        tau=tau,
        previous=previous,
        higher_is_better=higher_is_better,
    )
    action: Literal["promote", "reject", "extend"]
    if result.p_value <= alpha and result.effect >= min_effect:
        action, verdict = "promote", f"p <= alpha {alpha:g} and lift >= min effect: promote"
    elif result.ci_high < min_effect:
        action, verdict = "reject", "CS upper bound below min effect: reject"
    elif timed_out:
        action, verdict = "reject", f"max duration {max_duration_s:.0f} s reached: reject"
    else:
        action, verdict = "extend", "not decided yet: extend"
    reason = _look_reason(result, alpha, min_effect, verdict)
    return ABDecision(action, reason, result, result.state)
