"""Alert rules over stored check results: each rule, its levels, the top-5 importance
logic, one finding per kind and the ordering."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workers.monitoring.alert_rules import KINDS, LEVEL_RANK, AlertFinding, alert_findings

IMPORTANCES = [  # deliberately not in rank order
    {"feature": name, "mean": mean, "std": 0.01}
    for name, mean in [
        ("tenure", 0.05),
        ("age", 0.20),
        ("plan", 0.01),
        ("income", 0.12),
        ("region", 0.002),
        ("visits", 0.08),
        ("spend", 0.03),
    ]
]
# rank: age 1, income 2, visits 3, tenure 4, spend 5, plan 6, region 7


def feature(name: str, *, drifted: bool = False, kind: str = "numeric") -> dict[str, Any]:
    """One entry of ``data_drift.features`` as ``FeatureDrift.to_json`` writes it."""
    return {
        "name": name,
        "kind": kind,
        "test": "ks" if kind == "numeric" else "chi_square",
        "statistic": 0.21 if drifted else 0.02,
        "p_value": 1e-9 if drifted else 0.6,
        "p_adjusted": 1e-8 if drifted else 0.8,
        "effect": 0.31 if drifted else 0.01,
        "effect_name": "wasserstein_norm" if kind == "numeric" else "js_distance",
        "psi": 0.27 if drifted else 0.003,
        "psi_level": "major" if drifted else "none",
        "drifted": drifted,
        "status": "drifted" if drifted else "ok",
        "n_reference": 5000,
        "n_current": 1200,
        "missing_reference": 0.0,
        "missing_current": 0.0,
        "unseen_categories": [],
        "missing_categories": [],
        "histogram": {},
        "scale_name": "iqr" if kind == "numeric" else None,
        "reason": None,
    }


def check(**changes: Any) -> dict[str, Any]:
    """A healthy check as ``compute_check`` + ``run_check`` store it; ``changes`` replace
    top-level keys, and ``health`` / ``operations`` / ``window`` are merged."""
    names = [str(item["feature"]) for item in IMPORTANCES]
    drifted = set(changes.pop("drifted_features", ()))
    result: dict[str, Any] = {
        "check_id": "job-1",
        "checked_at": "2024-05-01T12:00:00+00:00",
        "model_name": "churn",
        "version": "1.2.0",
        "window": {
            "source": "prediction_log",
            "start": "2024-05-01T11:00:00+00:00",
            "end": "2024-05-01T12:00:00+00:00",
            "hours": 1,
            "rows": 1200,
            "reference_rows": 5000,
            "labelled_rows": 800,
        },
        "health": {
            "score": 97.5,
            "status": "healthy",
            "reasons": [],
            "components": {"performance": 0.0, "feature_drift": 2.5},
            "not_measured": [],
        },
        "data_drift": {
            "drifted": bool(drifted),
            "drifted_share": len(drifted) / len(names),
            "n_features": len(names),
            "n_drifted": len(drifted),
            "n_insufficient": 0,
            "thresholds": {},
            "features": [feature(n, drifted=n in drifted) for n in names],
        },
        "prediction_drift": {**feature("score"), "name": "score"},
        "performance": {
            "metric": "roc_auc",
            "baseline": 0.84,
            "value": 0.83,
            "drop": 0.01,
            "ci_low": 0.80,
            "ci_high": 0.86,
            "n": 800,
            "min_rows": 200,
            "status": "ok",
            "message": "roc_auc 0.83 on 800 labelled rows",
        },
        "quality": [],
        "operations": {
            "predictions": 1200,
            "errors": 3,
            "error_rate": 3 / 1203,
            "latency_p95_ms": 120.0,
            "usual_volume": 1150.0,
        },
        "thresholds": {
            "accuracy_drop": 0.05,
            "error_rate": 0.1,
            "response_time_ms": 5000,
            "drift_score": 0.1,
            "volume_drop": 0.5,
        },
        "history": [],
    }
    for key in ("health", "operations", "window"):
        if key in changes:
            result[key] = {**result[key], **changes.pop(key)}
    result.update(changes)
    return result


def quality(column: str, kind: str, severity: str) -> dict[str, Any]:
    return {
        "column": column,
        "kind": kind,
        "severity": severity,
        "message": f"`{column}`: a {severity} {kind}",
        "numbers": {},
    }


def only(findings: list[AlertFinding], kind: str) -> AlertFinding:
    matching = [f for f in findings if f.kind == kind]
    assert len(matching) == 1, findings
    return matching[0]


def test_a_healthy_check_raises_nothing() -> None:
    assert alert_findings(check(), IMPORTANCES) == []


@pytest.mark.parametrize(
    ("score", "status", "level"),
    [
        (39.9, "critical", "CRITICAL"),
        (40.0, "critical", "HIGH"),
        (49.9, "critical", "HIGH"),
        (65.0, "degraded", "LOW"),
        (85.0, "degraded", "LOW"),  # a crossed threshold caps the status at degraded
    ],
)
def test_health_levels(score: float, status: str, level: str) -> None:
    reasons = ["error rate 30% (threshold 10%): -20 points"]
    finding = only(
        alert_findings(check(health={"score": score, "status": status, "reasons": reasons})),
        "health",
    )
    assert finding.level == level
    assert f"{score:.0f}/100" in finding.message and "error rate 30%" in finding.message
    assert finding.numbers == {"score": score, "status": status, "reasons": reasons}


def test_no_data_is_no_health_finding_but_no_traffic_on_a_logged_window() -> None:
    empty = {"score": None, "status": "no_data", "reasons": ["no logged predictions"]}
    findings = alert_findings(check(health=empty, data_drift=None, performance=None))
    assert [(f.kind, f.level) for f in findings] == [("no_traffic", "LOW")]
    assert "1 h" in findings[0].message and "churn 1.2.0" in findings[0].message
    assert findings[0].numbers["hours"] == 1
    # A dataset window without rows: the caller chose it, nothing to alert on.
    dataset = check(health=empty, window={"source": "dataset", "hours": None})
    assert alert_findings(dataset) == []


def test_schema_break_names_every_column() -> None:
    findings = alert_findings(
        check(
            quality=[
                quality("age", "schema_break", "HIGH"),
                quality("plan", "schema_break", "HIGH"),
                quality("spend", "out_of_range", "LOW"),
            ]
        )
    )
    finding = only(findings, "schema_break")
    assert finding.level == "HIGH"
    assert finding.numbers == {"columns": ["age", "plan"]}
    assert "`age`, `plan`" in finding.message
    assert [f.kind for f in findings] == ["schema_break"]  # the LOW one raises nothing


def test_performance_drop_only_when_drifted() -> None:
    drifted = {
        "metric": "roc_auc",
        "baseline": 0.84,
        "value": 0.74,
        "drop": 0.10,
        "ci_low": 0.71,
        "ci_high": 0.77,
        "n": 900,
        "min_rows": 200,
        "status": "drifted",
        "message": "",
    }
    finding = only(alert_findings(check(performance=drifted)), "performance_drop")
    assert finding.level == "HIGH"
    assert finding.numbers == {
        "metric": "roc_auc",
        "baseline": 0.84,
        "value": 0.74,
        "drop": 0.10,
        "ci": [0.71, 0.77],
        "n": 900,
    }
    assert "0.74" in finding.message and "0.84" in finding.message and "0.71" in finding.message
    for status in ("ok", "insufficient_data", "no_baseline"):
        assert alert_findings(check(performance={**drifted, "status": status})) == []


def test_feature_drift_in_the_top_five_is_medium() -> None:
    finding = only(
        alert_findings(check(drifted_features=["spend", "region"]), IMPORTANCES), "feature_drift"
    )
    assert finding.level == "MEDIUM"  # spend is #5
    assert finding.numbers["n_drifted"] == 2 and finding.numbers["n_important"] == 1
    ranks = [(f["name"], f["importance_rank"]) for f in finding.numbers["features"]]
    assert ranks == [("spend", 5), ("region", 7)]  # most important first
    assert finding.numbers["features"][0]["effect"] == 0.31
    assert "`spend` #5" in finding.message


def test_feature_drift_outside_the_top_five_is_low() -> None:
    finding = only(
        alert_findings(check(drifted_features=["plan", "region"]), IMPORTANCES), "feature_drift"
    )
    assert finding.level == "LOW"
    assert finding.numbers["n_important"] == 0
    assert "none among the 5 most important" in finding.message


def test_feature_drift_on_an_unranked_feature_is_low_and_ranked_last() -> None:
    features = [*check()["data_drift"]["features"], feature("new_col", drifted=True)]
    drift = {**check()["data_drift"], "features": features, "drifted": True}
    finding = only(alert_findings(check(data_drift=drift), IMPORTANCES), "feature_drift")
    assert finding.level == "LOW"
    assert finding.numbers["features"][0]["importance_rank"] is None


def test_feature_drift_without_importances_counts_every_feature_as_important() -> None:
    finding = only(alert_findings(check(drifted_features=["region"])), "feature_drift")
    assert finding.level == "MEDIUM"
    assert finding.numbers["features"][0]["importance_rank"] is None
    assert finding.numbers["n_important"] == 1


def test_importance_ranks_by_mean_not_by_list_order() -> None:
    # tenure comes first in the list but is #4; age is #1.
    finding = only(
        alert_findings(check(drifted_features=["tenure", "age"]), IMPORTANCES), "feature_drift"
    )
    assert [f["importance_rank"] for f in finding.numbers["features"]] == [1, 4]


def test_prediction_drift() -> None:
    drifted = {**feature("score", drifted=True)}
    finding = only(alert_findings(check(prediction_drift=drifted)), "prediction_drift")
    assert finding.level == "MEDIUM"
    assert finding.numbers == {"psi": 0.27, "statistic": 0.21, "p_value": 1e-9}
    assert "psi 0.27" in finding.message
    assert alert_findings(check(prediction_drift=None)) == []


def test_error_rate_above_its_threshold_is_high() -> None:
    ops = {"predictions": 900, "errors": 300, "error_rate": 0.25}
    finding = only(alert_findings(check(operations=ops)), "error_rate")
    assert finding.level == "HIGH"
    assert finding.numbers == {
        "error_rate": 0.25,
        "threshold": 0.1,
        "errors": 300,
        "predictions": 900,
    }
    assert "25%" in finding.message and "10%" in finding.message
    # at the threshold, or not measured: nothing
    assert alert_findings(check(operations={"error_rate": 0.1})) == []
    assert alert_findings(check(operations={"error_rate": None})) == []


def test_latency_above_its_threshold_is_medium() -> None:
    finding = only(alert_findings(check(operations={"latency_p95_ms": 7200.0})), "latency")
    assert (finding.level, finding.numbers) == (
        "MEDIUM",
        {"latency_p95_ms": 7200.0, "threshold_ms": 5000.0},
    )
    assert "7200 ms" in finding.message
    assert alert_findings(check(operations={"latency_p95_ms": 5000.0})) == []


def test_data_quality_is_the_worst_medium_or_high_finding() -> None:
    low_only = [quality("spend", "out_of_range", "LOW"), quality("plan", "new_categories", "LOW")]
    assert alert_findings(check(quality=low_only)) == []
    medium = only(
        alert_findings(check(quality=[*low_only, quality("age", "missing_jump", "MEDIUM")])),
        "data_quality",
    )
    assert medium.level == "MEDIUM"
    assert medium.numbers["findings"] == [
        {"column": "age", "kind": "missing_jump", "severity": "MEDIUM"}
    ]
    mixed = [
        quality("age", "missing_jump", "MEDIUM"),
        quality("income", "type_change", "HIGH"),
        quality("tenure", "schema_break", "HIGH"),  # its own kind
    ]
    findings = alert_findings(check(quality=mixed))
    high = only(findings, "data_quality")
    assert high.level == "HIGH"
    assert len(high.numbers["findings"]) == 2
    assert "`income`: a HIGH type_change" in high.message
    assert only(findings, "schema_break").numbers == {"columns": ["tenure"]}


def test_everything_wrong_gives_one_finding_per_kind_worst_first() -> None:
    bad = check(
        health={"score": 12.0, "status": "critical", "reasons": ["many"]},
        drifted_features=["age", "plan"],
        prediction_drift=feature("score", drifted=True),
        performance={
            **check()["performance"],
            "status": "drifted",
            "value": 0.7,
            "drop": 0.14,
        },
        quality=[
            quality("region", "schema_break", "HIGH"),
            quality("visits", "schema_break", "HIGH"),
            quality("age", "missing_jump", "MEDIUM"),
            quality("income", "missing_jump", "HIGH"),
        ],
        operations={"error_rate": 0.5, "latency_p95_ms": 9000.0},
    )
    findings = alert_findings(bad, IMPORTANCES)
    assert [(f.kind, f.level) for f in findings] == [
        ("health", "CRITICAL"),
        ("schema_break", "HIGH"),
        ("performance_drop", "HIGH"),
        ("error_rate", "HIGH"),
        ("data_quality", "HIGH"),
        ("feature_drift", "MEDIUM"),
        ("prediction_drift", "MEDIUM"),
        ("latency", "MEDIUM"),
    ]
    ranks = [LEVEL_RANK[f.level] for f in findings]
    assert ranks == sorted(ranks, reverse=True)
    assert {f.kind for f in findings} <= set(KINDS)
    for f in findings:  # JSON-able, one sentence naming the model
        json.dumps(f.to_json(), allow_nan=False)
        assert "churn 1.2.0" in f.message and f.message.endswith(".")


def test_constants() -> None:
    assert len(KINDS) == len(set(KINDS)) == 9
    assert sorted(LEVEL_RANK, key=LEVEL_RANK.__getitem__) == ["LOW", "MEDIUM", "HIGH", "CRITICAL"]


def test_missing_sections_raise_nothing() -> None:
    sparse = {"health": {"score": 90.0, "status": "healthy"}}
    assert alert_findings(sparse) == []
    assert alert_findings({}) == []
