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
    task (started by the fan-in helper) ends it. ``keep_running``: the job stays RUNNING
    instead (its parts are the job running, as a training search is). ``step`` names what
    the job waits for when it is not parts (e.g. "admission")."""

    line: str = "waiting for parts"
    keep_running: bool = False
    step: str | None = None


HandlerResult = dict[str, Any] | Waiting
Handler = Callable[["JobContext", Any], HandlerResult]
