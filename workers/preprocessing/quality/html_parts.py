"""Small pieces of the HTML report: tolerate any JSON shape, escape everything."""

from __future__ import annotations

import html
import re
from datetime import date
from typing import Any

from workers.preprocessing.quality.svg import fmt_num


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def esc(value: Any) -> str:
    return "" if value is None else html.escape(str(value))


def text_or_dash(value: Any) -> str:
    """Escaped text, or a dash for a missing value."""
    return "—" if value is None or value == "" else esc(value)


def rich(text: Any) -> str:
    """Escaped text with `backtick spans` as <code> (escaping leaves backticks alone)."""
    return re.sub(r"`([^`\n]+)`", r"<code>\1</code>", esc(text))


def show_value(value: Any) -> str:
    """A data value as shown: JSON words for null/bools, text quoted only when blanks at its
    ends (or emptiness) would otherwise be invisible, e.g. the spelling variant "ny "."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return fmt_num(value)
    text = str(value)
    return f'"{text}"' if text != text.strip() or not text else text


def parse_day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def short_stamp(value: Any) -> str:
    """ISO timestamp shortened for axes: the date alone when the time is midnight."""
    if value is None:
        return "—"
    text = str(value)
    if len(text) > 10 and text[10] == "T":
        return text[:10] if text[11:19] in ("00:00:00", "00:00") else text[:16].replace("T", " ")
    return text


def fact_list(pairs: list[tuple[str, str]]) -> str:
    rows = "".join(f"<div><dt>{esc(k)}</dt><dd>{v}</dd></div>" for k, v in pairs)
    return f'<dl class="facts">{rows}</dl>'


def or_default(value: float | None, default: float) -> float:
    return default if value is None else value


def score_class(score: float | None) -> str:
    if score is None:
        return "na"
    return "good" if score >= 85 else "warn" if score >= 60 else "bad"
