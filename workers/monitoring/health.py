"""The health score of a deployed model version: 0-100, a status and the reasons.

Formula: ``score = clip(100 - sum of the component penalties, 0, 100)``. Each penalty is
capped; the relative ones ramp linearly with ``ramp(x, t) = min(1, max(0, x) / (2 t))``:
0 at ``x = 0``, half the cap at the threshold ``t``, the full cap at twice the threshold.

================  ==============================  ===========================================  ===
component         input                           penalty                                      cap
================  ==============================  ===========================================  ===
performance       ``performance_drop``            40 · ramp(drop, accuracy_drop); at least 20   40
                                                  when ``performance_drifted``
feature_drift     ``drifted_importance_share``    25 · ramp(share, drift_score)                 25
prediction_drift  ``prediction_psi``              10 · ramp(psi, drift_score); at least 5       10
                                                  when ``prediction_drifted``
quality           ``quality_findings``            per finding LOW 1, MEDIUM 3, HIGH 6,          15
                                                  CRITICAL 15; summed (LOW ones at most 3),
                                                  capped
errors            ``error_rate``                  20 · ramp(rate, error_rate)                   20
latency           ``latency_p95_ms``              10 · ramp(p95, response_time_ms)              10
volume            ``volume`` / ``usual_volume``   10 · ramp(1 - volume / usual, volume_drop)    10
================  ==============================  ===========================================  ===

(``accuracy_drop`` ... ``volume_drop`` are the fields of ``HealthThresholds``; the caps add
up to 130, so the clip at 0 matters.) Every penalty is non-decreasing in its input (and in
the drift flags), so the score never rises when anything gets worse. Only a *drop* in
volume costs points: a spike is not a health problem of the model. ``drift_score`` is the
threshold of both drift components: the share of the feature importance that sits on
drifted features, and the PSI of the prediction distribution (0.1: "moderate shift").

Status: ``healthy`` when score >= 80, ``degraded`` when score >= 50, ``critical`` below.
A confirmed performance drift (``performance_drifted``), any CRITICAL quality finding, or
a crossed threshold (error rate above ``error_rate``, latency p95 above
``response_time_ms``, importance share on drifted features above ``drift_score``) caps
the status at ``degraded``: such a version is never reported healthy, whatever the other
components say (a critical score stays critical). The penalties alone would let one
crossed threshold pass (half its cap at the threshold), hence the cap.

Inputs that are None were not measured: their component costs 0 and is listed in
``Health.not_measured`` (the drift flags count as a measurement: a drifted flag without a
number still costs the minimum above). ``reasons`` are the three largest penalties of at
least half a point, largest first (ties in the table's order), as sentences with the
numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from workers.monitoring.live_quality import SEVERITY_RANK, QualityFinding
from workers.preprocessing.quality.rulebook import fmt_number, pct

HEALTHY = 80.0
DEGRADED = 50.0
MAX_REASONS = 3
ROUNDING = 6  # decimals of penalties and score (0.08 / 0.1 * 40 is not exactly 32)

CAPS: dict[str, float] = {
    "performance": 40.0,
    "feature_drift": 25.0,
    "prediction_drift": 10.0,
    "quality": 15.0,
    "errors": 20.0,
    "latency": 10.0,
    "volume": 10.0,
}
SEVERITY_POINTS: dict[str, float] = {"LOW": 1.0, "MEDIUM": 3.0, "HIGH": 6.0, "CRITICAL": 15.0}
LOW_CAP = 3.0  # all LOW findings together
MIN_REASON_POINTS = 0.5  # a penalty below this is not a reason worth reading
DRIFTED_MINIMUM = 0.5  # a drift flag costs at least half the component's cap


@dataclass(frozen=True)
class HealthThresholds:
    accuracy_drop: float = 0.05
    error_rate: float = 0.1
    response_time_ms: float = 5000
    drift_score: float = 0.1
    volume_drop: float = 0.5

    def __post_init__(self) -> None:
        for name in ("accuracy_drop", "error_rate", "response_time_ms", "drift_score"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        if not 0 < self.volume_drop <= 1:
            raise ValueError(f"volume_drop must be in (0, 1]; got {self.volume_drop}")


@dataclass(frozen=True)
class HealthInputs:
    performance_drop: float | None
    performance_drifted: bool
    drifted_importance_share: float | None  # share of feature importance on drifted features
    prediction_psi: float | None
    prediction_drifted: bool
    quality_findings: Sequence[QualityFinding]
    error_rate: float | None
    latency_p95_ms: float | None
    volume: int | None
    usual_volume: float | None


@dataclass(frozen=True)
class Health:
    score: float
    status: Literal["healthy", "degraded", "critical"]
    reasons: tuple[str, ...]  # the three largest penalties, largest first
    components: dict[str, float]  # the penalty per component (0 when not measured)
    not_measured: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "status": self.status,
            "reasons": list(self.reasons),
            "components": dict(self.components),
            "not_measured": list(self.not_measured),
        }


def ramp(value: float, threshold: float) -> float:
    """0 at 0, 0.5 at ``threshold``, 1 from twice the threshold on (negatives count 0)."""
    return min(1.0, max(0.0, value) / (2.0 * threshold))


def _breached(i: HealthInputs, t: HealthThresholds) -> bool:
    """A confirmed performance drift, a CRITICAL finding, or a threshold crossed: error
    rate, latency p95, or the importance share on drifted features."""
    return (
        i.performance_drifted
        or any(f.severity == "CRITICAL" for f in i.quality_findings)
        or (i.error_rate or 0.0) > t.error_rate
        or (i.latency_p95_ms or 0.0) > t.response_time_ms
        or (i.drifted_importance_share or 0.0) > t.drift_score
    )


def _points(value: float) -> str:
    return f"-{value:.3g} points"


def _performance(i: HealthInputs, t: HealthThresholds) -> tuple[float, str] | None:
    if i.performance_drop is None and not i.performance_drifted:
        return None
    cap = CAPS["performance"]
    penalty = cap * ramp(i.performance_drop or 0.0, t.accuracy_drop)
    if i.performance_drifted:
        penalty = max(penalty, DRIFTED_MINIMUM * cap)
    if i.performance_drop is None:
        text = "performance drift confirmed"
    else:
        text = (
            f"performance {i.performance_drop:.3g} below the holdout baseline "
            f"(tolerated {t.accuracy_drop:g})"
        )
    if i.performance_drifted:
        text += ", a confirmed drift (status at most degraded)"
    return penalty, text


def _feature_drift(i: HealthInputs, t: HealthThresholds) -> tuple[float, str] | None:
    if i.drifted_importance_share is None:
        return None
    share = i.drifted_importance_share
    return CAPS["feature_drift"] * ramp(share, t.drift_score), (
        f"{pct(share)} of the feature importance is on drifted features "
        f"(threshold {pct(t.drift_score)})"
    )


def _prediction_drift(i: HealthInputs, t: HealthThresholds) -> tuple[float, str] | None:
    if i.prediction_psi is None and not i.prediction_drifted:
        return None
    cap = CAPS["prediction_drift"]
    penalty = cap * ramp(i.prediction_psi or 0.0, t.drift_score)
    if i.prediction_drifted:
        penalty = max(penalty, DRIFTED_MINIMUM * cap)
    if i.prediction_psi is None:
        return penalty, "the prediction distribution has drifted"
    return penalty, (
        f"the prediction distribution shifted: PSI {i.prediction_psi:.3g} "
        f"(threshold {t.drift_score:g})"
    )


def _quality(i: HealthInputs, t: HealthThresholds) -> tuple[float, str] | None:
    findings = list(i.quality_findings)
    if not findings:
        return 0.0, "no data-quality findings"
    low = sum(SEVERITY_POINTS[f.severity] for f in findings if f.severity == "LOW")
    others = sum(SEVERITY_POINTS[f.severity] for f in findings if f.severity != "LOW")
    # LOW findings (a few values past the training range, a rare new category) are common
    # on healthy traffic over many features: together they cost at most LOW_CAP.
    total = others + min(low, LOW_CAP)
    counts = {
        severity: sum(f.severity == severity for f in findings)
        for severity in sorted(SEVERITY_POINTS, key=SEVERITY_RANK.__getitem__)
    }
    summary = ", ".join(f"{n} {severity}" for severity, n in counts.items() if n)
    worst = min(findings, key=lambda f: SEVERITY_RANK[f.severity])
    text = f"{len(findings)} data-quality finding(s) ({summary}); worst: {worst.message}"
    if counts["CRITICAL"]:
        text += " (status at most degraded)"
    return min(CAPS["quality"], total), text


def _errors(i: HealthInputs, t: HealthThresholds) -> tuple[float, str] | None:
    if i.error_rate is None:
        return None
    return CAPS["errors"] * ramp(i.error_rate, t.error_rate), (
        f"error rate {pct(i.error_rate)} (threshold {pct(t.error_rate)})"
    )


def _latency(i: HealthInputs, t: HealthThresholds) -> tuple[float, str] | None:
    if i.latency_p95_ms is None:
        return None
    return CAPS["latency"] * ramp(i.latency_p95_ms, t.response_time_ms), (
        f"p95 latency {fmt_number(i.latency_p95_ms)} ms "
        f"(threshold {fmt_number(t.response_time_ms)} ms)"
    )


def _volume(i: HealthInputs, t: HealthThresholds) -> tuple[float, str] | None:
    if i.volume is None or i.usual_volume is None or not i.usual_volume > 0:
        return None
    drop = 1.0 - i.volume / i.usual_volume
    return CAPS["volume"] * ramp(drop, t.volume_drop), (
        f"volume {fmt_number(i.volume)} against a usual {fmt_number(i.usual_volume)} "
        f"({pct(max(0.0, drop))} lower; threshold {pct(t.volume_drop)})"
    )


COMPONENTS = {
    "performance": _performance,
    "feature_drift": _feature_drift,
    "prediction_drift": _prediction_drift,
    "quality": _quality,
    "errors": _errors,
    "latency": _latency,
    "volume": _volume,
}


def health_score(inputs: HealthInputs, thresholds: HealthThresholds = HealthThresholds()) -> Health:
    """Score, status, reasons and penalties of one monitoring window (module docstring)."""
    components: dict[str, float] = {}
    texts: dict[str, str] = {}
    not_measured = []
    for name, component in COMPONENTS.items():
        measured = component(inputs, thresholds)
        if measured is None:
            components[name] = 0.0
            not_measured.append(name)
            continue
        penalty, texts[name] = measured
        components[name] = round(penalty, ROUNDING)
    score = round(min(100.0, max(0.0, 100.0 - sum(components.values()))), ROUNDING)
    status: Literal["healthy", "degraded", "critical"]
    if score >= HEALTHY:
        status = "healthy"
    elif score >= DEGRADED:
        status = "degraded"
    else:
        status = "critical"
    capped = _breached(inputs, thresholds)
    if capped and status == "healthy":
        status = "degraded"
    order = list(COMPONENTS)
    ranked = sorted(
        (name for name in texts if components[name] >= MIN_REASON_POINTS),
        key=lambda name: (-components[name], order.index(name)),
    )
    reasons = tuple(f"{texts[name]}: {_points(components[name])}" for name in ranked[:MAX_REASONS])
    return Health(score, status, reasons, components, tuple(not_measured))
