"""Alert findings of one stored monitoring check: what is worth telling a person, how urgently.

Reads the result dict of a check (``workers.monitoring.check_job.compute_check`` plus
``model_name`` and ``version``) and the version's permutation importances
(``[{"feature": name, "mean": float, ...}]``), and returns at most one finding per kind,
worst level first (ties in the order of ``KINDS``). Pure: no I/O, no clock; whether a
finding becomes a notification is ``workers.monitoring.alert_cooldown``'s decision.

==================  ===========================================================  ========
kind                when                                                         level
==================  ===========================================================  ========
health              ``health.score`` < 40                                        CRITICAL
                    ``health.status`` == critical (score < 50)                   HIGH
                    ``health.status`` == degraded                                LOW
schema_break        any quality finding of kind ``schema_break``                 HIGH
performance_drop    ``performance.status`` == drifted                            HIGH
feature_drift       a drifted feature among the 5 most important                 MEDIUM
                    drifted features, none among the 5 most important            LOW
prediction_drift    ``prediction_drift.drifted``                                 MEDIUM
error_rate          ``operations.error_rate`` > ``thresholds.error_rate``        HIGH
latency             ``operations.latency_p95_ms`` > ``thresholds.response_time_ms``  MEDIUM
data_quality        quality findings other than schema_break of severity         worst of
                    MEDIUM or worse                                              them
no_traffic          ``health.status`` == no_data on a ``prediction_log`` window  LOW
==================  ===========================================================  ========

Notes on the rules:

* health: a check without data (``no_data``, score None) has no health finding; the
  ``no_traffic`` rule speaks for a logged window, and a dataset window without rows is the
  caller's own doing. ``healthy`` raises nothing.
* feature_drift: features are ranked by importance ``mean``, descending (rank 1 = most
  important; ties by name so the rank is reproducible). Without importances every drifted
  feature counts as important (MEDIUM): with nothing to tell them apart, a drifted feature
  may be the one the model leans on. A drifted feature missing from the importances is
  ranked after all others.
* data_quality: LOW findings alone (a few values past the training range, a rare new
  category) are common on healthy traffic and raise nothing; they still cost health points.
  ``live_quality`` produces no CRITICAL finding, but one would pass through as CRITICAL.
* Missing parts of the check (None, absent keys) raise nothing: a check that did not
  measure something has nothing to say about it.

``LEVEL_RANK`` grows with urgency (LOW 1 ... CRITICAL 4), so "worse" is "greater"; note that
``live_quality.SEVERITY_RANK`` is the opposite (a sort key, CRITICAL 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]

LEVEL_RANK: dict[str, int] = {"LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
KINDS: tuple[str, ...] = (
    "health",
    "schema_break",
    "performance_drop",
    "feature_drift",
    "prediction_drift",
    "error_rate",
    "latency",
    "data_quality",
    "no_traffic",
)
HEALTH_CRITICAL_SCORE = 40.0  # below this the model is close to useless: page someone
TOP_FEATURES = 5  # "important" features for feature_drift
NAMED = 3  # features / columns named in a message (all of them are in ``numbers``)


@dataclass(frozen=True)
class AlertFinding:
    kind: str
    level: Level
    message: str  # one sentence with the numbers and what to do
    numbers: dict[str, Any] = field(default_factory=dict)  # JSON-able

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "level": self.level,
            "message": self.message,
            "numbers": dict(self.numbers),
        }


def _num(value: Any) -> float | None:
    """A finite float, or None (JSON nulls, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _pct(value: float) -> str:
    return f"{100 * value:.3g}%"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(f"`{name}`" for name in names[:NAMED])
    more = len(names) - NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _who(check: Mapping[str, Any]) -> str:
    model, version = check.get("model_name"), check.get("version")
    if model and version:
        return f"{model} {version}"
    return str(model) if model else "the model"


def _section(check: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = check.get(key)
    return value if isinstance(value, Mapping) else {}


def _health(check: Mapping[str, Any], _ranks: Mapping[str, int]) -> AlertFinding | None:
    health = _section(check, "health")
    score, status = _num(health.get("score")), health.get("status")
    if score is None or status not in ("critical", "degraded"):
        return None
    level: Level
    if score < HEALTH_CRITICAL_SCORE:
        level = "CRITICAL"
    elif status == "critical":
        level = "HIGH"
    else:
        level = "LOW"
    reasons = [str(reason) for reason in health.get("reasons") or []]
    why = f"; largest penalty: {reasons[0]}" if reasons else ""
    return AlertFinding(
        "health",
        level,
        f"{_who(check)} health is {score:.0f}/100 ({status}){why}; "
        "open the check report to see which component to fix first.",
        {"score": score, "status": status, "reasons": reasons},
    )


def _quality(check: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [q for q in check.get("quality") or [] if isinstance(q, Mapping)]


def _schema_break(check: Mapping[str, Any], _ranks: Mapping[str, int]) -> AlertFinding | None:
    columns = [str(q.get("column")) for q in _quality(check) if q.get("kind") == "schema_break"]
    if not columns:
        return None
    return AlertFinding(
        "schema_break",
        "HIGH",
        f"{len(columns)} input column(s) of {_who(check)} missing from the scored rows "
        f"({_names(columns)}): fix the callers' payload or deploy a version with the new "
        "schema.",
        {"columns": columns},
    )


def _performance_drop(check: Mapping[str, Any], _ranks: Mapping[str, int]) -> AlertFinding | None:
    performance = _section(check, "performance")
    if performance.get("status") != "drifted":
        return None
    metric = str(performance.get("metric"))
    baseline, value = _num(performance.get("baseline")), _num(performance.get("value"))
    drop = _num(performance.get("drop"))
    low, high = _num(performance.get("ci_low")), _num(performance.get("ci_high"))
    return AlertFinding(
        "performance_drop",
        "HIGH",
        f"{_who(check)} {metric} is {_g(value)} against {_g(baseline)} on the holdout "
        f"(drop {_g(drop)}, 95% CI {_g(low)}–{_g(high)}, {performance.get('n')} labelled "
        "rows): retrain on recent data or roll back.",
        {
            "metric": metric,
            "baseline": baseline,
            "value": value,
            "drop": drop,
            "ci": [low, high],
            "n": performance.get("n"),
        },
    )


def importance_ranks(importances: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Feature name -> rank by importance ``mean``, descending (1 = most important)."""
    scored = [
        (-(_num(item.get("mean")) or 0.0), str(item.get("feature")))
        for item in importances
        if item.get("feature") is not None
    ]
    return {name: rank for rank, (_, name) in enumerate(sorted(scored), start=1)}


def _feature_drift(check: Mapping[str, Any], ranks: Mapping[str, int]) -> AlertFinding | None:
    features = [
        f
        for f in _section(check, "data_drift").get("features") or []
        if isinstance(f, Mapping) and f.get("drifted")
    ]
    if not features:
        return None

    def rank(feature: Mapping[str, Any]) -> int | None:
        return ranks.get(str(feature.get("name")))

    # Most important first; unranked ones (or all, without importances) by name.
    unranked = len(ranks) + 1
    drifted = sorted(features, key=lambda f: (rank(f) or unranked, str(f.get("name"))))
    important = [f for f in drifted if not ranks or (rank(f) or unranked) <= TOP_FEATURES]
    level: Level = "MEDIUM" if important else "LOW"
    names = [str(f.get("name")) for f in drifted]
    if not ranks:
        which = "no importances to rank them by, so each may matter"
    elif important:
        top = [f"`{f.get('name')}` #{rank(f)}" for f in important[:NAMED]]
        which = f"{len(important)} among the {TOP_FEATURES} most important: {', '.join(top)}"
    else:
        which = f"none among the {TOP_FEATURES} most important"
    return AlertFinding(
        "feature_drift",
        level,
        f"{len(drifted)} input feature(s) of {_who(check)} drifted ({_names(names)}; {which}): "
        "check the upstream data before the performance drops.",
        {
            "n_drifted": len(drifted),
            "n_important": len(important),
            "top": TOP_FEATURES,
            "features": [
                {
                    "name": str(f.get("name")),
                    "importance_rank": rank(f),
                    "effect": _num(f.get("effect")),
                    "effect_name": f.get("effect_name"),
                    "psi": _num(f.get("psi")),
                    "p_adjusted": _num(f.get("p_adjusted")),
                }
                for f in drifted
            ],
        },
    )


def _prediction_drift(check: Mapping[str, Any], _ranks: Mapping[str, int]) -> AlertFinding | None:
    drift = _section(check, "prediction_drift")
    if not drift.get("drifted"):
        return None
    numbers = {
        key: _num(drift.get(key))
        for key in ("psi", "statistic", "p_value")
        if _num(drift.get(key)) is not None
    }
    shown = ", ".join(f"{key} {_g(value)}" for key, value in numbers.items())
    return AlertFinding(
        "prediction_drift",
        "MEDIUM",
        f"The score distribution of {_who(check)} shifted ({shown or 'drift confirmed'}): "
        "check whether the incoming population changed and whether decisions need a new "
        "threshold.",
        numbers,
    )


def _error_rate(check: Mapping[str, Any], _ranks: Mapping[str, int]) -> AlertFinding | None:
    operations, thresholds = _section(check, "operations"), _section(check, "thresholds")
    rate, limit = _num(operations.get("error_rate")), _num(thresholds.get("error_rate"))
    if rate is None or limit is None or not rate > limit:
        return None
    return AlertFinding(
        "error_rate",
        "HIGH",
        f"{_pct(rate)} of the scoring requests of {_who(check)} failed "
        f"({operations.get('errors')} errors, {operations.get('predictions')} predictions; "
        f"threshold {_pct(limit)}): read the scoring service's error logs.",
        {
            "error_rate": rate,
            "threshold": limit,
            "errors": operations.get("errors"),
            "predictions": operations.get("predictions"),
        },
    )


def _latency(check: Mapping[str, Any], _ranks: Mapping[str, int]) -> AlertFinding | None:
    operations, thresholds = _section(check, "operations"), _section(check, "thresholds")
    p95, limit = _num(operations.get("latency_p95_ms")), _num(thresholds.get("response_time_ms"))
    if p95 is None or limit is None or not p95 > limit:
        return None
    return AlertFinding(
        "latency",
        "MEDIUM",
        f"The p95 scoring latency of {_who(check)} is {p95:.0f} ms (threshold {limit:.0f} ms): "
        "check the scoring workers' load and the model's size.",
        {"latency_p95_ms": p95, "threshold_ms": limit},
    )


def _data_quality(check: Mapping[str, Any], _ranks: Mapping[str, int]) -> AlertFinding | None:
    findings = [
        q
        for q in _quality(check)
        if q.get("kind") != "schema_break" and LEVEL_RANK.get(str(q.get("severity")), 0) >= 2
    ]
    if not findings:
        return None
    worst = max(findings, key=lambda q: LEVEL_RANK[str(q["severity"])])
    level: Level = worst["severity"]
    return AlertFinding(
        "data_quality",
        level,
        f"{len(findings)} data-quality problem(s) in the inputs of {_who(check)}, worst: "
        f"{worst.get('message')}; fix the source of these columns.",
        {
            "findings": [
                {"column": q.get("column"), "kind": q.get("kind"), "severity": q.get("severity")}
                for q in findings
            ]
        },
    )


def _no_traffic(check: Mapping[str, Any], _ranks: Mapping[str, int]) -> AlertFinding | None:
    window = _section(check, "window")
    if _section(check, "health").get("status") != "no_data":
        return None
    if window.get("source") != "prediction_log":
        return None
    hours = window.get("hours")
    span = f"the last {hours:g} h" if isinstance(hours, int | float) else "the window"
    return AlertFinding(
        "no_traffic",
        "LOW",
        f"No logged predictions of {_who(check)} in {span} "
        f"({window.get('start')} to {window.get('end')}): check that callers still reach the "
        "service and that prediction logging is on.",
        {"hours": hours, "start": window.get("start"), "end": window.get("end")},
    )


RULES: dict[str, Callable[[Mapping[str, Any], Mapping[str, int]], AlertFinding | None]] = {
    "health": _health,
    "schema_break": _schema_break,
    "performance_drop": _performance_drop,
    "feature_drift": _feature_drift,
    "prediction_drift": _prediction_drift,
    "error_rate": _error_rate,
    "latency": _latency,
    "data_quality": _data_quality,
    "no_traffic": _no_traffic,
}
assert tuple(RULES) == KINDS  # one rule per kind, in the documented order


def alert_findings(
    check: Mapping[str, Any], importances: Sequence[Mapping[str, Any]] = ()
) -> list[AlertFinding]:
    """The alert findings of one check, worst level first (module docstring)."""
    ranks = importance_ranks(importances)
    findings = [f for rule in RULES.values() if (f := rule(check, ranks)) is not None]
    # sorted() is stable: equal levels keep the order of KINDS.
    return sorted(findings, key=lambda f: -LEVEL_RANK[f.level])
