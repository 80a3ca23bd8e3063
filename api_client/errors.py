"""Exceptions a caller of the client can catch by meaning.

CipmlError
 +-- InvalidRequest (also ValueError)      the request was refused before running
 +-- JobNotFound (also LookupError)        no job has that id
 +-- JobTimeout (also TimeoutError)        waited longer than the caller allowed
 +-- ServiceUnavailable (also ConnectionError)  broker/result backend/worker not answering
 +-- JobFailed                             the job ended FAILED (carries code and message)
      +-- JobCancelled                     the job ended CANCELLED
"""

from __future__ import annotations


class CipmlError(Exception):
    """Base class of every error raised by the cip-ml client."""

    code: str = "error"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        if code is not None:
            self.code = code
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class InvalidRequest(CipmlError, ValueError):
    """The request does not fit the contract; nothing was sent or run."""

    code = "invalid_params"


class JobNotFound(CipmlError, LookupError):
    """No job with that id is known to the service."""

    code = "job_not_found"


class JobTimeout(CipmlError, TimeoutError):
    """The job did not finish within the time the caller allowed; it keeps running."""

    code = "client_timeout"


class ServiceUnavailable(CipmlError, ConnectionError):
    """The broker, the result backend or the control workers did not answer in time."""

    code = "service_unavailable"


class JobFailed(CipmlError):
    """The job ended FAILED; `code` is stable, `message` says what to do."""

    code = "job_failed"

    def __init__(
        self, message: str | None = None, *, code: str | None = None, job_id: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.job_id = job_id


class JobCancelled(JobFailed):
    """The job was cancelled before it finished."""

    code = "cancelled"
