"""Findings and recommendations about one column, by quality dimension (docs/quality.md)."""

from __future__ import annotations

from typing import Any

from workers.preprocessing.quality.metrics import PLACEHOLDERS
from workers.preprocessing.quality.profile import ColumnProfile
from workers.preprocessing.quality.rulebook import (
    RECOMMEND_MIN_SHARE,
    Collector,
    fmt_number,
    pct,
)

CORRELATED = 0.3  # |Pearson r| from which another column predicts a missing one usefully


def completeness_rules(
    out: Collector, p: ColumnProfile, correlated: tuple[str, float] | None
) -> None:
    share = p.metrics["missing_share"]
    col = f"`{p.name}`"
    if share > 0:
        severity = "high" if share >= 0.5 else "medium" if share >= 0.05 else "low"
        out.finding(
            "missing_share", p.name, severity, "completeness", f"{col}: {pct(share)} missing"
        )
    if share >= 0.95:
        out.recommend(
            p.name,
            "drop_column",
            f"{col}: {pct(share)} missing — drop the column",
            2,
            {"drop_columns": [p.name]},
        )
    elif share > 0:
        rule, why = _imputation(p, correlated)
        if share >= 0.3:
            rule["indicator"] = True
            why += "; add a missing-value indicator (the gap itself may carry signal)"
        out.recommend(
            p.name,
            f"impute_{rule['strategy']}",
            f"{col}: {pct(share)} missing{why}",
            3,
            {"missing": {"columns": {p.name: rule}}},
        )
    placeholders = p.metrics.get("placeholder_share") or 0
    if placeholders > 0:
        tokens = [v["value"] for v in p.top_values or [] if _is_placeholder(v["value"])]
        shown = ", ".join(repr(tok) for tok in tokens[:3]) or "placeholders"
        out.finding(
            "placeholder_share",
            p.name,
            "medium" if placeholders >= 0.2 else "low",
            "completeness",
            f"{col}: {pct(placeholders)} of rows are {shown} (a missing value in disguise)",
        )
        out.recommend(
            p.name,
            "placeholder_as_missing",
            f"{col}: {pct(placeholders)} {shown} — decide whether it means missing (impute) or "
            "a real category (keep, and never let a model read it as information it is not)",
            4,
        )


def _is_placeholder(value: str) -> bool:
    return " ".join(value.split()).lower() in PLACEHOLDERS


def _imputation(
    p: ColumnProfile, correlated: tuple[str, float] | None
) -> tuple[dict[str, Any], str]:
    if p.kind in ("timestamp", "boolean"):
        # No fill value is defensible for a time or a flag: drop the incomplete rows.
        return {"strategy": "drop"}, " — drop the rows without it"
    if p.kind != "numeric":
        share = p.metrics["missing_share"]
        if share < 0.05:
            return {"strategy": "most_frequent"}, " — fill with the most frequent value"
        return (
            {"strategy": "constant", "value": "missing"},
            " — keep it as its own category ('missing')",
        )
    if correlated is not None and abs(correlated[1]) >= CORRELATED:
        other, r = correlated
        return (
            {"strategy": "iterative"},
            f", correlated with `{other}` (r={r:.2f}) — iterative imputation",
        )
    skew = p.metrics.get("skewness")
    if skew is not None and abs(skew) > 1:
        return {"strategy": "median"}, f", skewed ({skew:.1f}) — median imputation"
    return {"strategy": "mean"}, " — mean imputation"


def validity_rules(out: Collector, p: ColumnProfile) -> None:
    col = f"`{p.name}`"
    conformance = p.metrics.get("type_conformance")
    if conformance is not None and conformance < 1:
        bad = 1 - conformance
        out.finding(
            "type_conformance",
            p.name,
            "high" if bad >= 0.05 else "medium",
            "validity",
            f"{col}: {pct(bad)} of values are not of the declared type",
        )
        out.recommend(
            p.name,
            "fix_type",
            f"{col}: {pct(bad)} of values do not parse as the declared type — fix them at the "
            "source or re-ingest with the column declared (`dtypes`) so bad rows are named",
            1,
        )
    out_of_range = p.metrics.get("out_of_range_share")
    if out_of_range:
        out.finding(
            "out_of_range_share",
            p.name,
            "high" if out_of_range >= 0.01 else "medium",
            "validity",
            f"{col}: {pct(out_of_range)} outside the declared range",
        )
        out.recommend(
            p.name,
            "cap_to_range",
            f"{col}: {pct(out_of_range)} outside the declared range — fix at the source, or "
            "treat those values as missing",
            2,
        )
    negative = p.metrics.get("negative_share") or 0
    if negative and p.non_negative:
        out.finding(
            "negative_share", p.name, "medium", "validity", f"{col}: {pct(negative)} negative"
        )
        out.recommend(
            p.name,
            "check_negative",
            f"{col}: {pct(negative)} negative amounts — refunds or errors? Flag or exclude them",
            2,
        )
    future = p.metrics.get("future_share") or 0
    if future:
        out.finding("future_share", p.name, "high", "validity", f"{col}: {pct(future)} after as_of")
        out.recommend(
            p.name,
            "drop_future_rows",
            f"{col}: {pct(future)} of timestamps lie in the future — a clock or time-zone "
            "fault; drop those rows before building features (they would leak)",
            1,
        )


