"""Data quality of a monitoring window against the reference statistics of the model version.

The reference is what ``workers.training.reference.reference_statistics`` stored with the
version: ``{"rows", "features": {name: stats}, "scores"}``. ``live_quality`` takes that
whole dict or its ``"features"`` mapping. Per feature it reads ``kind`` (numeric /
categorical), ``missing_share``, ``min`` / ``max`` (numeric) and ``frequencies`` with
``distinct`` (categorical); shares are among non-missing values, as in the reference.
The shares of the window reuse the quality metrics (``missing_share``,
``numeric_conformance`` from ``workers.preprocessing.quality``); values outside the
reference range are counted with the same bounds as ``out_of_range_count`` (strictly
below ``min`` or above ``max``).

Rules, one finding per column and kind, worst first (then in reference order):

============  ==========================================================  ================
kind          when                                                        severity
============  ==========================================================  ================
schema_break  a reference feature is not a column of the window           HIGH
type_change   a numeric feature holds values that are not numbers         LOW < 5% <=
              (share of the non-missing values)                           MEDIUM < 50% <=
                                                                          HIGH
missing_jump  missing share up by more than ``missing_jump`` (absolute)   MEDIUM; HIGH when
                                                                          all rows missing
new_category  share of non-missing values of a categorical feature that   LOW < 5% <=
              are not among the reference's categories                    MEDIUM
out_of_range  share of non-missing numbers outside the reference          LOW < 5% <=
              [min, max]                                                  MEDIUM
============  ==========================================================  ================

(the kinds are spelt ``new_categories``; the 5% / 50% steps are those the data-quality
report uses for missing values, ``column_rules.completeness_rules``).

Why only LOW/MEDIUM for new categories and ranges: the model still scores such rows
(unknown categories are ignored by the encoder, trees extrapolate flat), and a sample of
the same distribution already puts about 2 / (reference rows + 1) of its values outside
the training range; a shift large enough to matter shows in the drift and performance
checks. A missing column, by contrast, stops scoring, and non-numbers in a numeric column
become missing values the reference never saw at that rate.

Conventions, matching the reference: numeric values are compared as floats (booleans as
1.0 / 0.0) and infinities count as missing; categories are compared as text. When the
reference kept only the most frequent categories (``distinct`` > number of
``frequencies``), an unlisted value may be an old rare one, so that column gets no
new-categories finding. Columns of the window that the reference does not know are
ignored (the model does not read them). A window without rows gets schema findings only.
CRITICAL is not produced here; it is part of the severity scale the health score reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from workers.preprocessing.quality.metrics import (
    missing_share,
    numeric_conformance,
    share,
)
from workers.preprocessing.quality.rulebook import fmt_number, pct

Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
Kind = Literal["schema_break", "missing_jump", "new_categories", "out_of_range", "type_change"]

SEVERITY_RANK: dict[str, int] = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
MEDIUM_SHARE = 0.05  # new categories, out of range, non-numbers: MEDIUM from 5% of values
HIGH_SHARE = 0.5  # non-numbers in a numeric feature: HIGH from half of the values
EXAMPLES = 3  # new categories named in a message


@dataclass(frozen=True)
class QualityFinding:
    column: str | None
    kind: Kind
    severity: Severity
    message: str
    numbers: dict[str, float | int | str | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "numbers": dict(self.numbers),
        }


def _features(reference_stats: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """The per-feature mapping: the reference's ``"features"`` or the argument itself
    (a feature's stats always hold ``kind``, the whole reference never does)."""
    features = reference_stats.get("features")
    if isinstance(features, Mapping) and "kind" not in features:
        return features
    return reference_stats


def _by_share(value: float) -> Severity:
    return "MEDIUM" if value >= MEDIUM_SHARE else "LOW"


def _missing(
    name: str, reference: Mapping[str, Any], current_share: float, jump: float
) -> QualityFinding | None:
    before = reference.get("missing_share")
    if before is None or not current_share - float(before) > jump:
        return None
    everything = current_share >= 1.0
    return QualityFinding(
        name,
        "missing_jump",
        "HIGH" if everything else "MEDIUM",
        f"`{name}`: {pct(current_share)} missing, was {pct(float(before))} in training"
        + (" (no value at all now)" if everything else ""),
        {"missing_share": current_share, "reference_missing_share": float(before)},
    )


def _numbers(series: pd.Series) -> tuple[np.ndarray, int, float]:
    """The finite numbers (missing values, non-numbers and infinities left out), the
    number of infinities (missing, as in the reference) and the share of non-missing
    values that are not numbers."""
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        # Every value is a number: no coercion (the common case, and a million rows).
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        not_numbers = 0.0
    else:
        # The reference reads booleans as 1.0 / 0.0.
        is_bool = pd.api.types.is_bool_dtype(dtype)
        not_numbers = 0.0 if is_bool else 1.0 - numeric_conformance(series)
        coerced = pd.Series(pd.to_numeric(series, errors="coerce"))
        values = coerced.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(values)
    infinite = int(np.isinf(values).sum())
    return (values if finite.all() else values[finite]), infinite, not_numbers


def _numeric(
    name: str, reference: Mapping[str, Any], series: pd.Series, jump: float
) -> list[QualityFinding]:
    findings = []
    values, infinite, not_numbers = _numbers(series)
    if not_numbers > 0:
        findings.append(
            QualityFinding(
                name,
                "type_change",
                "HIGH" if not_numbers >= HIGH_SHARE else _by_share(not_numbers),
                f"`{name}`: {pct(not_numbers)} of the values are not numbers "
                "(a numeric feature in training)",
                {"not_number_share": not_numbers, "rows": len(series)},
            )
        )
    current_share = missing_share(series) + share(infinite, len(series))
    finding = _missing(name, reference, current_share, jump)
    if finding:
        findings.append(finding)
    low, high = reference.get("min"), reference.get("max")
    if low is None or high is None or values.size == 0:
        return findings
    # Counted, not sorted: a sort of a million values per feature cost seconds a check.
    below = int(np.count_nonzero(values < float(low)))
    outside = below + int(np.count_nonzero(values > float(high)))
    if outside:
        fraction = share(outside, values.size)
        now_low, now_high = float(values.min()), float(values.max())
        findings.append(
            QualityFinding(
                name,
                "out_of_range",
                _by_share(fraction),
                f"`{name}`: {pct(fraction)} of the values outside the training range "
                f"[{fmt_number(float(low))}, {fmt_number(float(high))}] "
                f"(now {fmt_number(now_low)} to {fmt_number(now_high)})",
                {
                    "share": fraction,
                    "count": outside,
                    "below": below,
                    "above": outside - below,
                    "reference_min": float(low),
                    "reference_max": float(high),
                    "min": now_low,
                    "max": now_high,
                },
            )
        )
    return findings


def _categorical(
    name: str, reference: Mapping[str, Any], series: pd.Series, jump: float
) -> list[QualityFinding]:
    findings = []
    finding = _missing(name, reference, missing_share(series), jump)
    if finding:
        findings.append(finding)
    known = reference.get("frequencies") or {}
    if int(reference.get("distinct") or 0) > len(known):
        return findings  # only the top categories were kept: "unlisted" is not "new"
    present = series.dropna().astype(str)
    unseen = present[~present.isin(set(known))]
    if unseen.empty:
        return findings
    fraction = share(len(unseen), len(present))
    counts = unseen.value_counts(sort=False)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    examples = ", ".join(repr(value) for value, _ in ranked[:EXAMPLES])
    more = f" and {len(ranked) - EXAMPLES} more" if len(ranked) > EXAMPLES else ""
    findings.append(
        QualityFinding(
            name,
            "new_categories",
            _by_share(fraction),
            f"`{name}`: {pct(fraction)} of the values are categories unseen in training "
            f"({examples}{more})",
            {
                "share": fraction,
                "count": len(unseen),
                "categories": len(ranked),
                "examples": examples,
            },
        )
    )
    return findings


def live_quality(
    reference_stats: Mapping[str, Any], current: pd.DataFrame, *, missing_jump: float = 0.1
) -> list[QualityFinding]:
    """Findings about ``current`` against the version's reference statistics, worst first
    (see the module docstring for the rules and severities)."""
    findings: list[QualityFinding] = []
    for name, reference in _features(reference_stats).items():
        if name not in current.columns:
            findings.append(
                QualityFinding(
                    name,
                    "schema_break",
                    "HIGH",
                    f"`{name}`: a model feature is missing from the data",
                    {"rows": len(current)},
                )
            )
            continue
        if current.empty:
            continue
        kind = reference.get("kind")
        if kind == "numeric":
            findings.extend(_numeric(name, reference, current[name], missing_jump))
        elif kind == "categorical":
            findings.extend(_categorical(name, reference, current[name], missing_jump))
    # sorted() is stable: equal severities keep the reference order.
    return sorted(findings, key=lambda finding: SEVERITY_RANK[finding.severity])
