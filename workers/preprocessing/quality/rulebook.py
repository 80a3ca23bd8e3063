"""What findings and recommendations are made of: the collector the rules write to, and the
number formats their messages share."""

from __future__ import annotations

from typing import Any

RECOMMEND_MIN_SHARE = 0.001  # below 0.1% of rows an outlier finding is reported, not acted on
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


def pct(value: float) -> str:
    """12.3% / 0.04% / 100%: enough digits to be non-zero when the value is."""
    percent = 100 * value
    if percent == 0 or percent >= 10:
        return f"{percent:.0f}%"
    return f"{percent:.2g}%" if percent < 1 else f"{percent:.1f}%"


def fmt_number(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


class Collector:
    """Findings (what is wrong, how badly) and recommendations (what to do, and the clean
    params that do it) in the order the rules add them."""

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
