"""cip-ml client: the job contract and a client other services import to enqueue jobs.

Depends only on celery, redis and pydantic (api_client/requirements.txt).
"""

from api_client.client import Client, JobHandle
from api_client.contract import CONTRACT_VERSION, ErrorCode, JobStatus, Queue, TaskName
from api_client.errors import (
    CipmlError,
    InvalidRequest,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobTimeout,
    ServiceUnavailable,
)
from api_client.schemas import JOB_TYPES, JobInfo, Progress

__all__ = [
    "CONTRACT_VERSION",
    "JOB_TYPES",
    "CipmlError",
    "Client",
    "ErrorCode",
    "InvalidRequest",
    "JobCancelled",
    "JobFailed",
    "JobHandle",
    "JobInfo",
    "JobNotFound",
    "JobStatus",
    "JobTimeout",
    "Progress",
    "Queue",
    "ServiceUnavailable",
    "TaskName",
]
