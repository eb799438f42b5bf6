"""Errors in OpenAI's JSON shape and status codes, so SDKs raise the exception they know.

Upstream failures carry Parley's plain-words message and the reference id an administrator
finds in the log; the provider's own body never reaches the caller.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

# A provider error kind (providers.base.ErrorKind) as (HTTP status, OpenAI error type).
UPSTREAM = {
    "rate_limit": (503, "server_error"),
    "overloaded": (503, "server_error"),
    "context_length": (400, "invalid_request_error"),
    "content_filter": (400, "invalid_request_error"),
}
UPSTREAM_DEFAULT = (502, "server_error")
# An admission refusal (chat.admission) as (HTTP status, OpenAI error type, OpenAI code).
REFUSALS = {
    "rate_limited": (429, "requests", "rate_limit_exceeded"),
    "too_many_answers": (429, "requests", "rate_limit_exceeded"),
    "budget_exceeded": (429, "insufficient_quota", "insufficient_quota"),
    "server_busy": (503, "server_error", "server_busy"),
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        retry_after: int | None = None,
        ref: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.param, self.retry_after, self.ref = param, retry_after, ref

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }
        if self.ref:
            error["ref"] = self.ref
        return {"error": error}

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        return response


def upstream(error: dict[str, Any]) -> ApiError:
    """An answer's `end` error (chat.generation.Outcome.error_json) as the API's error."""
    status, kind = UPSTREAM.get(error.get("kind", ""), UPSTREAM_DEFAULT)
    ref = error.get("ref") or None
    message = error.get("message") or "The model's provider failed."
    if ref and ref not in message:
        message = f"{message} (ref {ref})"
    code = "context_length_exceeded" if error.get("kind") == "context_length" else error.get("kind")
    return ApiError(status, message, kind, code, retry_after=5 if status == 503 else None, ref=ref)


def refused(code: str, message: str, retry_after: int) -> ApiError:
    status, kind, openai_code = REFUSALS.get(code, (429, "requests", code))
    return ApiError(status, message, kind, openai_code, retry_after=retry_after)
