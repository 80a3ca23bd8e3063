"""Findings (what is wrong, how badly) and recommendations (what to do about it), generated
from the profiles by the rules in docs/quality.md. Recommendations carry the ``clean`` job
params that apply them, where a cleaning step does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from workers.preprocessing.quality.metrics import PLACEHOLDERS
from workers.preprocessing.quality.profile import ColumnProfile

if TYPE_CHECKING:
    from workers.preprocessing.quality.assess import AssessOptions

CORRELATION_SAMPLE_ROWS = 20_000  # r to about ±0.01: plenty to rank predictors
CORRELATED = 0.3  # |Pearson r| from which another column predicts a missing one usefully
RECOMMEND_MIN_SHARE = 0.001  # below 0.1% of rows an outlier finding is reported, not acted on
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def pct(value: float) -> str:
    """12.3% / 0.04% / 100%: enough digits to be non-zero when the value is."""
    percent = 100 * value
    if percent == 0 or percent >= 10:
        return f"{percent:.0f}%"
    return f"{percent:.2g}%" if percent < 1 else f"{percent:.1f}%"


def _num(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


class _Collector:
    def __init__(self) -> None:
        self.findings: list[dict[str, Any]] = []
        self.recommendations: list[dict[str, Any]] = []

    def finding(
        self, check: str, column: str | None, severity: str, dimension: str, message: str
    ) -> None:
        self.findings.append(
            {
                "check": check,
                "column": column,
                "severity": severity,
                "dimension": dimension,
                "message": message,
            }
        )

    def recommend(
        self,
        column: str | None,
        action: str,
        text: str,
        priority: int,
        clean: dict[str, Any] | None = None,
    ) -> None:
        self.recommendations.append(
            {"column": column, "action": action, "text": text, "priority": priority, "clean": clean}
        )


def findings_and_recommendations(
    frame: pd.DataFrame,
    profiles: Sequence[ColumnProfile],
    table: dict[str, Any],
    time_facts: dict[str, Any] | None,
    options: AssessOptions,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out = _Collector()
    _table_rules(out, table)
    correlations = _missing_correlations(frame, profiles)
    for profile in profiles:
        _completeness_rules(out, profile, correlations.get(profile.name))
        _validity_rules(out, profile)
        _consistency_rules(out, profile)
        _distribution_rules(out, profile)
        _break_rules(out, profile)
    if time_facts is not None and time_facts.get("last") is not None:
        _time_rules(out, time_facts, options.freshness_half_life_days)
    findings = sorted(
        out.findings, key=lambda f: (SEVERITY_ORDER[f["severity"]], f["column"] or "", f["check"])
    )
    recommendations = sorted(
        out.recommendations, key=lambda r: (r["priority"], r["column"] or "", r["action"])
    )
    return findings, recommendations


def _table_rules(out: _Collector, table: dict[str, Any]) -> None:
    if table["duplicate_rows"]:
        share = table["duplicate_row_share"]
        out.finding(
            "duplicate_row_share",
            None,
            "high" if share >= 0.01 else "medium",
            "uniqueness",
            f"{table['duplicate_rows']:,} rows ({pct(share)}) repeat an earlier row exactly",
        )
        out.recommend(
            None,
            "drop_duplicate_rows",
            f"{table['duplicate_rows']:,} exact duplicate rows ({pct(share)}) — drop them "
            "(unless repeated identical events are real)",
            2,
            {"duplicates": "drop_rows"},
        )
    if table["duplicate_keys"]:
        keys = ", ".join(f"`{k}`" for k in table["key_columns"])
        share = table["duplicate_key_share"]
        out.finding(
            "duplicate_key_share",
            None,
            "high",
            "uniqueness",
            f"{table['duplicate_keys']:,} rows ({pct(share)}) repeat the key {keys}",
        )
        out.recommend(
            None,
            "dedupe_keys",
            f"key {keys} repeats in {pct(share)} of rows — keep the last row per key",
            1,
            {"duplicates": "drop_keys", "key_columns": list(table["key_columns"])},
        )


def _missing_correlations(
    frame: pd.DataFrame, profiles: Sequence[ColumnProfile]
) -> dict[str, tuple[str, float]]:
    """For each numeric column with missing values, its most correlated numeric column."""
    numeric = [p.name for p in profiles if p.kind == "numeric" and p.stats]
    targets = [p.name for p in profiles if p.kind == "numeric" and 0 < p.missing < len(frame)]
    if not targets or len(numeric) < 2:
        return {}
    sample = frame[numeric]
    if len(sample) > CORRELATION_SAMPLE_ROWS:  # a fixed seed keeps the report reproducible
        sample = sample.sample(CORRELATION_SAMPLE_ROWS, random_state=0)
    corr = sample.astype(float).corr(min_periods=30)
    found = {}
    for name in targets:
        others = corr[name].drop(labels=[name]).dropna()
        if others.empty:
            continue
        best = others.abs().sort_index().idxmax()
        found[name] = (str(best), float(others[best]))
    return found


def _completeness_rules(
    out: _Collector, p: ColumnProfile, correlated: tuple[str, float] | None
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
            {"exclude": [p.name]},
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
    return " ".join(value.split()).casefold() in PLACEHOLDERS


def _imputation(
    p: ColumnProfile, correlated: tuple[str, float] | None
) -> tuple[dict[str, Any], str]:
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


def _validity_rules(out: _Collector, p: ColumnProfile) -> None:
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
            f"{col}: {pct(out_of_range)} outside the declared range — cap, or treat as missing",
            2,
            {"outliers": {"cap": "quantile", "columns": [p.name]}},
        )
    negative = p.metrics.get("negative_share") or 0
    if negative and p.invalid:
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


def _consistency_rules(out: _Collector, p: ColumnProfile) -> None:
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


def _distribution_rules(out: _Collector, p: ColumnProfile) -> None:
    col = f"`{p.name}`"
    if p.metrics.get("distinct_count") == 1:  # all-missing columns are reported as missing
        out.finding("is_constant", p.name, "medium", "distribution", f"{col}: one value only")
        out.recommend(
            p.name,
            "drop_column",
            f"{col}: a single value — drop it (it carries no signal)",
            2,
            {"exclude": [p.name]},
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
            f"{col}: {pct(extreme)} beyond 3×IQR from the quartiles (max {_num(p.stats['max'])})",
        )
    if extreme >= RECOMMEND_MIN_SHARE and p.stats:
        q1, q3 = p.stats["p25"], p.stats["p75"]
        low, high = q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)
        out.recommend(
            p.name,
            "cap_outliers",
            f"{col}: {pct(extreme)} beyond 3×IQR ({_fences(low, high, p.stats)}), max "
            f"{_num(p.stats['max'])} — cap at the fences or flag with an isolation forest",
            3,
            {"outliers": {"cap": "iqr", "iqr_k": 3.0, "columns": [p.name]}},
        )


def _fences(low: float, high: float, stats: dict[str, Any]) -> str:
    if low <= stats["min"]:
        return f"above {_num(high)}"
    if high >= stats["max"]:
        return f"below {_num(low)}"
    return f"outside {_num(low)} .. {_num(high)}"


def _break_rules(out: _Collector, p: ColumnProfile) -> None:
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


def _time_rules(out: _Collector, facts: dict[str, Any], half_life: float) -> None:
    col = f"`{facts['column']}`"
    age = facts["last_event_age_days"]
    if age > 2 * half_life:
        out.finding(
            "last_event_age_days",
            facts["column"],
            "medium",
            "timeliness",
            f"{col}: the last event is {age:,.0f} days before as_of",
        )
        out.recommend(
            facts["column"],
            "refresh_data",
            f"{col}: newest event {age:,.0f} days old — refresh the data before training",
            3,
        )
    gap = facts["largest_gap_days"]
    if gap >= 7:
        out.finding(
            "largest_gap_days",
            facts["column"],
            "medium",
            "timeliness",
            f"{col}: no events for {gap} days ({facts['largest_gap_start']} .. "
            f"{facts['largest_gap_end']})",
        )
        out.recommend(
            facts["column"],
            "check_gap",
            f"{col}: {gap}-day gap from {facts['largest_gap_start']} — check the feed "
            "(windows spanning it will read as inactivity)",
            3,
        )
    for cp in facts["change_points"]:
        out.finding(
            "change_points",
            facts["column"],
            "low",
            "timeliness",
            f"daily volume shifts on {cp['date']}: {_num(cp['before_mean'])}/day -> "
            f"{_num(cp['after_mean'])}/day",
        )
    if facts["change_points"]:
        last = facts["change_points"][-1]["date"]
        out.recommend(
            facts["column"],
            "mind_change_points",
            f"daily volume changes regime (last on {last}) — validate on periods after it and "
            "prefer time-ordered validation",
            4,
        )
