"""The message that starts a job's task: a reference to the job row, nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api_client.contract import CONTRACT_VERSION, ErrorCode
from api_client.errors import InvalidRequest


@dataclass(frozen=True)
class JobMessage:
    job_id: str
    job_type: str
    contract: int = CONTRACT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {"contract": self.contract, "job_id": self.job_id, "job_type": self.job_type}

    @classmethod
    def parse(cls, raw: Any) -> JobMessage:
        if not isinstance(raw, dict):
            raise InvalidRequest(
                "a job message must be a JSON object", code=ErrorCode.INVALID_MESSAGE
            )
        contract = raw.get("contract")
        if not isinstance(contract, int):
            raise InvalidRequest(
                "a job message needs an integer 'contract'", code=ErrorCode.INVALID_MESSAGE
            )
        if contract > CONTRACT_VERSION:
            raise InvalidRequest(
                f"message speaks contract {contract}, this worker knows up to "
                f"{CONTRACT_VERSION}: upgrade the workers",
                code=ErrorCode.CONTRACT_VERSION_UNSUPPORTED,
            )
        job_id, job_type = raw.get("job_id"), raw.get("job_type")
        if not isinstance(job_id, str) or not isinstance(job_type, str):
            raise InvalidRequest(
                "a job message needs string 'job_id' and 'job_type'", code=ErrorCode.INVALID_MESSAGE
            )
        return cls(job_id=job_id, job_type=job_type, contract=contract)
