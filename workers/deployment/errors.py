"""The one error scoring and registry calls raise: a stable code and an actionable message."""

from __future__ import annotations

from api_client.contract import ErrorCode


class ScoringError(Exception):
    """The request cannot be served; the reply (or the job) carries ``code`` and ``message``."""

    def __init__(self, code: str | ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