def consistency_rules(out: Collector, p: ColumnProfile) -> None:
    col = f"`{p.name}`"
    mixed = p.metrics.get("mixed_type_share") or 0
    if mixed:
        out.finding(
            "mixed_type_share",
            p.name,
            "medium",
            "consistency",
            f"{col}: {pct(mixed)} of values are of a different type than the rest",
        )
        out.recommend(
            p.name,
            "fix_mixed_types",
            f"{col}: numbers and words mixed ({pct(mixed)} minority) — declare its type",
            2,
        )
    spelling = p.metrics.get("inconsistent_spelling_share") or 0
    if spelling:
        example = p.spelling_groups[0]["variants"]
        shown = " / ".join(repr(v["value"]) for v in example[:3])
        out.finding(
            "inconsistent_spelling_share",
            p.name,
            "medium",
            "consistency",
            f"{col}: {pct(spelling)} of values are variant spellings ({shown})",
        )
        out.recommend(
            p.name,
            "normalize_categories",
            f"{col}: {len(p.spelling_groups)} value(s) spelled several ways ({shown}) — normalise",
            2,
            {"normalize_categories": [p.name]},
        )
    unit = p.metrics.get("unit_outlier_share") or 0
    if unit:
        out.finding(
            "unit_outlier_share",
            p.name,
            "medium" if unit >= 0.01 else "low",
            "consistency",
            f"{col}: {pct(unit)} of values are 100× above the upper quartile",
        )
    if unit >= RECOMMEND_MIN_SHARE:
        out.recommend(
            p.name,
            "check_units",
            f"{col}: {pct(unit)} of values 100× above the upper quartile — check for mixed units",
            3,
        )


def distribution_rules(out: Collector, p: ColumnProfile) -> None:
    col = f"`{p.name}`"
    if p.metrics.get("distinct_count") == 1:  # all-missing columns are reported as missing
        out.finding("is_constant", p.name, "medium", "distribution", f"{col}: one value only")
        out.recommend(
            p.name,
            "drop_column",
            f"{col}: a single value — drop it (it carries no signal)",
            2,
            {"drop_columns": [p.name]},
        )
    if p.metrics.get("high_cardinality"):
        distinct = p.metrics["distinct_count"]
        out.finding(
            "high_cardinality",
            p.name,
            "low",
            "distribution",
            f"{col}: {distinct:,} distinct values",
        )
        out.recommend(
            p.name,
            "encode_high_cardinality",
            f"{col}: {distinct:,} distinct values — an id? Exclude it, or use frequency / "
            "target encoding instead of one-hot",
            4,
        )
    extreme = p.metrics.get("extreme_outlier_share") or 0
    if extreme and p.stats:
        out.finding(
            "extreme_outlier_share",
            p.name,
            "medium" if extreme >= 0.01 else "low",
            "distribution",
            f"{col}: {pct(extreme)} beyond 3×IQR from the quartiles "
            f"(max {fmt_number(p.stats['max'])})",
        )
    if extreme >= RECOMMEND_MIN_SHARE and p.stats:
        q1, q3 = p.stats["p25"], p.stats["p75"]
        low, high = q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)
        out.recommend(
            p.name,
            "cap_outliers",
            f"{col}: {pct(extreme)} beyond 3×IQR ({_fences(low, high, p.stats)}), max "
            f"{fmt_number(p.stats['max'])} — cap at the fences or flag with an isolation forest",
            3,
            {"outliers": {"cap": "iqr", "iqr_k": 3.0, "columns": [p.name]}},
        )


def _fences(low: float, high: float, stats: dict[str, Any]) -> str:
    if low <= stats["min"]:
        return f"above {fmt_number(high)}"
    if high >= stats["max"]:
        return f"below {fmt_number(low)}"
    return f"outside {fmt_number(low)} .. {fmt_number(high)}"


def break_rules(out: Collector, p: ColumnProfile) -> None:
    col = f"`{p.name}`"
    for b in p.period_breaks:
        span = b["start"] if b["start"] == b["end"] else f"{b['start']}..{b['end']}"
        out.finding(
            "period_breaks",
            p.name,
            "high",
            "consistency",
            f"{col}: {pct(b['share'])} {b['value']!r} in {span} ({b['rows']:,} rows), "
            f"{pct(b['elsewhere_share'])} in the other months",
        )
        out.recommend(
            p.name,
            "investigate_period_break",
            f"{col}: {pct(b['share'])} {b['value']!r} in {span} against "
            f"{pct(b['elsewhere_share'])} elsewhere — a collection break; exclude the period "
            "from training or treat the column as missing there",
            1,
        )
