"""Job handlers: plain functions from a JobContext and validated params to a result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.jobs.context import JobContext


@dataclass(frozen=True)
class Waiting:
    """Returned by a handler that fanned work out: the job stays WAITING until a follow-up
    task (started by the fan-in helper) ends it."""

    line: str = "waiting for parts"


HandlerResult = dict[str, Any] | Waiting
Handler = Callable[["JobContext", Any], HandlerResult]
