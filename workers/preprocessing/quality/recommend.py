"""Findings (what is wrong, how badly) and recommendations (what to do about it), generated
from the profiles by the rules in docs/quality.md. Recommendations carry the ``clean`` job
params that apply them, where a cleaning step does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from workers.preprocessing.quality.column_rules import (
    break_rules,
    completeness_rules,
    consistency_rules,
    distribution_rules,
    validity_rules,
)
from workers.preprocessing.quality.profile import ColumnProfile
from workers.preprocessing.quality.rulebook import SEVERITY_ORDER, Collector, fmt_number, pct

if TYPE_CHECKING:
    from workers.preprocessing.quality.assess import AssessOptions

CORRELATION_SAMPLE_ROWS = 20_000  # r to about ±0.01: plenty to rank predictors


def findings_and_recommendations(
    frame: pd.DataFrame,
    profiles: Sequence[ColumnProfile],
    table: dict[str, Any],
    time_facts: dict[str, Any] | None,
    options: AssessOptions,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out = Collector()
    _table_rules(out, table)
    correlations = _missing_correlations(frame, profiles)
    for profile in profiles:
        completeness_rules(out, profile, correlations.get(profile.name))
        validity_rules(out, profile)
        consistency_rules(out, profile)
        distribution_rules(out, profile)
        break_rules(out, profile)
    if time_facts is not None and time_facts.get("last") is not None:
        _time_rules(out, time_facts, options.freshness_half_life_days)
    findings = sorted(
        out.findings, key=lambda f: (SEVERITY_ORDER[f["severity"]], f["column"] or "", f["check"])
    )
    recommendations = sorted(
        out.recommendations, key=lambda r: (r["priority"], r["column"] or "", r["action"])
    )
    return findings, recommendations


def _table_rules(out: Collector, table: dict[str, Any]) -> None:
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


def _time_rules(out: Collector, facts: dict[str, Any], half_life: float) -> None:
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
            f"daily volume shifts on {cp['date']}: {fmt_number(cp['before_mean'])}/day -> "
            f"{fmt_number(cp['after_mean'])}/day",
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
