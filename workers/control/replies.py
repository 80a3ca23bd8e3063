"""Replies of request/response tasks (control, registry, scoring): a ControlReply as JSON,
and the parsing that refuses a newer contract or a malformed body instead of raising."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api_client.contract import CONTRACT_VERSION, ErrorCode
from api_client.schemas import ControlReply, ErrorInfo

T = TypeVar("T", bound=BaseModel)


def reply(**fields: Any) -> dict[str, Any]:
    return ControlReply(**fields).model_dump(mode="json")


def refused(code: str, message: str) -> dict[str, Any]:
    return reply(ok=False, error=ErrorInfo(code=code, message=message))


def parse_request(model: type[T], payload: Any) -> T | dict[str, Any]:
    """The request, or the refusal to send back (a newer contract, a malformed body)."""
    contract = payload.get("contract") if isinstance(payload, dict) else None
    if isinstance(contract, int) and contract > CONTRACT_VERSION:
        return refused(
            ErrorCode.CONTRACT_VERSION_UNSUPPORTED,
            f"the client speaks contract {contract}, this worker knows up to "
            f"{CONTRACT_VERSION}: upgrade the workers before the clients",
        )
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        return refused(ErrorCode.INVALID_MESSAGE, str(exc))
