"""Every error leaves the service as JSON: {"error": {"code", "message", "fields"?}}.

Bad input is a 4xx naming the field; a failing dependency is a 503/504 saying which one;
nothing leaks a stack trace.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol, cast

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import Field as PydanticField
from starlette.exceptions import HTTPException as StarletteHTTPException

from learnflow_service_kit.sidecar_client import (
    FailingPart,
    SidecarUnavailable,
    StateStoreUnavailable,
)

log = structlog.get_logger()


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str = PydanticField(description="Stable, machine-readable: names what failed")
    message: str
    fields: list[FieldProblem] | None = None
    field: str | None = None
    request_id: str | None = None


class ErrorBody(BaseModel):
    """Every error answer's body."""

    error: ErrorDetail


# How routes document their error statuses in OpenAPI (``responses={503: ERROR_RESPONSE}``);
# 422 too, since ours is this envelope, not FastAPI's default validation body.
ERROR_RESPONSE: dict[str, Any] = {"model": ErrorBody, "description": "A JSON error"}


class ExpectedError(Protocol):
    """What an exception needs to leave the service as a clear JSON error (str() is the message).

    ``ServiceError`` has it; a service registers its own domain errors with the same shape.
    """

    http_status: int
    code: str

    def headers(self) -> dict[str, str]: ...


class ServiceError(Exception):
    """An expected failure with its HTTP status, a stable code and a human message."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = status
        self.code = code
        self._headers = headers or {}

    def headers(self) -> dict[str, str]:
        return self._headers


_FAILING_PARTS: dict[FailingPart, str] = {
    "dapr_sidecar": "the Dapr sidecar does not answer",
    "actor_placement": "the Dapr placement service is unreachable, so no actor can run",
    "state_store": "the state store (PostgreSQL) does not answer",
}


def dependency_failed(part: FailingPart, retry_hint: str) -> ServiceError:
    """The error for a failed or timed-out call, named after the part ``failing_part`` blamed."""
    if part == "unknown":
        return ServiceError(
            504,
            "deadline_exceeded",
            f"no answer in time; {retry_hint}",
            headers={"Retry-After": "2"},
        )
    return ServiceError(
        503,
        f"{part}_unavailable",
        f"{_FAILING_PARTS[part]}; {retry_hint}",
        headers={"Retry-After": "5"},
    )


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def _field_path(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location)


def _validation_response(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"field": _field_path(tuple(err.get("loc", ()))), "message": err.get("msg", "invalid")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return JSONResponse(
        status_code=422, content=error_body("validation_failed", summary, fields=fields)
    )


def _expected_error_response(_: Request, exc: Exception) -> JSONResponse:
    problem = cast(ExpectedError, exc)
    return JSONResponse(
        status_code=problem.http_status,
        content=error_body(problem.code, str(exc)),
        headers=problem.headers(),
    )


def _http_error_response(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {400: "malformed_request", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(code, str(exc.detail)),
        headers=getattr(exc, "headers", None),
    )


def _dependency_down_response(request: Request, exc: Exception) -> JSONResponse:
    """A sidecar or state store failure no route caught: the same error ``dependency_failed``
    makes for the routes that do catch one."""
    part: FailingPart = "dapr_sidecar" if isinstance(exc, SidecarUnavailable) else "state_store"
    log.warning("dependency unavailable", dependency=part, detail=str(exc))
    return _expected_error_response(request, dependency_failed(part, "retry later"))


def _unexpected_response(request: Request, exc: Exception) -> JSONResponse:
    # The details go to the log only, under an id the client can quote.
    request_id = uuid.uuid4().hex[:16]
    log.exception(
        "unhandled error",
        path=request.url.path,
        error_type=type(exc).__name__,
        request_id=request_id,
    )
    return JSONResponse(
        status_code=500,
        content=error_body(
            "internal_error", f"internal error (request {request_id})", request_id=request_id
        ),
    )


def install_error_handlers(app: FastAPI, expected: Sequence[type[Exception]] = ()) -> None:
    """JSON errors for everything; ``expected`` are extra error classes shaped as ExpectedError."""
    app.add_exception_handler(RequestValidationError, _validation_response)
    error_classes: list[type[Exception]] = [ServiceError, *expected]
    for error_class in error_classes:
        app.add_exception_handler(error_class, _expected_error_response)
    app.add_exception_handler(StarletteHTTPException, _http_error_response)
    app.add_exception_handler(SidecarUnavailable, _dependency_down_response)
    app.add_exception_handler(StateStoreUnavailable, _dependency_down_response)
    app.add_exception_handler(Exception, _unexpected_response)
