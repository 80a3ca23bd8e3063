"""Scores 0-100 per quality dimension, so two reports can be compared (docs/quality.md).

Each dimension is 100 × (1 - the share of the cells (or rows) it checks that fail):

- completeness: missing or placeholder cells ÷ all cells
- validity: cells failing a rule (declared type, range, non-negative, not after as_of) ÷ the
  cells of the columns that have a rule (100 when no column has one)
- consistency: mixed-type, non-canonical-spelling and unit-outlier cells ÷ all cells
- uniqueness: max(duplicate-row share, duplicate-key share)
- timeliness: 100 × (freshness + coverage) / 2, freshness = 0.5 ^ (last-event age /
  half-life), coverage = 1 - missing-day share; null without a time column
- overall: the mean of the dimensions that are not null
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from workers.preprocessing.quality.profile import ColumnProfile

DIMENSIONS = ("completeness", "validity", "consistency", "uniqueness", "timeliness")


@dataclass(frozen=True)
class Scores:
    completeness: float
    validity: float
    consistency: float
    uniqueness: float
    timeliness: float | None
    overall: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pct(failed_share: float) -> float:
    return round(100.0 * (1.0 - min(max(failed_share, 0.0), 1.0)), 1)


def freshness(age_days: float, half_life_days: float) -> float:
    return float(0.5 ** (max(age_days, 0.0) / half_life_days))


def timeliness(age_days: float, missing_day_share: float, half_life_days: float) -> float:
    return round(50.0 * (freshness(age_days, half_life_days) + 1.0 - missing_day_share), 1)


def score(
    profiles: Sequence[ColumnProfile],
    table: dict[str, Any],
    time_facts: dict[str, Any] | None,
    half_life_days: float,
) -> Scores:
    rows = table["rows"]
    cells = rows * len(profiles)
    checked = [p for p in profiles if p.validity_checked]
    completeness = _pct(sum(p.missing + p.placeholders for p in profiles) / cells if cells else 0)
    validity = _pct(sum(p.invalid for p in checked) / (rows * len(checked)) if checked else 0)
    consistency = _pct(sum(p.inconsistent for p in profiles) / cells if cells else 0)
    uniqueness = _pct(max(table["duplicate_row_share"], table["duplicate_key_share"]))
    timely: float | None = None
    if time_facts is not None and time_facts.get("last") is not None:
        timely = timeliness(
            time_facts["last_event_age_days"], time_facts["missing_day_share"], half_life_days
        )
    present = [completeness, validity, consistency, uniqueness] + (
        [timely] if timely is not None else []
    )
    overall = round(sum(present) / len(present), 1)
    return Scores(completeness, validity, consistency, uniqueness, timely, overall)
