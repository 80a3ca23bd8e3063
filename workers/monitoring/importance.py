"""The share of a version's permutation importance that sits on drifted features: what the
health score's feature-drift component and the retrain policy's feature_drift trigger read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def drifted_importance_share(
    data_drift: Mapping[str, Any] | None, importances: Sequence[Mapping[str, Any]]
) -> tuple[float | None, list[str]]:
    """From a check's ``data_drift`` JSON: the share of the importance on drifted features
    (None when no feature was measured; every feature counts alike when the version has
    no importances), and the drifted features, most important first."""
    features = [
        f
        for f in ((data_drift or {}).get("features") or [])
        if f.get("status") != "insufficient_data"
    ]
    if not features:
        return None, []
    weight = {
        str(item.get("feature")): max(float(item.get("mean") or 0.0), 0.0) for item in importances
    }
    drifted = sorted(
        (str(f["name"]) for f in features if f.get("drifted")),
        key=lambda name: -weight.get(name, 0.0),
    )
    total = sum(weight.get(str(f["name"]), 0.0) for f in features)
    if total <= 0:
        return len(drifted) / len(features), drifted
    return sum(weight.get(name, 0.0) for name in drifted) / total, drifted
