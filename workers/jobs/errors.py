"""Errors a job handler raises to end its job FAILED or CANCELLED with a stable code."""

from __future__ import annotations

from api_client.contract import ErrorCode


class JobError(Exception):
    """The job cannot run: it ends FAILED with ``code`` and a message a person can act on."""

    def __init__(self, code: str | ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message


class JobCancelledSignal(Exception):
    """Raised at a checkpoint when the job's cancel was requested."""
